// a CPU stand-in for the CUDA runtime and cuBLAS, enough for repo.cu: every CUDA thread is a fiber,
// blocks run one at a time, __syncthreads and warp shuffles are barriers. For checking only.
#pragma once
#include <ucontext.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <math.h>
#include <functional>
#include <vector>
struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
typedef int cudaError_t; enum { cudaSuccess = 0 };
typedef void *cudaEvent_t;
typedef int cudaMemcpyKind; enum { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
struct cudaDeviceProp { char name[256]; };
static inline const char *cudaGetErrorString(cudaError_t) { return "emu error"; }
static inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return 0; }
static inline cudaError_t cudaSetDevice(int) { return 0; }
static inline cudaError_t cudaMalloc(void **p, size_t n) { *p = malloc(n); memset(*p, 0xff, n); return *p ? 0 : 2; }
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, int) { memmove(d, s, n); return 0; }
static inline cudaError_t cudaFree(void *p) { free(p); return 0; }
static inline cudaError_t cudaMemset(void *d, int v, size_t n) { memset(d, v, n); return 0; }
static inline cudaError_t cudaEventCreate(cudaEvent_t *) { return 0; }
static inline cudaError_t cudaEventRecord(cudaEvent_t) { return 0; }
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return 0; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return 0; }
static inline cudaError_t cudaGetLastError(void) { return 0; }
static inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = 0; *t = 0; return 0; }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) { strcpy(p->name, "CPU emulation"); return 0; }
struct __nv_bfloat16 { uint16_t x; };
static inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return {0x7fc0};
    u += 0x7fff + ((u >> 16) & 1); return {(uint16_t)(u >> 16)};
}
static inline float bf2f(uint16_t x) { uint32_t u = (uint32_t)x << 16; float f; memcpy(&f, &u, 4); return f; }
typedef void *cublasHandle_t;
typedef int cublasStatus_t; enum { CUBLAS_STATUS_SUCCESS = 0 };
typedef enum { CUBLAS_OP_N, CUBLAS_OP_T } cublasOperation_t;
typedef enum { CUDA_R_32F, CUDA_R_16BF } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32 } cublasComputeType_t;
enum { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_DEFAULT_MATH = 0 };
static inline const char *cublasGetStatusString(cublasStatus_t) { return "emu"; }
static inline cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = 0; return 0; }
static inline cublasStatus_t cublasSetMathMode(cublasHandle_t, int) { return 0; }
static float tf32(float f) { uint32_t u; memcpy(&u, &f, 4); u += 0xfff + ((u >> 13) & 1); u &= ~0x1fffu; memcpy(&f, &u, 4); return f; }
static inline cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
    int m, int n, int k, const float *alpha, const void *A, cudaDataType_t at, int lda, long long sA,
    const void *B, cudaDataType_t bt, int ldb, long long sB, const float *beta, void *Cv, cudaDataType_t, int ldc,
    long long sC, int batch, cublasComputeType_t ct, int) {
    auto get = [](const void *p, cudaDataType_t t, size_t i, int tf) {
        float v = t == CUDA_R_16BF ? bf2f(((const uint16_t *)p)[i]) : ((const float *)p)[i];
        return tf ? tf32(v) : v; };
    int tf = ct == CUBLAS_COMPUTE_32F_FAST_TF32;
    float *C = (float *)Cv;
    std::vector<float> Am((size_t)m * k), Bm((size_t)n * k); // op(A) by rows, op(B) by columns
    for (int b = 0; b < batch; b++) {
        for (int i = 0; i < m; i++) for (int l = 0; l < k; l++)
            Am[(size_t)i * k + l] = get(A, at, b * sA + (ta == CUBLAS_OP_N ? i + (size_t)l * lda : l + (size_t)i * lda), tf);
        for (int j = 0; j < n; j++) for (int l = 0; l < k; l++)
            Bm[(size_t)j * k + l] = get(B, bt, b * sB + (tb == CUBLAS_OP_N ? l + (size_t)j * ldb : j + (size_t)l * ldb), tf);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const float *x = &Am[(size_t)i * k], *y = &Bm[(size_t)j * k];
                double acc = 0;
                for (int l = 0; l < k; l++) acc += (double)x[l] * y[l];
                float *c = C + b * sC + i + (size_t)j * ldc;
                *c = (float)(*alpha * acc) + (*beta != 0 ? *beta * *c : 0.0f);
            }
    }
    return 0;
}
// fibers
enum { F_RUN, F_DONE, F_WAIT_WARP, F_WAIT_BLOCK };
struct Fiber { ucontext_t ctx; dim3 tid; int lin, state; };
static ucontext_t emu_sched;
static Fiber *emu_cur;
static std::vector<Fiber> emu_fibers;
static std::vector<char *> emu_stacks;
static double emu_slots[1024];
static const std::function<void()> *emu_body;
static dim3 blockIdx, blockDim, gridDim;
#define threadIdx (emu_cur->tid)
static void emu_entry() { (*emu_body)(); emu_cur->state = F_DONE; swapcontext(&emu_cur->ctx, &emu_sched); }
static void emu_wait(int st) { emu_cur->state = st; swapcontext(&emu_cur->ctx, &emu_sched); }
static inline void __syncthreads() { emu_wait(F_WAIT_BLOCK); }
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int o) {
    int lin = emu_cur->lin, lane = lin % 32;
    emu_slots[lin] = (double)v;
    emu_wait(F_WAIT_WARP);
    double r = emu_slots[lin - lane + (lane ^ o)];
    emu_wait(F_WAIT_WARP);
    return (T)r;
}
static inline float atomicAdd(float *p, float v) { float o = *p; *p += v; return o; }
static inline double atomicAdd(double *p, double v) { double o = *p; *p += v; return o; }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { unsigned long long o = *p; *p += v; return o; }
static void emu_launch(dim3 g, dim3 b, const std::function<void()> &body) {
    int nt = b.x * b.y * b.z;
    if (nt > 1024 || g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535) { fprintf(stderr, "emu: bad launch\n"); abort(); }
    const size_t STACK = 64 * 1024;
    while ((int)emu_stacks.size() < nt) emu_stacks.push_back((char *)malloc(STACK));
    emu_fibers.resize(nt);
    emu_body = &body; blockDim = b; gridDim = g;
    for (unsigned bz = 0; bz < g.z; bz++) for (unsigned by = 0; by < g.y; by++) for (unsigned bx = 0; bx < g.x; bx++) {
        blockIdx = dim3(bx, by, bz);
        for (int t = 0; t < nt; t++) {
            Fiber &f = emu_fibers[t];
            f.tid = dim3(t % b.x, (t / b.x) % b.y, t / (b.x * b.y)); f.lin = t; f.state = F_RUN;
            getcontext(&f.ctx); f.ctx.uc_stack.ss_sp = emu_stacks[t]; f.ctx.uc_stack.ss_size = STACK; f.ctx.uc_link = 0;
            makecontext(&f.ctx, emu_entry, 0);
        }
        for (;;) {
            for (int t = 0; t < nt; t++) if (emu_fibers[t].state == F_RUN) { emu_cur = &emu_fibers[t]; swapcontext(&emu_sched, &emu_cur->ctx); }
            int live = 0, at_block = 0, released = 0;
            for (int t = 0; t < nt; t++) { live += emu_fibers[t].state != F_DONE; at_block += emu_fibers[t].state == F_WAIT_BLOCK; }
            if (!live) break;
            for (int w = 0; w * 32 < nt; w++) {
                int wl = 0, ww = 0;
                for (int t = w * 32; t < nt && t < w * 32 + 32; t++) { wl += emu_fibers[t].state != F_DONE; ww += emu_fibers[t].state == F_WAIT_WARP; }
                if (wl && ww == wl) { for (int t = w * 32; t < nt && t < w * 32 + 32; t++) if (emu_fibers[t].state == F_WAIT_WARP) emu_fibers[t].state = F_RUN; released = 1; }
            }
            if (!released && at_block == live) { for (int t = 0; t < nt; t++) if (emu_fibers[t].state == F_WAIT_BLOCK) emu_fibers[t].state = F_RUN; released = 1; }
            if (!released) { fprintf(stderr, "emu: deadlock\n"); abort(); }
        }
    }
}
#define __global__
#define __device__
#define __shared__ static
