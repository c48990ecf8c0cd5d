/*
repo.cu: the training step of repo.c on an NVIDIA GPU (CUDA kernels, cuBLAS for the matmuls).

repo.c does everything but the compute: loading, batching, the objective, logging, saving. It calls
the device_* functions (section "where the compute runs"); this file supplies them. The GPU keeps
one copy of the model, laid out exactly as the host's: one parameter buffer (the same offsets, so
device_sync_params is one copy), gradients and AdamW's m and v in fp32, and activations for max_B
sequences of max_T tokens pointed per batch by repo.c's own point_activations. Per batch only the
tokens and response positions go up and the per-position log-probs (and their gradients) cross.

Layers are kernels, each forward beside its backward, each with the math in a comment; backward
kernels accumulate (+=) where repo.c's do. Matmuls go through cublasGemmStridedBatchedEx, in
--precision fp32 (exact fp32), tf32 (CUBLAS_COMPUTE_32F_FAST_TF32) or bf16 (both operands rounded
to bf16, fp32 accumulation and fp32 results, as autocast; the weights' bf16 copy is refreshed after
each update; master weights, gradients, optimizer state and all other kernels stay fp32).

Attention keeps repo.c's (B, NH, T, T) probabilities and nothing else of that size: scores go
straight into that buffer, the softmax runs in place, and backward turns the probabilities into
dscores in place (dP is formed a tile at a time, with rowsum(P * dP) = dY . Y from the forward).

Environment: REPO_CUDA_POISON=1 fills every activation and gradient scratch buffer with NaN before
each forward / backward, so an element a kernel fails to write shows up as NaN in the outputs.
REPO_CUDA_PROFILE=1 times every phase with CUDA events (synchronizing) and prints a table at exit.

build: make cuda (./repo_cuda). Tests: tests/gpu/test_gpu.sh on a GPU; tests/gpu/test_emu.sh runs the
same checks with no GPU, on a CPU stand-in for the CUDA runtime and cuBLAS (tests/gpu/emu).
*/
#define REPO_CUDA
#include "repo.c"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

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
// the GPU's copy of the model: one per process

enum { PREC_FP32, PREC_TF32, PREC_BF16 };
enum { PH_MATMUL, PH_ATTENTION, PH_NORM, PH_LOGPROB, PH_ELEMENTWISE, PH_OPTIMIZER, PH_TRANSFER, NUM_PHASES };
static const char *PHASE_NAMES[NUM_PHASES] = {"matmul (cuBLAS)", "attention (softmax, permutes)", "layernorm/rmsnorm",
                                              "logprob (vocab softmax)", "elementwise (gelu/swiglu/rope/...)",
                                              "optimizer (norm, scale, adamw)", "host<->device copies"};

static struct {
    int ready, precision, poison, profile;
    cublasHandle_t cublas;
    float *params, *grads, *m, *v;      // num_parameters each (grads, m, v only when training)
    ParameterTensors p, g;              // named pointers into params, grads (as the host's)
    float *acts_memory, *scratch_memory;
    size_t acts_floats, scratch_floats;
    Activations a;                      // pointed per batch by point_activations
    BackwardScratch s;
    float *qkvp, *dqkvp, *yp, *rowdot;  // attention: heads-major q|k|v (BT qkv), its gradient, y or dy (BT A), (B NH T)
    float *rope_cos, *rope_sin;         // (max_T, hd/2)
    int *tokens, *resp_row, *resp_target;
    __nv_bfloat16 *bf_a, *bf_b;         // bf16 operands of one matmul
    size_t bf_floats;
    __nv_bfloat16 *params_bf16;         // bf16: the weights rounded once per update (autocast's cast, cached)
    size_t n_params;
    double *norm;                       // device_grad_norm's sum of squares
    size_t bytes;                       // everything this file allocated
    cudaEvent_t ev0, ev1;
    double phase_ms[NUM_PHASES];
    long phase_calls[NUM_PHASES];
} G;

static void *gpu_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 16;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) die("cudaMalloc of %.1f MiB failed: %s (%.1f MiB allocated before)", bytes / 1048576.0,
                                cudaGetErrorString(err), G.bytes / 1048576.0);
    G.bytes += bytes;
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

// dinp = dout @ weight (overwritten: repo.c zeroes it just before), dweight += dout^T @ inp, dbias += colsum(dout)
static void matmul_backward_gpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *weight, int N, int C, int OC) {
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, weight, C, 0, dout, OC, 0, dinp, C, 0, 1, 1.0f, 0.0f);
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, 0, dout, OC, 0, dweight, C, 0, 1, 1.0f, 1.0f);
    if (dbias) {
        phase_begin();
        column_sums(NULL, dbias, dout, NULL, NULL, NULL, N, OC);
        phase_end(PH_NORM);
    }
}

// ----------------------------------------------------------------------------
// the layers

// out[bt] = wte[tokens[bt]] + wpe[bt % T]
__global__ void encoder_forward_kernel(float *out, const int *tokens, const float *wte, const float *wpe, int N, int T, int C) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * C; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / C, c = i % C;
        out[i] = wte[(size_t)tokens[bt] * C + c] + (wpe ? wpe[(bt % T) * C + c] : 0.0f);
    }
}

// dwte[tokens[bt]] += dout[bt]; dwpe[bt % T] += dout[bt] (atomics: rows share tokens and positions)
__global__ void encoder_backward_kernel(float *dwte, float *dwpe, const float *dout, const int *tokens, int N, int T, int C) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * C; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / C, c = i % C;
        atomicAdd(&dwte[(size_t)tokens[bt] * C + c], dout[i]);
        if (dwpe) atomicAdd(&dwpe[(bt % T) * C + c], dout[i]);
    }
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
        if (backward) ((float *)qkv)[i] = qkvp[j]; else qkvp[j] = qkv[i];
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
// att[t2] = exp(s[t2] - max) / sum_{t2' <= t} exp(s[t2'] - max) for t2 <= t, 0 for t2 > t
__global__ void causal_softmax_kernel(float *att, int rows, int T) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    int t = row % T;
    float *a = att + (size_t)row * T, maxval = -INFINITY, sum = 0;
    for (int t2 = lane; t2 <= t; t2 += 32) maxval = fmaxf(maxval, a[t2]);
    maxval = warp_max(maxval);
    for (int t2 = lane; t2 <= t; t2 += 32) { float e = expf(a[t2] - maxval); a[t2] = e; sum += e; }
    sum = warp_sum(sum);
    for (int t2 = lane; t2 < T; t2 += 32) a[t2] = t2 <= t ? a[t2] / sum : 0.0f;
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

// forward: atty = softmax(q k^T / sqrt(hd), causal) v per head; att keeps the probabilities
static void attention_forward_gpu(float *atty, float *att, const float *qkv, int B, int T, int NH, int NKV, int hd) {
    int group = NH / NKV, rows = B * NH * T;
    long long sq = (long long)group * T * hd, skv = (long long)T * hd, satt = (long long)group * T * T;
    float *q = G.qkvp, *k = q + (size_t)B * NH * T * hd, *v = k + (size_t)B * NKV * T * hd;
    phase_begin();
    qkv_permute_kernel<<<grid_for((size_t)B * T * (NH + 2 * NKV) * hd, 256), 256>>>(G.qkvp, qkv, B, T, NH, NKV, hd, 0);
    kernelCheck();
    phase_end(PH_ATTENTION);
    // scores (group T, T) = q_g (group T, hd) k^T / sqrt(hd), one batch entry per (sequence, kv head)
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, T, group * T, hd, k, hd, skv, q, hd, sq, att, T, satt, B * NKV,
         1.0f / sqrtf((float)hd), 0.0f);
    phase_begin();
    causal_softmax_kernel<<<ceil_div(rows, 8), 256>>>(att, rows, T); kernelCheck();
    phase_end(PH_ATTENTION);
    // y_g (group T, hd) = P_g (group T, T) v (T, hd)
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, hd, group * T, T, v, hd, skv, att, T, satt, G.yp, hd, sq, B * NKV, 1.0f, 0.0f);
    phase_begin();
    heads_permute_kernel<<<grid_for((size_t)B * T * NH * hd, 256), 256>>>(G.yp, atty, B, T, NH, hd, 1); kernelCheck();
    phase_end(PH_ATTENTION);
}

// backward: dqkv = (dq | dk | dv) overwritten (repo.c zeroes it before accumulating into it);
// att (this layer's probabilities) is consumed: it holds dscores afterwards
static void attention_backward_gpu(float *dqkv, const float *datty, const float *atty, const float *qkv, float *att,
                                   int B, int T, int NH, int NKV, int hd) {
    int group = NH / NKV, rows = B * NH * T;
    long long sq = (long long)group * T * hd, skv = (long long)T * hd, satt = (long long)group * T * T;
    size_t nq = (size_t)B * NH * T * hd, nkv = (size_t)B * NKV * T * hd;
    float *q = G.qkvp, *k = q + nq, *v = k + nkv, *dq = G.dqkvp, *dk = dq + nq, *dv = dk + nkv, *dy = G.yp;
    float scale = 1.0f / sqrtf((float)hd);
    phase_begin();
    qkv_permute_kernel<<<grid_for((size_t)B * T * (NH + 2 * NKV) * hd, 256), 256>>>(G.qkvp, qkv, B, T, NH, NKV, hd, 0);
    kernelCheck();
    heads_permute_kernel<<<grid_for((size_t)B * T * NH * hd, 256), 256>>>(dy, datty, B, T, NH, hd, 0); kernelCheck();
    attention_rowdot_kernel<<<ceil_div(rows, 8), 256>>>(G.rowdot, datty, atty, B, T, NH, hd); kernelCheck();
    phase_end(PH_ATTENTION);
    // dv (T, hd) = sum over the group of P_j^T dy_j = P_g^T (T, group T) dy_g (group T, hd)
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, hd, T, group * T, dy, hd, sq, att, T, satt, dv, hd, skv, B * NKV, 1.0f, 0.0f);
    phase_begin();
    softmax_backward_kernel<<<dim3(ceil_div(T, 32), ceil_div(T, 32), B * NH), dim3(32, 32)>>>(att, dy, v, G.rowdot,
                                                                                               T, NH, NKV, hd, scale);
    kernelCheck();
    phase_end(PH_ATTENTION);
    // dq_g (group T, hd) = dS_g (group T, T) k (T, hd); dk (T, hd) = dS_g^T (T, group T) q_g (group T, hd)
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, hd, group * T, T, k, hd, skv, att, T, satt, dq, hd, sq, B * NKV, 1.0f, 0.0f);
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, hd, T, group * T, q, hd, sq, att, T, satt, dk, hd, skv, B * NKV, 1.0f, 0.0f);
    phase_begin();
    qkv_permute_kernel<<<grid_for((size_t)B * T * (NH + 2 * NKV) * hd, 256), 256>>>(G.dqkvp, dqkv, B, T, NH, NKV, hd, 1);
    kernelCheck();
    phase_end(PH_ATTENTION);
}

// RoPE (rotate-half), in place on the first n_heads heads of each row, position t = bt % T:
// forward x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin; backward (the transpose) d1' = d1 cos + d2 sin, d2' = d2 cos - d1 sin
__global__ void rope_kernel(float *x, const float *cos_t, const float *sin_t, int N, int T, int n_heads, int hd,
                            int row_dim, int backward) {
    int half = hd / 2;
    size_t n = (size_t)N * n_heads * half;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % half), h = (int)((i / half) % n_heads);
        size_t bt = i / ((size_t)half * n_heads);
        float c = cos_t[(bt % T) * half + j], s = sin_t[(bt % T) * half + j];
        float *p = x + bt * row_dim + (size_t)h * hd;
        float x1 = p[j], x2 = p[j + half];
        if (backward) { p[j] = x1 * c + x2 * s; p[j + half] = x2 * c - x1 * s; }
        else { p[j] = x1 * c - x2 * s; p[j + half] = x2 * c + x1 * s; }
    }
}

static void rope_gpu(float *x, int N, int T, int n_heads, int hd, int row_dim, int backward) {
    phase_begin();
    rope_kernel<<<grid_for((size_t)N * n_heads * (hd / 2), 256), 256>>>(x, G.rope_cos, G.rope_sin, N, T, n_heads, hd,
                                                                         row_dim, backward);
    kernelCheck();
    phase_end(PH_ELEMENTWISE);
}

// gelu_new: out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

// dinp = dout (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx)   (overwritten: repo.c zeroes it before +=)
__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i], u = GELU_SCALE * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
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

// dgate = dout u sig (1 + g (1 - sig)), dup = dout silu(g)   (overwritten: repo.c zeroes it before +=)
__global__ void swiglu_backward_kernel(float *dinp, const float *inp, const float *dout, int N, int H) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)N * H; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / H, j = i % H;
        float g = inp[n * 2 * H + j], u = inp[n * 2 * H + H + j], d = dout[i];
        float sig = 1.0f / (1.0f + expf(-g));
        dinp[n * 2 * H + j] = d * u * sig * (1.0f + g * (1.0f - sig));
        dinp[n * 2 * H + H + j] = d * g * sig;
    }
}

// out = a + b (its backward is the identity: one dresidual buffer, as in repo.c)
__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

// hidden[r] = lnf[resp_row[r]] (forward); dln[resp_row[r]] += dhidden[r] (backward)
__global__ void gather_rows_kernel(float *dst, const float *src, const int *rows, int R, int C, int backward) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)R * C; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C, c = i % C, at = (size_t)rows[r] * C + c;
        if (backward) atomicAdd(&dst[at], src[i]); else dst[i] = src[at];
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

// AdamW as adamw_update: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// p -= lr (wd p + (m / bias1) / (sqrt(v / bias2) + eps)), wd only on the first n_decay elements
__global__ void adamw_kernel(float *p, float *mm, float *vv, const float *grad, size_t n, size_t n_decay, float lr,
                             float beta1, float beta2, float bias1, float bias2, float eps, float weight_decay) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i], wd = i < n_decay ? weight_decay : 0.0f;
        float mom = mm[i] = beta1 * mm[i] + (1.0f - beta1) * g;
        float vel = vv[i] = beta2 * vv[i] + (1.0f - beta2) * g * g;
        p[i] -= lr * (wd * p[i] + (mom / bias1) / (sqrtf(vel / bias2) + eps));
    }
}

// ----------------------------------------------------------------------------
// the device_* functions repo.c calls

static void poison(void *p, size_t floats) { if (G.poison) cudaCheck(cudaMemset(p, 0xff, floats * sizeof(float))); } // 0xffffffff: NaN

static void device_setup(Model *m) {
    if (G.ready) die("device_setup: one GPU model per process");
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0)
        die("no CUDA GPU found (%s); use ./repo on the CPU", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    const char *prec = opt_precision;
    if (!strcmp(prec, "fp32")) G.precision = PREC_FP32;
    else if (!strcmp(prec, "tf32")) G.precision = PREC_TF32;
    else if (!strcmp(prec, "bf16")) G.precision = PREC_BF16;
    else die("--precision: unknown \"%s\" (fp32, tf32, bf16)", prec);
    const char *e = getenv("REPO_CUDA_POISON");
    G.poison = e && *e && strcmp(e, "0");
    e = getenv("REPO_CUDA_PROFILE");
    G.profile = e && *e && strcmp(e, "0");
    cudaCheck(cudaSetDevice(0));
    cublasCheck(cublasCreate(&G.cublas));
    // CUBLAS_DEFAULT_MATH never trades precision away by itself (TF32 only through the compute type, tf32)
    cublasCheck(cublasSetMathMode(G.cublas, CUBLAS_DEFAULT_MATH));
    cudaCheck(cudaEventCreate(&G.ev0)); cudaCheck(cudaEventCreate(&G.ev1));

    const Config *c = &m->config;
    size_t P = m->num_parameters, BT = (size_t)m->max_B * m->max_T;
    size_t C = c->channels, V = c->vocab_size, QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c), H = c->hidden;
    G.params = (float *)gpu_alloc(P * sizeof(float));
    cudaCheck(cudaMemcpy(G.params, m->params_memory, P * sizeof(float), cudaMemcpyHostToDevice));
    point_parameters(&G.p, G.params, m->param_sizes);
    int training = m->grads_memory != NULL;
    if (training) {
        G.grads = (float *)gpu_alloc(P * sizeof(float));
        G.m = (float *)gpu_alloc(P * sizeof(float));
        G.v = (float *)gpu_alloc(P * sizeof(float));
        cudaCheck(cudaMemset(G.grads, 0, P * sizeof(float)));
        cudaCheck(cudaMemcpy(G.m, m->m_memory, P * sizeof(float), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(G.v, m->v_memory, P * sizeof(float), cudaMemcpyHostToDevice));
        point_parameters(&G.g, G.grads, m->param_sizes);
    }
    // activations and backward scratch as model_alloc_batch sizes them (point_activations lays them out)
    G.acts_floats = activation_floats(c, m->max_B, m->max_T, (int)BT);
    G.acts_memory = (float *)gpu_alloc(G.acts_floats * sizeof(float));
    G.scratch_floats = training ? BT * (3 * C + A + QKV + F + H) + BT * C : 0;
    if (training) G.scratch_memory = (float *)gpu_alloc(G.scratch_floats * sizeof(float));
    G.qkvp = (float *)gpu_alloc(BT * QKV * sizeof(float));
    G.yp = (float *)gpu_alloc(BT * A * sizeof(float));
    if (training) {
        G.dqkvp = (float *)gpu_alloc(BT * QKV * sizeof(float));
        G.rowdot = (float *)gpu_alloc(BT * c->n_head * sizeof(float));
    }
    if (c->arch == ARCH_LLAMA) {
        size_t n_rope = (size_t)m->max_T * (c->head_dim / 2);
        G.rope_cos = (float *)gpu_alloc(n_rope * sizeof(float));
        G.rope_sin = (float *)gpu_alloc(n_rope * sizeof(float));
        cudaCheck(cudaMemcpy(G.rope_cos, m->rope_cos, n_rope * sizeof(float), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(G.rope_sin, m->rope_sin, n_rope * sizeof(float), cudaMemcpyHostToDevice));
    }
    G.tokens = (int *)gpu_alloc(BT * sizeof(int));
    G.resp_row = (int *)gpu_alloc(BT * sizeof(int));
    G.resp_target = (int *)gpu_alloc(BT * sizeof(int));
    G.norm = (double *)gpu_alloc(sizeof(double));
    if (G.precision == PREC_BF16) { // the largest matmul operand: weights, (B T, width) rows, logits, probabilities
        size_t big = V * C;
        size_t cand[] = {BT * V, BT * QKV, BT * F, BT * H, BT * A, BT * C, F * C, C * H, QKV * C, C * A,
                         (size_t)m->max_B * c->n_head * m->max_T * m->max_T};
        for (size_t i = 0; i < sizeof cand / sizeof *cand; i++) if (cand[i] > big) big = cand[i];
        G.bf_floats = big;
        G.bf_a = (__nv_bfloat16 *)gpu_alloc(big * sizeof(__nv_bfloat16));
        G.bf_b = (__nv_bfloat16 *)gpu_alloc(big * sizeof(__nv_bfloat16));
        G.n_params = P;
        G.params_bf16 = (__nv_bfloat16 *)gpu_alloc(P * sizeof(__nv_bfloat16));
        refresh_params_bf16();
    }
    poison(G.acts_memory, G.acts_floats);
    if (training) poison(G.scratch_memory, G.scratch_floats);
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    fprintf(stderr, "repo_cuda: %s, precision %s, %.1f MiB on the GPU%s\n", prop.name, prec, G.bytes / 1048576.0,
            G.poison ? ", buffers poisoned with NaN" : "");
    if (G.profile) atexit(print_profile);
    G.ready = 1;
}

// the host's and the GPU's activations for the current batch (the same layout)
static void point_device_batch(Model *m) {
    point_activations(m, m->B, m->T, m->R); // host: acts.logp / dlogp cross to and from here
    Model d = *m;
    d.acts_memory = G.acts_memory; d.scratch_memory = G.scratch_memory;
    point_activations(&d, m->B, m->T, m->R);
    G.a = d.acts; G.s = d.scratch;
}

static void device_forward(Model *m) {
    const Config *c = &m->config;
    int B = m->B, T = m->T, R = m->R, C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim;
    int N = B * T, QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c), V = c->vocab_size, llama = c->arch == ARCH_LLAMA;
    if (B > m->max_B || T > m->max_T) die("device_forward: batch %d x %d exceeds %d x %d", B, T, m->max_B, m->max_T);
    point_device_batch(m);
    poison(G.acts_memory, G.acts_floats);
    poison(G.qkvp, (size_t)N * QKV); poison(G.yp, (size_t)N * A);
    ParameterTensors *p = &G.p;
    Activations *a = &G.a;
    phase_begin();
    cudaCheck(cudaMemcpy(G.tokens, m->tokens, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    if (R > 0) {
        cudaCheck(cudaMemcpy(G.resp_row, m->resp_row, (size_t)R * sizeof(int), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(G.resp_target, m->resp_target, (size_t)R * sizeof(int), cudaMemcpyHostToDevice));
    }
    phase_end(PH_TRANSFER);
    phase_begin();
    encoder_forward_kernel<<<grid_for((size_t)N * C, 256), 256>>>(a->encoded, G.tokens, p->wte, p->wpe, N, T, C); kernelCheck();
    phase_end(PH_ELEMENTWISE);
    for (int l = 0; l < c->n_layer; l++) {
        const float *x = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + (size_t)l * N * C, *qkv = a->qkv + (size_t)l * N * QKV;
        float *atty = a->atty + (size_t)l * N * A, *att = a->att + (size_t)l * B * NH * T * T;
        float *res2 = a->residual2 + (size_t)l * N * C, *ln2 = a->ln2 + (size_t)l * N * C;
        float *fch = a->fch + (size_t)l * N * F, *fchg = a->fch_gelu + (size_t)l * N * H;
        float *res3 = a->residual3 + (size_t)l * N * C;
        norm_forward_gpu(ln1, llama ? NULL : a->ln1_mean + l * N, a->ln1_rstd + l * N, x, p->ln1w + l * C,
                         at_layer(p->ln1b, l, C), N, C, c->norm_eps);
        matmul_forward_gpu(qkv, ln1, p->qkvw + (size_t)l * QKV * C, at_layer(p->qkvb, l, QKV), N, C, QKV);
        if (llama) rope_gpu(qkv, N, T, NH + NKV, hd, QKV, 0);
        attention_forward_gpu(atty, att, qkv, B, T, NH, NKV, hd);
        matmul_forward_gpu(res2, atty, p->attprojw + (size_t)l * C * A, at_layer(p->attprojb, l, C), N, A, C);
        phase_begin();
        residual_forward_kernel<<<grid_for((size_t)N * C, 256), 256>>>(res2, x, res2, (size_t)N * C); kernelCheck();
        phase_end(PH_ELEMENTWISE);
        norm_forward_gpu(ln2, llama ? NULL : a->ln2_mean + l * N, a->ln2_rstd + l * N, res2, p->ln2w + l * C,
                         at_layer(p->ln2b, l, C), N, C, c->norm_eps);
        matmul_forward_gpu(fch, ln2, p->fcw + (size_t)l * F * C, at_layer(p->fcb, l, F), N, C, F);
        phase_begin();
        if (llama) swiglu_forward_kernel<<<grid_for((size_t)N * H, 256), 256>>>(fchg, fch, N, H);
        else gelu_forward_kernel<<<grid_for((size_t)N * H, 256), 256>>>(fchg, fch, (size_t)N * H);
        kernelCheck();
        phase_end(PH_ELEMENTWISE);
        matmul_forward_gpu(res3, fchg, p->fcprojw + (size_t)l * C * H, at_layer(p->fcprojb, l, C), N, H, C);
        phase_begin();
        residual_forward_kernel<<<grid_for((size_t)N * C, 256), 256>>>(res3, res2, res3, (size_t)N * C); kernelCheck();
        phase_end(PH_ELEMENTWISE);
    }
    const float *last = a->residual3 + (size_t)(c->n_layer - 1) * N * C;
    norm_forward_gpu(a->lnf, llama ? NULL : a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb, N, C, c->norm_eps);
    if (R > 0) {
        phase_begin();
        gather_rows_kernel<<<grid_for((size_t)R * C, 256), 256>>>(a->hidden, a->lnf, G.resp_row, R, C, 0); kernelCheck();
        phase_end(PH_ELEMENTWISE);
        matmul_forward_gpu(a->logits, a->hidden, c->tied ? p->wte : p->lmhead, NULL, R, C, V);
        phase_begin();
        logprob_forward_kernel<<<R, 512>>>(a->logp, a->lse, a->logits, G.resp_target, V); kernelCheck();
        phase_end(PH_LOGPROB);
        phase_begin();
        cudaCheck(cudaMemcpy(m->acts.logp, a->logp, (size_t)R * sizeof(float), cudaMemcpyDeviceToHost));
        phase_end(PH_TRANSFER);
    }
}

static void device_backward(Model *m) {
    const Config *c = &m->config;
    int B = m->B, T = m->T, R = m->R, C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim;
    int N = B * T, QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c), V = c->vocab_size, llama = c->arch == ARCH_LLAMA;
    if (!G.grads) die("device_backward: the model was set up without gradients");
    ParameterTensors *p = &G.p, *g = &G.g;
    Activations *a = &G.a;
    BackwardScratch *s = &G.s;
    poison(G.scratch_memory, G.scratch_floats);
    poison(G.qkvp, (size_t)N * QKV); poison(G.yp, (size_t)N * A);
    poison(G.dqkvp, (size_t)N * QKV); poison(G.rowdot, (size_t)N * NH);
    if (R > 0) {
        phase_begin();
        cudaCheck(cudaMemcpy(a->dlogp, m->acts.dlogp, (size_t)R * sizeof(float), cudaMemcpyHostToDevice));
        phase_end(PH_TRANSFER);
        phase_begin();
        logprob_backward_kernel<<<R, 512>>>(a->logits, a->dlogp, a->lse, G.resp_target, V); kernelCheck();
        phase_end(PH_LOGPROB);
        matmul_backward_gpu(s->dhidden, c->tied ? g->wte : g->lmhead, NULL, a->logits, a->hidden,
                            c->tied ? p->wte : p->lmhead, R, C, V);
    }
    cudaCheck(cudaMemset(s->dln, 0, (size_t)N * C * sizeof(float)));
    if (R > 0) {
        phase_begin();
        gather_rows_kernel<<<grid_for((size_t)R * C, 256), 256>>>(s->dln, s->dhidden, G.resp_row, R, C, 1); kernelCheck();
        phase_end(PH_ELEMENTWISE);
    }
    cudaCheck(cudaMemset(s->dresidual, 0, (size_t)N * C * sizeof(float)));
    const float *last = a->residual3 + (size_t)(c->n_layer - 1) * N * C;
    norm_backward_gpu(s->dresidual, g->lnfw, g->lnfb, s->dln, last, p->lnfw, llama ? NULL : a->lnf_mean, a->lnf_rstd, N, C);
    for (int l = c->n_layer - 1; l >= 0; l--) {
        const float *x = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + (size_t)l * N * C, *qkv = a->qkv + (size_t)l * N * QKV;
        float *atty = a->atty + (size_t)l * N * A, *att = a->att + (size_t)l * B * NH * T * T;
        float *res2 = a->residual2 + (size_t)l * N * C, *ln2 = a->ln2 + (size_t)l * N * C;
        float *fch = a->fch + (size_t)l * N * F, *fchg = a->fch_gelu + (size_t)l * N * H;
        // dresidual holds dLoss/d residual3[l]; it flows unchanged into residual2 and x
        matmul_backward_gpu(s->dfch_gelu, g->fcprojw + (size_t)l * C * H, at_layer(g->fcprojb, l, C), s->dresidual, fchg,
                            p->fcprojw + (size_t)l * C * H, N, H, C);
        phase_begin();
        if (llama) swiglu_backward_kernel<<<grid_for((size_t)N * H, 256), 256>>>(s->dfch, fch, s->dfch_gelu, N, H);
        else gelu_backward_kernel<<<grid_for((size_t)N * H, 256), 256>>>(s->dfch, fch, s->dfch_gelu, (size_t)N * H);
        kernelCheck();
        phase_end(PH_ELEMENTWISE);
        matmul_backward_gpu(s->dln, g->fcw + (size_t)l * F * C, at_layer(g->fcb, l, F), s->dfch, ln2,
                            p->fcw + (size_t)l * F * C, N, C, F);
        norm_backward_gpu(s->dresidual, g->ln2w + l * C, at_layer(g->ln2b, l, C), s->dln, res2, p->ln2w + l * C,
                          llama ? NULL : a->ln2_mean + l * N, a->ln2_rstd + l * N, N, C);
        matmul_backward_gpu(s->datty, g->attprojw + (size_t)l * C * A, at_layer(g->attprojb, l, C), s->dresidual, atty,
                            p->attprojw + (size_t)l * C * A, N, A, C);
        attention_backward_gpu(s->dqkv, s->datty, atty, qkv, att, B, T, NH, NKV, hd);
        if (llama) rope_gpu(s->dqkv, N, T, NH + NKV, hd, QKV, 1);
        matmul_backward_gpu(s->dln, g->qkvw + (size_t)l * QKV * C, at_layer(g->qkvb, l, QKV), s->dqkv, ln1,
                            p->qkvw + (size_t)l * QKV * C, N, C, QKV);
        norm_backward_gpu(s->dresidual, g->ln1w + l * C, at_layer(g->ln1b, l, C), s->dln, x, p->ln1w + l * C,
                          llama ? NULL : a->ln1_mean + l * N, a->ln1_rstd + l * N, N, C);
    }
    phase_begin();
    encoder_backward_kernel<<<grid_for((size_t)N * C, 256), 256>>>(g->wte, g->wpe, s->dresidual, G.tokens, N, T, C);
    kernelCheck();
    phase_end(PH_ELEMENTWISE);
}

static void device_zero_grads(Model *m) {
    if (G.grads) cudaCheck(cudaMemset(G.grads, 0, m->num_parameters * sizeof(float)));
}

static double device_grad_norm(Model *m) {
    double sum;
    phase_begin();
    cudaCheck(cudaMemset(G.norm, 0, sizeof(double)));
    sum_squares_kernel<<<grid_for(m->num_parameters, 256) < 1024 ? grid_for(m->num_parameters, 256) : 1024, 256>>>(
        G.norm, G.grads, m->num_parameters);
    kernelCheck();
    cudaCheck(cudaMemcpy(&sum, G.norm, sizeof(double), cudaMemcpyDeviceToHost));
    phase_end(PH_OPTIMIZER);
    return sqrt(sum);
}

static void device_scale_grads(Model *m, float scale) {
    phase_begin();
    scale_kernel<<<grid_for(m->num_parameters, 256), 256>>>(G.grads, scale, m->num_parameters); kernelCheck();
    phase_end(PH_OPTIMIZER);
}

static void device_adamw(Model *m, float lr, float weight_decay, int t) {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float bias1 = 1.0f - powf(beta1, (float)t), bias2 = 1.0f - powf(beta2, (float)t);
    phase_begin();
    adamw_kernel<<<grid_for(m->num_parameters, 256), 256>>>(G.params, G.m, G.v, G.grads, m->num_parameters,
                                                            m->num_decay_parameters, lr, beta1, beta2, bias1, bias2,
                                                            eps, weight_decay);
    kernelCheck();
    refresh_params_bf16();
    phase_end(PH_OPTIMIZER);
}

static void device_sync_params(Model *m) {
    cudaCheck(cudaMemcpy(m->params_memory, G.params, m->num_parameters * sizeof(float), cudaMemcpyDeviceToHost));
}

static void device_sync_grads(Model *m) {
    if (G.grads) cudaCheck(cudaMemcpy(m->grads_memory, G.grads, m->num_parameters * sizeof(float), cudaMemcpyDeviceToHost));
}
