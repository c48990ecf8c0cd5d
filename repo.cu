/*
repo.cu: repo.c's training step on an NVIDIA GPU (CUDA kernels, cuBLAS for the matmuls).

repo.c runs everything: loading, batching, the model's layer sequence (block_forward, block_backward),
the objective, AdamW's schedule, logging, saving. It calls the layers only through its Kernels table;
this file fills one (GPU_KERNELS) with CUDA kernels of the same signatures that work on GPU memory,
so the GPU keeps the model laid out exactly as the host does: one parameter buffer (the same offsets),
gradients and AdamW's m and v in fp32, activations pointed by repo.c's layer_acts. Per batch only the
tokens and response positions go up and the per-position log-probs (and their gradients) cross.

Layers are kernels, each forward beside its backward, each with the math in a comment; backward
kernels accumulate (+=) as repo.c's do. Matmuls go through cublasGemmStridedBatchedEx, in
--precision fp32 (exact fp32), tf32 (CUBLAS_COMPUTE_32F_FAST_TF32) or bf16 (both operands rounded
to bf16, fp32 accumulation and fp32 results, as autocast; the weights' bf16 copy is refreshed after
each update; master weights, gradients, optimizer state and all other kernels stay fp32).

Attention keeps, as repo.c's, one log-sum-exp per row and no (T, T) matrix per layer: forward forms a
layer's scores in one (B, NH, T, T) scratch buffer shared by all layers (softmax in place, lse kept);
backward recomputes the scores there from q, k and lse, then turns P into dscores in place.

Environment: REPO_CUDA_POISON=1 fills every buffer this file allocates with NaN (and the attention
scratch before each use), so an element a kernel fails to write shows up as NaN in the outputs.
REPO_CUDA_PROFILE=1 times every phase with CUDA events (synchronizing) and prints a table at exit.

build: make cuda (./repo_cuda). Tests: tests/gpu/test_gpu.sh on a GPU; tests/gpu/test_emu.sh runs the
same checks with no GPU, on a CPU stand-in for the CUDA runtime and cuBLAS (tests/gpu/emu).
*/
#define REPO_CUDA
#include "repo.c"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#ifdef REPO_NCCL
#include <nccl.h>
#endif

// ----------------------------------------------------------------------------
// checks: every CUDA and cuBLAS call

static void cuda_check(cudaError_t err, const char *file, int line) {
    if (err != cudaSuccess) die("CUDA error at %s:%d: %s", file, line, cudaGetErrorString(err));
}
#define cudaCheck(call) cuda_check((call), __FILE__, __LINE__)
#define kernelCheck() cuda_check(cudaGetLastError(), __FILE__, __LINE__)

static void cublas_check(cublasStatus_t st, const char *file, int line) {
    if (st != CUBLAS_STATUS_SUCCESS) die("cuBLAS error at %s:%d: %s", file, line, cublasGetStatusString(st));
}
#define cublasCheck(call) cublas_check((call), __FILE__, __LINE__)

static int ceil_div(size_t a, size_t b) { return (int)((a + b - 1) / b); }
static int grid_for(size_t n, int block) { // grid-stride loops: at most 1M blocks, at least 1
    size_t g = (n + block - 1) / block;
    return g < 1 ? 1 : (int)(g < 65535 * 16 ? g : 65535 * 16);
}

// ----------------------------------------------------------------------------
// this process's GPU: one per process

enum { PREC_FP32, PREC_TF32, PREC_BF16 };
enum { PH_MATMUL, PH_ATTENTION, PH_NORM, PH_LOGPROB, PH_ELEMENTWISE, PH_OPTIMIZER, PH_TRANSFER, NUM_PHASES };
static const char *PHASE_NAMES[NUM_PHASES] = {"matmul (cuBLAS)", "attention (softmax, permutes)", "layernorm/rmsnorm",
                                              "logprob (vocab softmax)", "elementwise (gelu/swiglu/rope/...)",
                                              "optimizer (norm, scale, adamw)", "host<->device copies"};

static struct {
    int ready, precision, poison, profile;
    cublasHandle_t cublas;
    float *params;                      // the model's parameter buffer (compute memory), n_params floats
    size_t n_params;
    __nv_bfloat16 *params_bf16;         // bf16: the weights rounded once per update (autocast's cast, cached)
    __nv_bfloat16 *bf_a, *bf_b;         // bf16 operands of one matmul
    size_t bf_floats;
    float *att;                         // attention scores / probabilities of one layer: (B, NH, T, T)
    float *qkvp, *dqkvp, *yp, *rowdot;  // attention: heads-major q|k|v (BT qkv), its gradient, y or dy (BT A), (B NH T)
    size_t att_floats, qkv_floats, dqkv_floats, y_floats, rowdot_floats;
    double *norm;                       // sum_squares' result
    unsigned long long *bad;            // adamw's count of non-finite new parameters
    size_t bytes;                       // everything this file allocated
    cudaEvent_t ev0, ev1;
    double phase_ms[NUM_PHASES];
    long phase_calls[NUM_PHASES];
} G;

static void poison(void *p, size_t bytes) { if (G.poison) cudaCheck(cudaMemset(p, 0xff, bytes)); } // 0xffffffff: NaN

static void print_profile(void) {
    size_t free_b, total_b;
    double total = 0;
    for (int i = 0; i < NUM_PHASES; i++) total += G.phase_ms[i];
    fprintf(stderr, "repo_cuda profile (ms summed over the run, synchronized per phase):\n");
    for (int i = 0; i < NUM_PHASES; i++)
        fprintf(stderr, "  phase %-36s %10.2f ms %5.1f%% %8ld calls\n", PHASE_NAMES[i], G.phase_ms[i],
                total > 0 ? 100 * G.phase_ms[i] / total : 0.0, G.phase_calls[i]);
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        fprintf(stderr, "repo_cuda memory: allocated %.1f MiB; device in use %.1f MiB of %.1f MiB\n",
                G.bytes / 1048576.0, (total_b - free_b) / 1048576.0, total_b / 1048576.0);
}

// the device, cuBLAS and the environment's switches, at the first allocation
static void gpu_init(void) {
    if (G.ready) return;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0)
        die("no CUDA GPU found (%s); use ./repo on the CPU", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    const char *e = getenv("REPO_CUDA_POISON");
    G.poison = e && *e && strcmp(e, "0");
    e = getenv("REPO_CUDA_PROFILE");
    G.profile = e && *e && strcmp(e, "0");
    cudaCheck(cudaSetDevice(n > 1 ? dist_rank() % n : 0)); // one GPU per process
    cublasCheck(cublasCreate(&G.cublas));
    // CUBLAS_DEFAULT_MATH never trades precision away by itself (TF32 only through the compute type, tf32)
    cublasCheck(cublasSetMathMode(G.cublas, CUBLAS_DEFAULT_MATH));
    cudaCheck(cudaEventCreate(&G.ev0)); cudaCheck(cudaEventCreate(&G.ev1));
    if (G.profile) atexit(print_profile);
    G.ready = 1;
}

static void *gpu_alloc(size_t bytes) {
    gpu_init();
    void *p = NULL;
    if (bytes == 0) bytes = 16;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) die("cudaMalloc of %.1f MiB failed: %s (%.1f MiB allocated before)", bytes / 1048576.0,
                                cudaGetErrorString(err), G.bytes / 1048576.0);
    G.bytes += bytes;
    poison(p, bytes);
    return p;
}

// phases: with REPO_CUDA_PROFILE, each is bracketed by events and synchronized
static void phase_begin(void) { if (G.profile) cudaCheck(cudaEventRecord(G.ev0)); }
static void phase_end(int ph) {
    if (!G.profile) return;
    cudaCheck(cudaEventRecord(G.ev1));
    cudaCheck(cudaEventSynchronize(G.ev1));
    float ms;
    cudaCheck(cudaEventElapsedTime(&ms, G.ev0, G.ev1));
    G.phase_ms[ph] += ms; G.phase_calls[ph]++;
}

// ----------------------------------------------------------------------------
// matmuls. Our matrices are row-major; cuBLAS is column-major, so a row-major (r, c) matrix is a
// column-major (c, r) one and every product is computed transposed (as llm.c does).
// gemm: C[i] = alpha op(A[i]) op(B[i]) + beta C[i] in cuBLAS's terms, i < batch, all fp32 in memory.

__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16(in[i]);
}

static size_t span(int rows, int cols, int ld, long long stride, int batch) {
    return (size_t)(batch - 1) * stride + (size_t)ld * (cols - 1) + rows;
}

// a matmul operand in bf16: a weight from the cached copy, anything else rounded into scratch
static const void *bf16_operand(const float *x, size_t n, __nv_bfloat16 *scratch) {
    if (G.params_bf16 && x >= G.params && x + n <= G.params + G.n_params) return G.params_bf16 + (x - G.params);
    if (n > G.bf_floats) die("gemm: bf16 operand of %zu elements > %zu", n, G.bf_floats);
    to_bf16_kernel<<<grid_for(n, 256), 256>>>(scratch, x, n);
    kernelCheck();
    return scratch;
}

static void refresh_params_bf16(void) {
    if (!G.params_bf16) return;
    to_bf16_kernel<<<grid_for(G.n_params, 256), 256>>>(G.params_bf16, G.params, G.n_params);
    kernelCheck();
}

static void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                 const float *A, int lda, long long sA, const float *B, int ldb, long long sB,
                 float *C, int ldc, long long sC, int batch, float alpha, float beta) {
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) die("gemm: k = %d", k); // never: every contraction here is over a positive size
    phase_begin();
    const void *a = A, *b = B;
    cudaDataType_t type = CUDA_R_32F;
    cublasComputeType_t compute = G.precision == PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    if (G.precision == PREC_BF16) { // both operands in bf16 (autocast's cast), accumulation in fp32
        a = bf16_operand(A, span(ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, sA, batch), G.bf_a);
        b = bf16_operand(B, span(tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, sB, batch), G.bf_b);
        type = CUDA_R_16BF;
    }
    cublasCheck(cublasGemmStridedBatchedEx(G.cublas, ta, tb, m, n, k, &alpha, a, type, lda, sA, b, type, ldb, sB,
                                           &beta, C, CUDA_R_32F, ldc, sC, batch, compute, CUBLAS_GEMM_DEFAULT));
    phase_end(PH_MATMUL);
}

// dbias / norm weights: sums over rows of a (N, C) matrix, 32 columns per block, rows split over
// blockIdx.y, accumulated (+=) with atomics:
//   db[c] += sum_n dout[n,c];  dw[c] += sum_n dout[n,c] * xhat[n,c],
//   xhat = (x - mean) rstd (LayerNorm), x rstd (RMSNorm: mean NULL)
__global__ void column_sums_kernel(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                                   const float *rstd, int N, int C) {
    __shared__ float sw[8][33], sb[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float gw = 0, gb = 0;
    if (c < C)
        for (int n = blockIdx.y * 8 + threadIdx.y; n < N; n += gridDim.y * 8) {
            float d = dout[(size_t)n * C + c];
            gb += d;
            if (dw) gw += d * (inp[(size_t)n * C + c] - (mean ? mean[n] : 0.0f)) * rstd[n];
        }
    sw[threadIdx.y][threadIdx.x] = gw; sb[threadIdx.y][threadIdx.x] = gb;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int i = 1; i < 8; i++) { gw += sw[i][threadIdx.x]; gb += sb[i][threadIdx.x]; }
        if (dw) atomicAdd(&dw[c], gw);
        if (db) atomicAdd(&db[c], gb);
    }
}

static void column_sums(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, int N, int C) {
    if (!dw && !db) return;
    int gy = ceil_div(N, 256);
    if (gy > 256) gy = 256;
    column_sums_kernel<<<dim3(ceil_div(C, 32), gy), dim3(32, 8)>>>(dw, db, dout, inp, mean, rstd, N, C);
    kernelCheck();
}

// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias
__global__ void add_bias_kernel(float *out, const float *bias, size_t N, int OC) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N * OC; i += (size_t)gridDim.x * blockDim.x)
        out[i] += bias[i % OC];
}

static void matmul_forward_gpu(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, weight, C, 0, inp, C, 0, out, OC, 0, 1, 1.0f, 0.0f);
    if (bias) {
        phase_begin();
        add_bias_kernel<<<grid_for((size_t)N * OC, 256), 256>>>(out, bias, (size_t)N, OC); kernelCheck();
        phase_end(PH_ELEMENTWISE);
    }
}

// dinp += dout @ weight, dweight += dout^T @ inp, dbias += colsum(dout)
static void matmul_backward_gpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *weight, int N, int C, int OC) {
    if (dinp) gemm(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, weight, C, 0, dout, OC, 0, dinp, C, 0, 1, 1.0f, 1.0f);
    if (dweight) gemm(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, 0, dout, OC, 0, dweight, C, 0, 1, 1.0f, 1.0f);
    if (dbias) {
        phase_begin();
        column_sums(NULL, dbias, dout, NULL, NULL, NULL, N, OC);
        phase_end(PH_NORM);
    }
}

// ----------------------------------------------------------------------------
// the layers

// out[n] = wte[tokens[n]] + wpe[pos[n]]
__global__ void encoder_forward_kernel(float *out, const int *tokens, const int *pos, const float *wte, const float *wpe, int N, int C) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * C; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / C, c = i % C;
        out[i] = wte[(size_t)tokens[n] * C + c] + (wpe ? wpe[(size_t)pos[n] * C + c] : 0.0f);
    }
}

// dwte[tokens[n]] += dout[n]; dwpe[pos[n]] += dout[n] (atomics: rows share tokens and positions)
__global__ void encoder_backward_kernel(float *dwte, float *dwpe, const float *dout, const int *tokens, const int *pos, int N, int C) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * C; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / C, c = i % C;
        atomicAdd(&dwte[(size_t)tokens[n] * C + c], dout[i]);
        if (dwpe) atomicAdd(&dwpe[(size_t)pos[n] * C + c], dout[i]);
    }
}

static void encoder_forward_gpu(float *out, const int *tokens, const int *pos, const float *wte, const float *wpe, int N, int C) {
    phase_begin();
    encoder_forward_kernel<<<grid_for((size_t)N * C, 256), 256>>>(out, tokens, pos, wte, wpe, N, C); kernelCheck();
    phase_end(PH_ELEMENTWISE);
}

static void encoder_backward_gpu(float *dwte, float *dwpe, const float *dout, const int *tokens, const int *pos, int N, int C) {
    phase_begin();
    encoder_backward_kernel<<<grid_for((size_t)N * C, 256), 256>>>(dwte, dwpe, dout, tokens, pos, N, C); kernelCheck();
    phase_end(PH_ELEMENTWISE);
}

__device__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffff, x, o);
    return x;
}
__device__ float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, o));
    return x;
}

// one warp per row. LayerNorm: out = (x - mean) rstd w + b, rstd = 1/sqrt(var + eps);
// RMSNorm (mean NULL, b NULL): out = x rstd w, rstd = 1/sqrt(mean(x^2) + eps)
__global__ void norm_forward_kernel(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                    const float *b, int N, int C, float eps) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    float m = 0;
    if (mean) {
        for (int i = lane; i < C; i += 32) m += x[i];
        m = warp_sum(m) / C;
    }
    float v = 0;
    for (int i = lane; i < C; i += 32) { float d = x[i] - m; v += d * d; }
    float s = 1.0f / sqrtf(warp_sum(v) / C + eps);
    float *o = out + (size_t)n * C;
    for (int i = lane; i < C; i += 32) o[i] = (x[i] - m) * s * w[i] + (b ? b[i] : 0.0f);
    if (lane == 0) { if (mean) mean[n] = m; rstd[n] = s; }
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dout w (RMSNorm: no mean(g) term, xhat = x rstd);
// then dw += sum_n dout xhat, db += sum_n dout
__global__ void norm_backward_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                     const float *mean, const float *rstd, int N, int C) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
    float m = mean ? mean[n] : 0.0f, s = rstd[n], mg = 0, mgx = 0;
    for (int i = lane; i < C; i += 32) { float g = d[i] * w[i]; mg += g; mgx += g * (x[i] - m) * s; }
    mg = mean ? warp_sum(mg) / C : 0.0f;
    mgx = warp_sum(mgx) / C;
    float *dx = dinp + (size_t)n * C;
    for (int i = lane; i < C; i += 32) dx[i] += s * (d[i] * w[i] - mg - (x[i] - m) * s * mgx);
}

static void norm_forward_gpu(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                             int N, int C, float eps) {
    phase_begin();
    norm_forward_kernel<<<ceil_div(N, 8), 256>>>(out, mean, rstd, inp, w, b, N, C, eps); kernelCheck();
    phase_end(PH_NORM);
}

static void norm_backward_gpu(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, int N, int C) {
    phase_begin();
    norm_backward_kernel<<<ceil_div(N, 8), 256>>>(dinp, dout, inp, w, mean, rstd, N, C); kernelCheck();
    column_sums(dw, db, dout, inp, mean, rstd, N, C);
    phase_end(PH_NORM);
}

// repo.c's LayerNorm and RMSNorm signatures
static void layernorm_forward_gpu(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                                  int N, int C, float eps) { norm_forward_gpu(out, mean, rstd, inp, w, b, N, C, eps); }
static void layernorm_backward_gpu(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                                   const float *mean, const float *rstd, int N, int C) {
    norm_backward_gpu(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}
static void rmsnorm_forward_gpu(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    norm_forward_gpu(out, NULL, rstd, inp, w, NULL, N, C, eps);
}
static void rmsnorm_backward_gpu(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                 const float *rstd, int N, int C) {
    norm_backward_gpu(dinp, dw, NULL, dout, inp, w, NULL, rstd, N, C);
}

// attention. Heads-major copies make every head a contiguous (T, hd) matrix, and the `group`
// query heads that share a key/value head a contiguous (group T, hd) one:
//   qkv (B, T, [q NH hd | k NKV hd | v NKV hd])  <->  qkvp [q (B, NH, T, hd) | k (B, NKV, T, hd) | v (B, NKV, T, hd)]
__global__ void qkv_permute_kernel(float *qkvp, const float *qkv, int B, int T, int NH, int NKV, int hd, int backward) {
    int W = (NH + 2 * NKV) * hd;
    size_t n = (size_t)B * T * W;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int col = (int)(i % W), d = col % hd, head = col / hd; // head among the NH + 2 NKV of a row
        size_t bt = i / W, b = bt / T, t = bt % T, j;
        if (head < NH) j = ((b * NH + head) * T + t) * hd + d;
        else if (head < NH + NKV) j = (size_t)B * NH * T * hd + ((b * NKV + head - NH) * T + t) * hd + d;
        else j = (size_t)B * (NH + NKV) * T * hd + ((b * NKV + head - NH - NKV) * T + t) * hd + d;
        if (backward) ((float *)qkv)[i] += qkvp[j]; else qkvp[j] = qkv[i];
    }
}

// y (B, T, NH hd) <-> yp (B, NH, T, hd)
__global__ void heads_permute_kernel(float *yp, const float *y, int B, int T, int NH, int hd, int backward) {
    size_t n = (size_t)B * T * NH * hd;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int A = NH * hd, col = (int)(i % A), h = col / hd, d = col % hd;
        size_t bt = i / A, b = bt / T, t = bt % T, j = ((b * NH + h) * T + t) * hd + d;
        if (backward) ((float *)y)[i] = yp[j]; else yp[j] = y[i];
    }
}

// in place on each row (b, h, t) of scores already scaled by 1/sqrt(hd), one warp per row:
// att[t2] = exp(s[t2] - max) / sum_{t2' <= t} exp(s[t2'] - max) for t2 <= t, 0 for t2 > t; lse = max + log sum
__global__ void causal_softmax_kernel(float *att, float *lse, int rows, int T) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    int t = row % T;
    float *a = att + (size_t)row * T, maxval = -INFINITY, sum = 0;
    for (int t2 = lane; t2 <= t; t2 += 32) maxval = fmaxf(maxval, a[t2]);
    maxval = warp_max(maxval);
    for (int t2 = lane; t2 <= t; t2 += 32) { float e = expf(a[t2] - maxval); a[t2] = e; sum += e; }
    sum = warp_sum(sum);
    for (int t2 = lane; t2 < T; t2 += 32) a[t2] = t2 <= t ? a[t2] / sum : 0.0f;
    if (lane == 0) lse[row] = maxval + logf(sum);
}

// backward's probabilities rebuilt in place from the recomputed scores: P = exp(s - lse), 0 above the diagonal
__global__ void softmax_from_lse_kernel(float *att, const float *lse, size_t rows, int T) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < rows * T; i += (size_t)gridDim.x * blockDim.x) {
        size_t row = i / T;
        int t = (int)(row % T), t2 = (int)(i % T);
        att[i] = t2 <= t ? expf(att[i] - lse[row]) : 0.0f;
    }
}

// rowdot[b, h, t] = dy_t . y_t = sum_t2 P[t2] dP[t2]  (dP[t2] = dy_t . v_t2, y_t = sum_t2 P[t2] v_t2); one warp per row
__global__ void attention_rowdot_kernel(float *rowdot, const float *dy, const float *y, int B, int T, int NH, int hd) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= B * NH * T) return;
    int t = row % T, h = (row / T) % NH, b = row / (T * NH);
    size_t at = ((size_t)b * T + t) * NH * hd + (size_t)h * hd;
    float s = 0;
    for (int i = lane; i < hd; i += 32) s += dy[at + i] * y[at + i];
    s = warp_sum(s);
    if (lane == 0) rowdot[row] = s;
}

// softmax backward in place, a 32x32 tile of (t, t2) per block: P -> dS = P (dP - rowdot) scale,
// dP[t, t2] = dy_t . v_t2 formed in shared memory. Tiles above the diagonal hold zeros and keep them.
// dyp (B, NH, T, hd); vp (B, NKV, T, hd); att (B, NH, T, T)
__global__ void softmax_backward_kernel(float *att, const float *dyp, const float *vp, const float *rowdot,
                                        int T, int NH, int NKV, int hd, float scale) {
    __shared__ float sy[32][33], sv[32][33];
    if (blockIdx.x > blockIdx.y) return; // every t2 > every t
    int bh = blockIdx.z, b = bh / NH, h = bh % NH, kvh = h / (NH / NKV);
    int tx = threadIdx.x, ty = threadIdx.y, t = blockIdx.y * 32 + ty, t2 = blockIdx.x * 32 + tx;
    const float *dy = dyp + (size_t)bh * T * hd, *v = vp + ((size_t)b * NKV + kvh) * T * hd;
    float dp = 0;
    for (int k0 = 0; k0 < hd; k0 += 32) {
        int ry = blockIdx.y * 32 + ty, rv = blockIdx.x * 32 + ty, k = k0 + tx; // rows this thread loads
        sy[ty][tx] = ry < T && k < hd ? dy[(size_t)ry * hd + k] : 0.0f;
        sv[ty][tx] = rv < T && k < hd ? v[(size_t)rv * hd + k] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < 32; kk++) dp += sy[ty][kk] * sv[tx][kk];
        __syncthreads();
    }
    if (t >= T || t2 >= T) return;
    float *a = att + ((size_t)bh * T + t) * T + t2;
    *a = t2 <= t ? *a * (dp - rowdot[(size_t)bh * T + t]) * scale : 0.0f;
}

// forward: atty = softmax(q k^T / sqrt(hd), causal) v per head, lse kept per row
static void attention_forward_gpu(float *atty, float *lse, const float *qkv, int B, int T, int NH, int NKV, int hd) {
    int group = NH / NKV, rows = B * NH * T;
    long long sq = (long long)group * T * hd, skv = (long long)T * hd, satt = (long long)group * T * T;
    if ((size_t)rows * T > G.att_floats || (size_t)B * T * (NH + 2 * NKV) * hd > G.qkv_floats)
        die("attention: a batch of %d x %d is larger than the GPU's attention buffers", B, T);
    float *q = G.qkvp, *k = q + (size_t)B * NH * T * hd, *v = k + (size_t)B * NKV * T * hd;
    poison(G.att, (size_t)rows * T * sizeof(float));
    phase_begin();
    qkv_permute_kernel<<<grid_for((size_t)B * T * (NH + 2 * NKV) * hd, 256), 256>>>(G.qkvp, qkv, B, T, NH, NKV, hd, 0);
    kernelCheck();
    phase_end(PH_ATTENTION);
    // scores (group T, T) = q_g (group T, hd) k^T / sqrt(hd), one batch entry per (sequence, kv head)
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, T, group * T, hd, k, hd, skv, q, hd, sq, G.att, T, satt, B * NKV,
         1.0f / sqrtf((float)hd), 0.0f);
    phase_begin();
    causal_softmax_kernel<<<ceil_div(rows, 8), 256>>>(G.att, lse, rows, T); kernelCheck();
    phase_end(PH_ATTENTION);
    // y_g (group T, hd) = P_g (group T, T) v (T, hd)
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, hd, group * T, T, v, hd, skv, G.att, T, satt, G.yp, hd, sq, B * NKV, 1.0f, 0.0f);
    phase_begin();
    heads_permute_kernel<<<grid_for((size_t)B * T * NH * hd, 256), 256>>>(G.yp, atty, B, T, NH, hd, 1); kernelCheck();
    phase_end(PH_ATTENTION);
}

// backward: dqkv += (dq | dk | dv). The scores are recomputed into the scratch buffer and turned back
// into P with the forward's lse; then P becomes dscores in place.
static void attention_backward_gpu(float *dqkv, const float *datty, const float *qkv, const float *atty, const float *lse,
                                   int B, int T, int NH, int NKV, int hd) {
    int group = NH / NKV, rows = B * NH * T;
    long long sq = (long long)group * T * hd, skv = (long long)T * hd, satt = (long long)group * T * T;
    size_t nq = (size_t)B * NH * T * hd, nkv = (size_t)B * NKV * T * hd;
    float *q = G.qkvp, *k = q + nq, *v = k + nkv, *dq = G.dqkvp, *dk = dq + nq, *dv = dk + nkv, *dy = G.yp;
    float scale = 1.0f / sqrtf((float)hd);
    poison(G.att, (size_t)rows * T * sizeof(float));
    phase_begin();
    qkv_permute_kernel<<<grid_for((size_t)B * T * (NH + 2 * NKV) * hd, 256), 256>>>(G.qkvp, qkv, B, T, NH, NKV, hd, 0);
    kernelCheck();
    heads_permute_kernel<<<grid_for((size_t)B * T * NH * hd, 256), 256>>>(dy, datty, B, T, NH, hd, 0); kernelCheck();
    attention_rowdot_kernel<<<ceil_div(rows, 8), 256>>>(G.rowdot, datty, atty, B, T, NH, hd); kernelCheck();
    phase_end(PH_ATTENTION);
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, T, group * T, hd, k, hd, skv, q, hd, sq, G.att, T, satt, B * NKV, scale, 0.0f);
    phase_begin();
    softmax_from_lse_kernel<<<grid_for((size_t)rows * T, 256), 256>>>(G.att, lse, (size_t)rows, T); kernelCheck();
    phase_end(PH_ATTENTION);
    // dv (T, hd) = sum over the group of P_j^T dy_j = P_g^T (T, group T) dy_g (group T, hd)
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, hd, T, group * T, dy, hd, sq, G.att, T, satt, dv, hd, skv, B * NKV, 1.0f, 0.0f);
    phase_begin();
    softmax_backward_kernel<<<dim3(ceil_div(T, 32), ceil_div(T, 32), B * NH), dim3(32, 32)>>>(G.att, dy, v, G.rowdot,
                                                                                               T, NH, NKV, hd, scale);
    kernelCheck();
    phase_end(PH_ATTENTION);
    // dq_g (group T, hd) = dS_g (group T, T) k (T, hd); dk (T, hd) = dS_g^T (T, group T) q_g (group T, hd)
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, hd, group * T, T, k, hd, skv, G.att, T, satt, dq, hd, sq, B * NKV, 1.0f, 0.0f);
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, hd, T, group * T, q, hd, sq, G.att, T, satt, dk, hd, skv, B * NKV, 1.0f, 0.0f);
    phase_begin();
    qkv_permute_kernel<<<grid_for((size_t)B * T * (NH + 2 * NKV) * hd, 256), 256>>>(G.dqkvp, dqkv, B, T, NH, NKV, hd, 1);
    kernelCheck();
    phase_end(PH_ATTENTION);
}

// RoPE (rotate-half), in place on the first n_heads heads of each row n, at position pos[n]:
// forward x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin; backward (the transpose) d1' = d1 cos + d2 sin, d2' = d2 cos - d1 sin
__global__ void rope_kernel(float *x, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads, int hd,
                            int row_dim, int backward) {
    int half = hd / 2;
    size_t n = (size_t)N * n_heads * half;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % half), h = (int)((i / half) % n_heads);
        size_t row = i / ((size_t)half * n_heads), t = (size_t)pos[row];
        float c = cos_t[t * half + j], s = sin_t[t * half + j];
        float *p = x + row * row_dim + (size_t)h * hd;
        float x1 = p[j], x2 = p[j + half];
        if (backward) { p[j] = x1 * c + x2 * s; p[j + half] = x2 * c - x1 * s; }
        else { p[j] = x1 * c - x2 * s; p[j + half] = x2 * c + x1 * s; }
    }
}

static void rope_gpu(float *x, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads, int hd,
                     int row_dim, int backward) {
    phase_begin();
    rope_kernel<<<grid_for((size_t)N * n_heads * (hd / 2), 256), 256>>>(x, pos, cos_t, sin_t, N, n_heads, hd, row_dim, backward);
    kernelCheck();
    phase_end(PH_ELEMENTWISE);
}
static void rope_forward_gpu(float *qkv, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads,
                             int hd, int row_dim) { rope_gpu(qkv, pos, cos_t, sin_t, N, n_heads, hd, row_dim, 0); }
static void rope_backward_gpu(float *dqkv, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads,
                              int hd, int row_dim) { rope_gpu(dqkv, pos, cos_t, sin_t, N, n_heads, hd, row_dim, 1); }

// gelu_new: out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

// dinp += dout (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx)
__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i], u = GELU_SCALE * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}

// SwiGLU on rows [gate (H) | up (H)]: out = silu(g) u, silu(g) = g sigmoid(g)
__global__ void swiglu_forward_kernel(float *out, const float *inp, int N, int H) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * H; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / H, j = i % H;
        float g = inp[n * 2 * H + j], u = inp[n * 2 * H + H + j];
        out[i] = g / (1.0f + expf(-g)) * u;
    }
}

// dgate += dout u sig (1 + g (1 - sig)), dup += dout silu(g)
__global__ void swiglu_backward_kernel(float *dinp, const float *inp, const float *dout, int N, int H) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * H; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / H, j = i % H;
        float g = inp[n * 2 * H + j], u = inp[n * 2 * H + H + j], d = dout[i];
        float sig = 1.0f / (1.0f + expf(-g));
        dinp[n * 2 * H + j] += d * u * sig * (1.0f + g * (1.0f - sig));
        dinp[n * 2 * H + H + j] += d * g * sig;
    }
}

// out = a + b (its backward is the identity: one dresidual buffer, as in repo.c)
__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

// hidden[r] = lnf[resp_row[r]] (forward); dln[resp_row[r]] += dhidden[r] (backward: the rows are distinct)
__global__ void gather_rows_kernel(float *dst, const float *src, const int *rows, int R, int C, int backward) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)R * C; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C, c = i % C, at = (size_t)rows[r] * C + c;
        if (backward) dst[at] += src[i]; else dst[i] = src[at];
    }
}

// block-wide reductions (blockDim.x a multiple of 32, at most 1024)
__device__ float block_reduce(float x, int is_max) {
    __shared__ float s[32];
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    x = is_max ? warp_max(x) : warp_sum(x);
    __syncthreads(); // s may still be read by an earlier call
    if (lane == 0) s[w] = x;
    __syncthreads();
    x = lane < nw ? s[lane] : (is_max ? -INFINITY : 0.0f);
    return is_max ? warp_max(x) : warp_sum(x);
}

// one block per response row: lse = max + log sum exp(z - max), logp = z[target] - lse
__global__ void logprob_forward_kernel(float *logp, float *lse, const float *logits, const int *targets, int V) {
    const float *z = logits + (size_t)blockIdx.x * V;
    float m = -INFINITY, s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, z[v]);
    m = block_reduce(m, 1);
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(z[v] - m);
    s = block_reduce(s, 0);
    if (threadIdx.x == 0) {
        float l = m + logf(s);
        lse[blockIdx.x] = l;
        logp[blockIdx.x] = z[targets[blockIdx.x]] - l;
    }
}

// in place: dlogits = dlogp (onehot(target) - softmax(z))
__global__ void logprob_backward_kernel(float *z_to_dz, const float *dlogp, const float *lse, const int *targets, int V) {
    float *z = z_to_dz + (size_t)blockIdx.x * V, g = dlogp[blockIdx.x], l = lse[blockIdx.x];
    int target = targets[blockIdx.x];
    for (int v = threadIdx.x; v < V; v += blockDim.x) z[v] = -g * expf(z[v] - l) + (v == target ? g : 0.0f);
}

static void gelu_forward_gpu(float *out, const float *inp, size_t n) {
    phase_begin(); gelu_forward_kernel<<<grid_for(n, 256), 256>>>(out, inp, n); kernelCheck(); phase_end(PH_ELEMENTWISE);
}
static void gelu_backward_gpu(float *dinp, const float *inp, const float *dout, size_t n) {
    phase_begin(); gelu_backward_kernel<<<grid_for(n, 256), 256>>>(dinp, inp, dout, n); kernelCheck(); phase_end(PH_ELEMENTWISE);
}
static void swiglu_forward_gpu(float *out, const float *inp, int N, int H) {
    phase_begin(); swiglu_forward_kernel<<<grid_for((size_t)N * H, 256), 256>>>(out, inp, N, H); kernelCheck(); phase_end(PH_ELEMENTWISE);
}
static void swiglu_backward_gpu(float *dinp, const float *inp, const float *dout, int N, int H) {
    phase_begin(); swiglu_backward_kernel<<<grid_for((size_t)N * H, 256), 256>>>(dinp, inp, dout, N, H); kernelCheck();
    phase_end(PH_ELEMENTWISE);
}
static void residual_forward_gpu(float *out, const float *a, const float *b, size_t n) {
    phase_begin(); residual_forward_kernel<<<grid_for(n, 256), 256>>>(out, a, b, n); kernelCheck(); phase_end(PH_ELEMENTWISE);
}
static void rows_gather_gpu(float *out, const float *in, const int *rows, int R, int C) {
    if (R == 0) return;
    phase_begin(); gather_rows_kernel<<<grid_for((size_t)R * C, 256), 256>>>(out, in, rows, R, C, 0); kernelCheck();
    phase_end(PH_ELEMENTWISE);
}
static void rows_scatter_add_gpu(float *out, const float *in, const int *rows, int R, int C) {
    if (R == 0) return;
    phase_begin(); gather_rows_kernel<<<grid_for((size_t)R * C, 256), 256>>>(out, in, rows, R, C, 1); kernelCheck();
    phase_end(PH_ELEMENTWISE);
}
static void logprob_forward_gpu(float *logp, float *lse, const float *logits, const int *targets, int R, int V) {
    if (R == 0) return;
    phase_begin(); logprob_forward_kernel<<<R, 512>>>(logp, lse, logits, targets, V); kernelCheck(); phase_end(PH_LOGPROB);
}
static void logprob_backward_gpu(float *logits_to_dlogits, const float *dlogp, const float *lse, const int *targets, int R, int V) {
    if (R == 0) return;
    phase_begin(); logprob_backward_kernel<<<R, 512>>>(logits_to_dlogits, dlogp, lse, targets, V); kernelCheck();
    phase_end(PH_LOGPROB);
}

// ----------------------------------------------------------------------------
// the optimizer

// sum of squares in double (as global_grad_norm), one atomic per block
__global__ void sum_squares_kernel(double *out, const float *x, size_t n) {
    __shared__ double s[32];
    double acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        acc += (double)x[i] * x[i];
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffff, acc, o);
    if (threadIdx.x % 32 == 0) s[threadIdx.x / 32] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)blockDim.x / 32; w++) acc += s[w];
        atomicAdd(out, acc);
    }
}

__global__ void scale_kernel(float *x, float scale, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) x[i] *= scale;
}

// AdamW as repo.c's adamw_update: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// p' = p - lr (wd p + (m / bias1) / (sqrt(v / bias2) + eps)), wd only on the first n_decay elements;
// p' goes over the gradient, and *bad counts the non-finite ones
__global__ void adamw_kernel(const float *p, float *mm, float *vv, float *grad, size_t n, size_t n_decay, float lr,
                             float beta1, float beta2, float bias1, float bias2, float eps, float weight_decay,
                             unsigned long long *bad) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i], wd = i < n_decay ? weight_decay : 0.0f;
        float mom = mm[i] = beta1 * mm[i] + (1.0f - beta1) * g;
        float vel = vv[i] = beta2 * vv[i] + (1.0f - beta2) * g * g;
        float q = p[i] - lr * (wd * p[i] + (mom / bias1) / (sqrtf(vel / bias2) + eps));
        grad[i] = q;
        if (!isfinite(q)) atomicAdd(bad, 1ULL);
    }
}

// ----------------------------------------------------------------------------
// memory, the optimizer's entry points, and the table repo.c calls

static void gpu_zero(void *p, size_t bytes) { cudaCheck(cudaMemset(p, 0, bytes)); }
static void gpu_copy(void *dst, const void *src, size_t bytes) {
    phase_begin(); cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice)); phase_end(PH_TRANSFER);
}
static void gpu_upload(void *dst, const void *src, size_t bytes) {
    phase_begin(); cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice)); phase_end(PH_TRANSFER);
}
static void gpu_download(void *dst, const void *src, size_t bytes) {
    phase_begin(); cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost)); phase_end(PH_TRANSFER);
}

static void gpu_reserve(float **p, size_t *have, size_t floats) { // scratch that only grows
    if (floats <= *have) return;
    if (*p) cudaCheck(cudaFree(*p));
    *p = (float *)gpu_alloc(floats * sizeof(float));
    *have = floats;
}

// after repo.c allocated the model's buffers: the precision, the attention scratch for the largest
// batch, the bf16 copies; called again after a resume replaced the parameters
static void gpu_prepare(Model *m, const char *precision) {
    gpu_init();
    const Config *c = &m->config;
    G.precision = !strcmp(precision, "tf32") ? PREC_TF32 : !strcmp(precision, "bf16") ? PREC_BF16 : PREC_FP32;
    size_t B = m->max_B, T = m->max_T, BT = B * T, NH = c->n_head;
    size_t QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c), C = c->channels, H = c->hidden, V = c->vocab_size;
    gpu_reserve(&G.att, &G.att_floats, B * NH * T * T);
    gpu_reserve(&G.qkvp, &G.qkv_floats, BT * QKV);
    gpu_reserve(&G.dqkvp, &G.dqkv_floats, BT * QKV);
    gpu_reserve(&G.yp, &G.y_floats, BT * A);
    gpu_reserve(&G.rowdot, &G.rowdot_floats, B * NH * T);
    if (!G.norm) { G.norm = (double *)gpu_alloc(sizeof(double)); G.bad = (unsigned long long *)gpu_alloc(sizeof(unsigned long long)); }
    G.params = m->params_memory; G.n_params = m->num_parameters;
    if (G.precision == PREC_BF16) { // the largest matmul operand: weights, (B T, width) rows, logits, probabilities
        size_t big = V * C, R = m->max_R;
        size_t cand[] = {R * V, BT * QKV, BT * F, BT * H, BT * A, BT * C, F * C, C * H, QKV * C, C * A, B * NH * T * T};
        for (size_t i = 0; i < sizeof cand / sizeof *cand; i++) if (cand[i] > big) big = cand[i];
        if (big > G.bf_floats) {
            G.bf_floats = big;
            G.bf_a = (__nv_bfloat16 *)gpu_alloc(big * sizeof(__nv_bfloat16));
            G.bf_b = (__nv_bfloat16 *)gpu_alloc(big * sizeof(__nv_bfloat16));
        }
        if (!G.params_bf16) G.params_bf16 = (__nv_bfloat16 *)gpu_alloc(G.n_params * sizeof(__nv_bfloat16));
        refresh_params_bf16();
    }
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    if (dist_rank() == 0)
        fprintf(stderr, "repo_cuda: %s, precision %s, %.1f MiB on the GPU%s\n", prop.name, precision, G.bytes / 1048576.0,
                G.poison ? ", buffers poisoned with NaN" : "");
}

static double gpu_sum_squares(const float *x, size_t n) {
    double sum;
    phase_begin();
    cudaCheck(cudaMemset(G.norm, 0, sizeof(double)));
    int grid = grid_for(n, 256) < 1024 ? grid_for(n, 256) : 1024;
    sum_squares_kernel<<<grid, 256>>>(G.norm, x, n);
    kernelCheck();
    cudaCheck(cudaMemcpy(&sum, G.norm, sizeof(double), cudaMemcpyDeviceToHost));
    phase_end(PH_OPTIMIZER);
    return sum;
}

static void gpu_scale(float *x, float s, size_t n) {
    phase_begin(); scale_kernel<<<grid_for(n, 256), 256>>>(x, s, n); kernelCheck(); phase_end(PH_OPTIMIZER);
}

static size_t gpu_adamw(float *params, float *grads, float *m, float *v, size_t n, size_t n_decay, float lr,
                        float weight_decay, int t) {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float bias1 = 1.0f - powf(beta1, (float)t), bias2 = 1.0f - powf(beta2, (float)t);
    unsigned long long bad = 0;
    phase_begin();
    cudaCheck(cudaMemset(G.bad, 0, sizeof bad));
    adamw_kernel<<<grid_for(n, 256), 256>>>(params, m, v, grads, n, n_decay, lr, beta1, beta2, bias1, bias2, eps,
                                            weight_decay, G.bad);
    kernelCheck();
    cudaCheck(cudaMemcpy(&bad, G.bad, sizeof bad, cudaMemcpyDeviceToHost));
    if (!bad) {
        cudaCheck(cudaMemcpy(params, grads, n * sizeof(float), cudaMemcpyDeviceToDevice));
        refresh_params_bf16();
    }
    phase_end(PH_OPTIMIZER);
    return (size_t)bad;
}

// the gradients summed over the processes, one GPU each: NCCL in ./repo_cuda_mpi (make cuda-mpi)
#ifdef REPO_NCCL
static ncclComm_t nccl_comm;
static void nccl_check(ncclResult_t r, int line) { if (r != ncclSuccess) die("NCCL error at repo.cu:%d: %s", line, ncclGetErrorString(r)); }
static void gpu_allreduce_sum(float *x, size_t n) {
    static int ready = 0;
    if (!ready) { // rank 0's id reaches every process over MPI, then NCCL connects the GPUs
        ncclUniqueId id;
        if (dist_rank() == 0) nccl_check(ncclGetUniqueId(&id), __LINE__);
        dist_broadcast(&id, sizeof id);
        nccl_check(ncclCommInitRank(&nccl_comm, dist_size(), id, dist_rank()), __LINE__);
        ready = 1;
    }
    phase_begin();
    nccl_check(ncclAllReduce(x, x, n, ncclFloat, ncclSum, nccl_comm, 0), __LINE__);
    cudaCheck(cudaStreamSynchronize(0));
    phase_end(PH_TRANSFER);
}
#else
static void gpu_allreduce_sum(float *x, size_t n) {
    (void)x; (void)n;
    if (dist_size() > 1) die("./repo_cuda trains on one GPU; build ./repo_cuda_mpi (make cuda-mpi) for several");
}
#endif

extern const Kernels GPU_KERNELS = {
    encoder_forward_gpu, encoder_backward_gpu, layernorm_forward_gpu, layernorm_backward_gpu, rmsnorm_forward_gpu,
    rmsnorm_backward_gpu, matmul_forward_gpu, matmul_backward_gpu, rope_forward_gpu, rope_backward_gpu,
    attention_forward_gpu, attention_backward_gpu, gelu_forward_gpu, gelu_backward_gpu, swiglu_forward_gpu,
    swiglu_backward_gpu, residual_forward_gpu, rows_gather_gpu, rows_scatter_add_gpu, logprob_forward_gpu,
    logprob_backward_gpu,
    0, gpu_alloc, gpu_zero, gpu_copy, gpu_upload, gpu_download, gpu_prepare,
    gpu_sum_squares, gpu_scale, gpu_adamw, gpu_allreduce_sum,
};
