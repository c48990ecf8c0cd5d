/*
repo.c: RePO (ReLU-based Preference Optimization) and its baselines, in one file.

A preference pair is (prompt x, chosen y_w, rejected y_l). For a policy pi,
    l(y|x) = (1/|y|) sum_t log pi(y_t | x, y_<t)          mean log-prob of the response
    M      = l(y_w|x) - l(y_l|x)                           length-normalized margin
    L_RePO = mean over the batch of ReLU(gamma - M)        pairs with M >= gamma are filtered
It is the beta -> infinity limit of SimPO's -log sigmoid(beta (M - gamma)) / beta.

Reading order, from a preference pair to an AdamW step:
  1. the layers, each forward beside its backward (the math in a one-line comment);
  2. the model: one parameter buffer with named pointers (model.h), the activations, one
     transformer block's forward and backward (written once for GPT-2 and Llama), the model over a
     batch of sequences with a response mask, and incremental decoding for sampling;
  3. the objective: per-sequence log-prob sums -> margin -> per-pair loss and its derivatives
     (the only place that knows about RePO, SimPO, DPO, ...), one function and one LOSSES row each;
  4. AdamW (one flat loop) and the learning-rate and gamma schedules;
  5. the training loop, a stage per function: next batch -> forward -> pair losses -> per-token
     gradients -> backward -> clip -> AdamW -> log; then eval, sample, init and the command line.
File formats live elsewhere: checkpoint.c (model files), data.c (pairs), io.c, outdir.c, tokenizer.c.
The tuned matrix product is matmul.c; the plain one here is what it computes.
*/
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "model.h"
#include "io.h"
#include "data.h"
#include "outdir.h"
#include "dist.h"
#include "matmul.h"

// ----------------------------------------------------------------------------
// 1. the layers, each forward beside its backward. Backward functions accumulate (+=).
// Shapes: N rows (B sequences of T tokens), C channels. pos[n] is row n's position in its sequence.

// out = wte[token] + wpe[pos]   (Llama has no wpe: out = wte[token])
static void encoder_forward(float *out, const int *tokens, const int *pos, const float *wte, const float *wpe, int N, int C) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *te = wte + (size_t)tokens[n] * C;
        float *o = out + (size_t)n * C;
        if (!wpe) { memcpy(o, te, C * sizeof(float)); continue; }
        const float *pe = wpe + (size_t)pos[n] * C;
        for (int i = 0; i < C; i++) o[i] = te[i] + pe[i];
    }
}

// dwte[token] += dout; dwpe[pos] += dout
static void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, const int *pos, int N, int C) {
    // serial: many positions may share a token row
    for (int n = 0; n < N; n++) {
        float *dte = dwte + (size_t)tokens[n] * C;
        const float *d = dout + (size_t)n * C;
        for (int i = 0; i < C; i++) dte[i] += d[i];
        if (!dwpe) continue;
        float *dpe = dwpe + (size_t)pos[n] * C;
        for (int i = 0; i < C; i++) dpe[i] += d[i];
    }
}

// out = (x - mean) / sqrt(var + eps) * w + b
static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                              int N, int C, float eps) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
        float s = 1.0f / sqrtf(v / C + eps);
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m; rstd[n] = s;
    }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w; dw = sum_n dout xhat, db = sum_n dout
// EXERCISE layernorm_backward: LayerNorm's backward (dinp, dw, db) from dout, the input and the forward's mean and rstd
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float m = mean[n], s = rstd[n], mg = 0, mgx = 0;
        for (int i = 0; i < C; i++) { float g = d[i] * w[i]; mg += g; mgx += g * (x[i] - m) * s; }
        mg /= C; mgx /= C;
        float *dx = dinp + (size_t)n * C;
        for (int i = 0; i < C; i++) dx[i] += s * (d[i] * w[i] - mg - (x[i] - m) * s * mgx);
    }
    // weight and bias gradients sum over rows: split by channel so threads never collide
    #pragma omp parallel for
    for (int i = 0; i < C; i++) {
        float gw = 0, gb = 0;
        for (int n = 0; n < N; n++) {
            float d = dout[(size_t)n * C + i];
            gw += d * (inp[(size_t)n * C + i] - mean[n]) * rstd[n];
            gb += d;
        }
        dw[i] += gw; db[i] += gb;
    }
}
// END EXERCISE layernorm_backward

// Llama's RMSNorm, as Hugging Face's LlamaRMSNorm (float32 throughout):
// out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps)
static void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float ss = 0;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float s = 1.0f / sqrtf(ss / C + eps);
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = x[i] * s * w[i];
        rstd[n] = s;
    }
}

// dx = rstd * (g - x * rstd^2 * mean(g * x)), g = dout * w; dw = sum over rows of dout * x * rstd
static void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                             const float *rstd, int N, int C) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float s = rstd[n], mgx = 0;
        for (int i = 0; i < C; i++) mgx += d[i] * w[i] * x[i];
        mgx /= C;
        float *dx = dinp + (size_t)n * C;
        for (int i = 0; i < C; i++) dx[i] += s * (d[i] * w[i] - x[i] * s * s * mgx);
    }
    #pragma omp parallel for
    for (int i = 0; i < C; i++) {
        float gw = 0;
        for (int n = 0; n < N; n++) gw += dout[(size_t)n * C + i] * inp[(size_t)n * C + i] * rstd[n];
        dw[i] += gw;
    }
}

// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC). The plain triple loop: this is what the
// tuned matmul_forward below computes (tests/test_layers checks the two against each other).
static void __attribute__((unused)) matmul_forward_reference(float *out, const float *inp, const float *weight, const float *bias,
                                     int N, int C, int OC) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float s = 0;
            for (int i = 0; i < C; i++) s += inp[(size_t)n * C + i] * weight[(size_t)o * C + i];
            out[(size_t)n * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
}

// dinp (N, C) += dout (N, OC) @ weight (OC, C); dweight (OC, C) += dout^T @ inp; dbias += sum over rows of dout
// EXERCISE matmul_backward: the plain matrix product's backward (matmul_backward_reference): dinp, dweight, dbias
static void __attribute__((unused)) matmul_backward_reference(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                      const float *weight, int N, int C, int OC) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++) {
            float s = 0;
            for (int o = 0; o < OC; o++) s += dout[(size_t)n * OC + o] * weight[(size_t)o * C + i];
            dinp[(size_t)n * C + i] += s;
        }
    #pragma omp parallel for
    for (int o = 0; o < OC; o++) {
        for (int i = 0; i < C; i++) {
            float s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o] * inp[(size_t)n * C + i];
            dweight[(size_t)o * C + i] += s;
        }
        if (dbias) {
            float s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += s;
        }
    }
}
// END EXERCISE matmul_backward


// The tuned matmuls: the same products in matmul.c (packed, register-blocked AVX-512 / AVX2 / portable
// micro-kernels, bit-identical for any thread count; rows of dout that are all zero, as filtered pairs'
// and prompt positions are, are skipped). -DREPO_REFERENCE_KERNELS routes the model through the plain loops.
// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC)
static void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    matmul_forward_fast(out, inp, weight, bias, N, C, OC);
}
// dinp += dout @ weight; dweight += dout^T @ inp; dbias += sum over rows of dout
static void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int C, int OC) {
    matmul_backward_fast(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

// A small tile product for the attention's score blocks: acc (MM_ROWS, MM_COLS) in registers.
#define MM_ROWS 6
#define MM_COLS 32

// acc[r][:cols] += sum_k a[r * a_stride + k * a_step] * b[k * b_stride][:cols]; the same
// kernel serves both products, which differ only in how the scalars a are laid out
static void __attribute__((unused)) mm_block(float acc[MM_ROWS][MM_COLS], const float *a, size_t a_stride, size_t a_step, int rows,
                     const float *b, size_t b_stride, int cols, int K) {
    if (rows == MM_ROWS && cols == MM_COLS) { // the common case, with constant trip counts to vectorize
        for (int k = 0; k < K; k++) {
            const float *bk = b + (size_t)k * b_stride;
            for (int r = 0; r < MM_ROWS; r++) {
                float g = a[r * a_stride + k * a_step];
                for (int j = 0; j < MM_COLS; j++) acc[r][j] += g * bk[j];
            }
        }
        return;
    }
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * b_stride;
        for (int r = 0; r < rows; r++) {
            float g = a[r * a_stride + k * a_step];
            for (int j = 0; j < cols; j++) acc[r][j] += g * bk[j];
        }
    }
}



// Causal self-attention with grouped-query heads. qkv rows are [q (NH hd) | k (NKV hd) | v (NKV hd)];
// query head h reads key/value head h / (NH / NKV).
//   P[t, t2] = softmax_{t2 <= t}(q_t . k_t2 / sqrt(hd)),   out_t = sum_t2 P[t, t2] v_t2
// The reference pair below keeps every probability P (B, NH, T, T): the readable version, and the
// tests' oracle. The model runs the pair after it, which keeps only one log-sum-exp per row and
// recomputes P in backward (memory O(T) per head instead of O(T^2)).
static void __attribute__((unused)) attention_forward_reference(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    #pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                const float *k0 = qkv + (size_t)b * T * qkv_dim + (NH + h / group) * hd, *v0 = k0 + NKV * hd;
                float *a = att + (((size_t)b * NH + h) * T + t) * T, maxval = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) { // scores, and their maximum for a stable softmax
                    const float *k = k0 + (size_t)t2 * qkv_dim;
                    float s = 0;
                    for (int i = 0; i < hd; i++) s += q[i] * k[i];
                    a[t2] = s * scale;
                    if (a[t2] > maxval) maxval = a[t2];
                }
                float sum = 0;
                for (int t2 = 0; t2 <= t; t2++) { a[t2] = expf(a[t2] - maxval); sum += a[t2]; }
                for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0; // the future is masked
                float *o = out + ((size_t)b * T + t) * NH * hd + h * hd;
                for (int i = 0; i < hd; i++) o[i] = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = v0 + (size_t)t2 * qkv_dim;
                    for (int i = 0; i < hd; i++) o[i] += a[t2] * v[i];
                }
            }
}

// EXERCISE attention_backward: causal attention's backward with grouped-query heads, from the stored probabilities P
static void __attribute__((unused)) attention_backward_reference(float *dqkv, const float *dout, const float *qkv, const float *att,
                                         int B, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    // one thread per (sequence, kv head): the query heads of a group all write that head's dk, dv
    #pragma omp parallel
    {
        float *dp = xmalloc(sizeof(float) * T);
        #pragma omp for collapse(2)
        for (int b = 0; b < B; b++)
            for (int kvh = 0; kvh < NKV; kvh++)
                for (int h = kvh * group; h < (kvh + 1) * group; h++)
                    for (int t = 0; t < T; t++) {
                        const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                        const float *d = dout + ((size_t)b * T + t) * NH * hd + h * hd;
                        const float *q = qkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                        float *dq = dqkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                        size_t kbase = (size_t)b * T * qkv_dim + (NH + kvh) * hd, vbase = kbase + NKV * hd;
                        // pass 1: dv_t2 += P[t, t2] dout_t; dP[t2] = dout_t . v_t2; and sum_t2 P dP
                        float dot = 0;
                        for (int t2 = 0; t2 <= t; t2++) {
                            const float *v = qkv + vbase + (size_t)t2 * qkv_dim;
                            float *dv = dqkv + vbase + (size_t)t2 * qkv_dim, s = 0;
                            for (int i = 0; i < hd; i++) { s += d[i] * v[i]; dv[i] += a[t2] * d[i]; }
                            dp[t2] = s;
                            dot += a[t2] * s;
                        }
                        // pass 2: softmax backward dS = P (dP - sum P dP), then dq += dS k, dk += dS q (times the scale)
                        for (int t2 = 0; t2 <= t; t2++) {
                            float g = a[t2] * (dp[t2] - dot) * scale;
                            const float *k = qkv + kbase + (size_t)t2 * qkv_dim;
                            float *dk = dqkv + kbase + (size_t)t2 * qkv_dim;
                            for (int i = 0; i < hd; i++) { dq[i] += g * k[i]; dk[i] += g * q[i]; }
                        }
                    }
        free(dp);
    }
}
// END EXERCISE attention_backward

// The same attention keeping lse[b, h, t] = log sum_{t2 <= t} exp(q_t . k_t2 / sqrt(hd)) per row:
// backward rebuilds P[t, t2] = exp(q_t . k_t2 / sqrt(hd) - lse) from it.
static void attention_forward(float *out, float *lse, const float *qkv, int B, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    #pragma omp parallel
    {
        float *a = xmalloc(sizeof(float) * T);
        #pragma omp for collapse(3)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int h = 0; h < NH; h++) {
                    const float *q = qkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                    const float *k0 = qkv + (size_t)b * T * qkv_dim + (NH + h / group) * hd, *v0 = k0 + NKV * hd;
                    float maxval = -INFINITY;
                    for (int t2 = 0; t2 <= t; t2++) {
                        const float *k = k0 + (size_t)t2 * qkv_dim;
                        float s = 0;
                        for (int i = 0; i < hd; i++) s += q[i] * k[i];
                        a[t2] = s * scale;
                        if (a[t2] > maxval) maxval = a[t2];
                    }
                    float sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) { a[t2] = expf(a[t2] - maxval); sum += a[t2]; }
                    float *o = out + ((size_t)b * T + t) * NH * hd + h * hd, inv = 1.0f / sum;
                    for (int i = 0; i < hd; i++) o[i] = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        const float *v = v0 + (size_t)t2 * qkv_dim;
                        float p = a[t2] * inv;
                        for (int i = 0; i < hd; i++) o[i] += p * v[i];
                    }
                    lse[((size_t)b * NH + h) * T + t] = maxval + logf(sum);
                }
        free(a);
    }
}

// as attention_backward_reference, with P recomputed from lse and sum_t2 P dP = dout_t . out_t
static void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                               int B, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    #pragma omp parallel
    {
        float *p = xmalloc(sizeof(float) * T);
        #pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++)
            for (int kvh = 0; kvh < NKV; kvh++) {
                int live = 0; // a sequence whose pair was filtered has no gradient at all: skip it
                for (size_t i = 0; i < (size_t)T * NH * hd && !live; i++) live = dout[(size_t)b * T * NH * hd + i] != 0.0f;
                for (int h = kvh * group; h < (kvh + 1) * group && live; h++)
                    for (int t = 0; t < T; t++) {
                        const float *d = dout + ((size_t)b * T + t) * NH * hd + h * hd;
                        const float *y = out + ((size_t)b * T + t) * NH * hd + h * hd;
                        const float *q = qkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                        float *dq = dqkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                        size_t kbase = (size_t)b * T * qkv_dim + (NH + kvh) * hd, vbase = kbase + NKV * hd;
                        float l = lse[((size_t)b * NH + h) * T + t], dot = 0;
                        for (int i = 0; i < hd; i++) dot += d[i] * y[i];
                        for (int t2 = 0; t2 <= t; t2++) { // P[t, t2], and dv_t2 += P dout_t
                            const float *k = qkv + kbase + (size_t)t2 * qkv_dim;
                            float s = 0;
                            for (int i = 0; i < hd; i++) s += q[i] * k[i];
                            p[t2] = expf(s * scale - l);
                            float *dv = dqkv + vbase + (size_t)t2 * qkv_dim;
                            for (int i = 0; i < hd; i++) dv[i] += p[t2] * d[i];
                        }
                        for (int t2 = 0; t2 <= t; t2++) { // dS = P (dout_t . v_t2 - dot); dq += dS k, dk += dS q
                            const float *v = qkv + vbase + (size_t)t2 * qkv_dim, *k = qkv + kbase + (size_t)t2 * qkv_dim;
                            float *dk = dqkv + kbase + (size_t)t2 * qkv_dim, s = 0;
                            for (int i = 0; i < hd; i++) s += d[i] * v[i];
                            float g = p[t2] * (s - dot) * scale;
                            for (int i = 0; i < hd; i++) { dq[i] += g * k[i]; dk[i] += g * q[i]; }
                        }
                    }
            }
        free(p);
    }
}

// RoPE tables as Hugging Face's LlamaRotaryEmbedding (in float32): inv_freq_i = theta^(-2i/hd),
// angle = t * inv_freq_i, for i < hd/2 (emb = cat(freqs, freqs): both halves share an angle)
static void rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float inv_freq = 1.0f / (float)pow((double)theta, (double)((float)(2 * i) / (float)hd));
        for (int t = 0; t < T; t++) {
            float angle = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = (float)cos((double)angle);
            sin_t[(size_t)t * half + i] = (float)sin((double)angle);
        }
    }
}

// in place on the first n_heads heads of each row (q and k: they lead the qkv rows), at position pos[n]:
// x' = x cos + rotate_half(x) sin, rotate_half(x) = cat(-x[hd/2:], x[:hd/2])
static void rope_forward(float *qkv, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads,
                         int hd, int row_dim) {
    int half = hd / 2;
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *cs = cos_t + (size_t)pos[n] * half, *sn = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < n_heads; h++) {
            float *x = qkv + (size_t)n * row_dim + h * hd;
            for (int i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half];
                x[i] = x1 * cs[i] - x2 * sn[i];
                x[i + half] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

// the transpose rotation, in place on the gradient: dx1 = d1 cos + d2 sin, dx2 = d2 cos - d1 sin
static void rope_backward(float *dqkv, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads,
                          int hd, int row_dim) {
    int half = hd / 2;
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *cs = cos_t + (size_t)pos[n] * half, *sn = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < n_heads; h++) {
            float *d = dqkv + (size_t)n * row_dim + h * hd;
            for (int i = 0; i < half; i++) {
                float d1 = d[i], d2 = d[i + half];
                d[i] = d1 * cs[i] + d2 * sn[i];
                d[i + half] = d2 * cs[i] - d1 * sn[i];
            }
        }
    }
}

// gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#define GELU_SCALE 0.7978845608028654f
static void gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

// dx = dout (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx)
static void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], u = GELU_SCALE * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}

// SwiGLU on rows [gate (H) | up (H)]: out = silu(gate) * up, silu(g) = g sigmoid(g)
static void swiglu_forward(float *out, const float *inp, int N, int H) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H;
        float *o = out + (size_t)n * H;
        for (int i = 0; i < H; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

// dgate = dout * up * sig * (1 + g (1 - sig)), dup = dout * silu(g)
static void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H, *d = dout + (size_t)n * H;
        float *dg = dinp + (size_t)n * 2 * H, *du = dg + H;
        for (int i = 0; i < H; i++) {
            float sig = 1.0f / (1.0f + expf(-g[i]));
            dg[i] += d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
            du[i] += d[i] * g[i] * sig;
        }
    }
}

// out = a + b. Its backward is the identity into both inputs, so the model's backward keeps
// one dresidual buffer that every block adds into, rather than calling a function.
static void residual_forward(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// out[r] = in[rows[r]]: the response positions' rows, for the output head
static void rows_gather(float *out, const float *in, const int *rows, int R, int C) {
    for (int r = 0; r < R; r++) memcpy(out + (size_t)r * C, in + (size_t)rows[r] * C, C * sizeof(float));
}

// its backward: out[rows[r]] += in[r]
static void rows_scatter_add(float *out, const float *in, const int *rows, int R, int C) {
    for (int r = 0; r < R; r++) {
        float *o = out + (size_t)rows[r] * C;
        for (int i = 0; i < C; i++) o[i] += in[(size_t)r * C + i];
    }
}

// The output head over the response positions only (prompt positions carry no loss, so their
// logits are never formed): logp_r = logits_r[target_r] - logsumexp(logits_r).
// The (R, V) logits buffer is the only vocabulary-sized buffer; backward turns it into
// dlogits in place: dlogits = dlogp * (onehot(target) - softmax).
static void logprob_forward(float *logp, float *lse, const float *logits, const int *targets, int R, int V) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *z = logits + (size_t)r * V;
        float maxval = -INFINITY;
        for (int v = 0; v < V; v++) if (z[v] > maxval) maxval = z[v];
        float sum = 0;
        for (int v = 0; v < V; v++) sum += expf(z[v] - maxval);
        lse[r] = maxval + logf(sum);
        logp[r] = z[targets[r]] - lse[r];
    }
}

// EXERCISE logprob_backward: the fused log-softmax + gather backward: logits become dlogits = dlogp (onehot(target) - softmax)
static void logprob_backward(float *logits_to_dlogits, const float *dlogp, const float *lse, const int *targets, int R, int V) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        float *z = logits_to_dlogits + (size_t)r * V, g = dlogp[r];
        for (int v = 0; v < V; v++) z[v] = -g * expf(z[v] - lse[r]);
        z[targets[r]] += g;
    }
}
// END EXERCISE logprob_backward

// ----------------------------------------------------------------------------
// where the compute runs. The model below calls the layers only through this table: on the CPU
// it holds the functions above; repo.cu fills one with CUDA kernels of the same signatures that
// work on GPU memory (alloc/upload/download move data between it and the host). The optimizer's
// flat loops and the gradients' all-reduce across processes (MPI / NCCL) are here too.

typedef struct Model Model;
typedef struct {
    void (*encoder_forward)(float *out, const int *tokens, const int *pos, const float *wte, const float *wpe, int N, int C);
    void (*encoder_backward)(float *dwte, float *dwpe, const float *dout, const int *tokens, const int *pos, int N, int C);
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                              int N, int C, float eps);
    void (*layernorm_backward)(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C);
    void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
    void (*rmsnorm_backward)(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                             const float *rstd, int N, int C);
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int C, int OC);
    void (*rope_forward)(float *qkv, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads, int hd, int row_dim);
    void (*rope_backward)(float *dqkv, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads, int hd, int row_dim);
    void (*attention_forward)(float *out, float *lse, const float *qkv, int B, int T, int NH, int NKV, int hd);
    void (*attention_backward)(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                               int B, int T, int NH, int NKV, int hd);
    void (*gelu_forward)(float *out, const float *inp, size_t n);
    void (*gelu_backward)(float *dinp, const float *inp, const float *dout, size_t n);
    void (*swiglu_forward)(float *out, const float *inp, int N, int H);
    void (*swiglu_backward)(float *dinp, const float *inp, const float *dout, int N, int H);
    void (*residual_forward)(float *out, const float *a, const float *b, size_t n);
    void (*rows_gather)(float *out, const float *in, const int *rows, int R, int C);
    void (*rows_scatter_add)(float *out, const float *in, const int *rows, int R, int C);
    void (*logprob_forward)(float *logp, float *lse, const float *logits, const int *targets, int R, int V);
    void (*logprob_backward)(float *logits_to_dlogits, const float *dlogp, const float *lse, const int *targets, int R, int V);
    // memory: host_memory = 1 when compute memory is host memory (then no copies are made)
    int host_memory;
    void *(*alloc)(size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);      // within compute memory
    void (*upload)(void *dst, const void *src, size_t bytes);    // host -> compute memory
    void (*download)(void *dst, const void *src, size_t bytes);  // compute -> host memory
    void (*prepare)(Model *m, const char *precision); // after the model's buffers are allocated (NULL: nothing)
    // the optimizer over whole buffers (section 4), and the sum of gradients over processes
    double (*sum_squares)(const float *x, size_t n);
    void (*scale)(float *x, float s, size_t n);
    size_t (*adamw)(float *params, float *grads, float *m, float *v, size_t n, size_t n_decay, float lr,
                    float weight_decay, int t);
    void (*allreduce_sum)(float *x, size_t n);
} Kernels;

static const Kernels *cpu_kernels(void); // the table of the functions above (after the optimizer's)
#ifdef REPO_CUDA
extern const Kernels GPU_KERNELS;        // repo.cu's
#define COMPUTE_KERNELS (&GPU_KERNELS)   // where train and eval run
#else
#define COMPUTE_KERNELS cpu_kernels()
#endif

// ----------------------------------------------------------------------------
// 2. the model. Config and ParameterTensors (one buffer, named pointers) are in model.h.

static size_t checked_mul(size_t a, size_t b, const char *what) {
    if (b && a > SIZE_MAX / b) die("%s: %zu x %zu elements overflow", what, a, b);
    return a * b;
}

static void parameter_sizes(const Config *c, size_t sizes[NUM_PARAMETER_TENSORS], size_t *n_decay) {
    size_t V = c->vocab_size, C = c->channels, L = c->n_layer, H = c->hidden, T = c->max_seq_len;
    size_t QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    int gpt2 = c->arch == ARCH_GPT2; // LayerNorm biases and learned positions
    size_t s[NUM_PARAMETER_TENSORS] = {V * C, gpt2 ? T * C : 0, L * QKV * C, L * C * A, L * F * C, L * C * H,
                                       c->tied ? 0 : V * C,
                                       L * C, gpt2 ? L * C : 0, c->qkv_bias ? L * QKV : 0, c->proj_bias ? L * C : 0,
                                       L * C, gpt2 ? L * C : 0, c->mlp_bias ? L * F : 0, c->mlp_bias ? L * C : 0,
                                       C, gpt2 ? C : 0};
    memcpy(sizes, s, sizeof s);
    *n_decay = 0;
    for (int i = 0; i < NUM_MATRIX_TENSORS; i++) *n_decay += s[i];
}

static void point_parameters(ParameterTensors *p, float *memory, const size_t sizes[NUM_PARAMETER_TENSORS]) {
    float **ptrs[NUM_PARAMETER_TENSORS] = {&p->wte, &p->wpe, &p->qkvw, &p->attprojw, &p->fcw, &p->fcprojw, &p->lmhead,
        &p->ln1w, &p->ln1b, &p->qkvb, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcb, &p->fcprojb, &p->lnfw, &p->lnfb};
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { *ptrs[i] = sizes[i] ? memory : NULL; memory += sizes[i]; }
}

// One block's slice of the parameters (or of the gradients: the same layout). NULL where absent.
typedef struct {
    float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
} LayerParams;

static float *at_layer(float *base, int l, size_t stride) { return base ? base + (size_t)l * stride : NULL; }

static LayerParams layer_params(const ParameterTensors *p, const Config *c, int l) {
    size_t C = c->channels, H = c->hidden, QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    LayerParams w = {at_layer(p->ln1w, l, C), at_layer(p->ln1b, l, C), at_layer(p->qkvw, l, QKV * C),
                     at_layer(p->qkvb, l, QKV), at_layer(p->attprojw, l, C * A), at_layer(p->attprojb, l, C),
                     at_layer(p->ln2w, l, C), at_layer(p->ln2b, l, C), at_layer(p->fcw, l, F * C),
                     at_layer(p->fcb, l, F), at_layer(p->fcprojw, l, C * H), at_layer(p->fcprojb, l, C)};
    return w;
}

// One block's activations, for its N = B T rows: `in` and `out` are the residual stream before
// and after the block; the rest is what its backward needs.
typedef struct {
    float *in;                          // (N, C)
    float *ln1, *ln1_mean, *ln1_rstd;   // (N, C), (N), (N)      ln1_mean: LayerNorm only
    float *qkv;                         // (N, (NH + 2 NKV) hd)  q and k after RoPE (Llama)
    float *atty;                        // (N, NH hd)            attention output
    float *att_lse;                     // (B, NH, T)            each attention row's log-sum-exp
    float *res2;                        // (N, C)                in + attention
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fch, *fch_act;               // (N, F), (N, H)        GPT-2: c_fc, gelu; Llama: [gate | up], swiglu
    float *out;                         // (N, C)                res2 + MLP
} LayerActs;

static size_t layer_act_floats(const Config *c, size_t B, size_t T) {
    size_t N = B * T, C = c->channels;
    return N * (3 * C + 4 + qkv_dim(c) + attn_dim(c) + fc_dim(c) + c->hidden) + B * c->n_head * T;
}

typedef struct {
    float *dresidual;                   // (N, C) dLoss/d residual stream, flowing down through the blocks
    float *dln, *datty, *dqkv, *dfch, *dfch_act; // one block's gradients, reused by every block
    float *dhidden;                     // (R, C)
} BackwardScratch;

struct Model {
    Config config;
    const Kernels *k;                   // where the compute runs (the CPU's layers, or repo.cu's)
    ParameterTensors params, grads;     // named pointers into params_memory, grads_memory
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    size_t num_parameters, num_decay_parameters;
    float *params_memory, *grads_memory, *m_memory, *v_memory;  // compute memory
    float *host_params;                 // the parameters on the host: loaded and saved from here
    TensorEntry *entries;               // Hugging Face names of the buffer's slices (checkpoint.c)
    int n_entries;
    // activations, sized for max_B sequences of max_T tokens with max_R response positions
    int max_B, max_T, max_R;
    int recompute;                      // keep only each block's input; recompute the block in backward
    float *resid;                       // (L + 1, B, T, C) the residual stream: embeddings, then each block's output
    float *layer_acts_memory;           // L blocks' LayerActs (one block's with recompute)
    float *lnf, *lnf_mean, *lnf_rstd;   // (B, T, C), (B, T) x2 final norm
    float *hidden;                      // (R, C) lnf at the response positions
    float *logits;                      // (R, V) becomes dlogits in backward; (head_rows, V) under --recompute
    int head_rows;                      // response rows the head computes at once
    size_t activation_bytes;            // what model_alloc_batch allocated
    float *lse, *logp, *dlogp;          // (R)
    BackwardScratch scratch;
    float *rope_cos, *rope_sin;         // Llama: (max positions, hd/2)
    // the current batch: B sequences right-padded to T tokens; R response positions, each with its
    // row b T + t, sequence b and target token (the token at t + 1). Host copies for the host's logic.
    int B, T, R;
    int *tokens, *pos, *resp_row, *resp_target;             // compute memory
    int *host_tokens, *host_pos, *host_resp_row, *host_resp_seq, *host_resp_target;
    float *host_logp, *host_dlogp;      // (R)
};

static LayerActs layer_acts(const Model *m, int l) {
    const Config *c = &m->config;
    size_t N = (size_t)m->B * m->T, C = c->channels, H = c->hidden;
    float *p = m->layer_acts_memory + (m->recompute ? 0 : l) * layer_act_floats(c, m->B, m->T);
    LayerActs a;
    a.in = m->resid + (size_t)l * N * C;
    a.out = a.in + N * C;
    #define TAKE(field, n) do { a.field = p; p += (n); } while (0)
    TAKE(ln1, N * C); TAKE(ln1_mean, N); TAKE(ln1_rstd, N);
    TAKE(qkv, N * qkv_dim(c)); TAKE(atty, N * attn_dim(c)); TAKE(att_lse, (size_t)m->B * c->n_head * m->T);
    TAKE(res2, N * C); TAKE(ln2, N * C); TAKE(ln2_mean, N); TAKE(ln2_rstd, N);
    TAKE(fch, N * fc_dim(c)); TAKE(fch_act, N * H);
    #undef TAKE
    return a;
}

static void model_alloc_parameters(Model *m) {
    parameter_sizes(&m->config, m->param_sizes, &m->num_decay_parameters);
    m->num_parameters = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) m->num_parameters += m->param_sizes[i];
    m->host_params = xmalloc(checked_mul(m->num_parameters, sizeof(float), "parameters"));
    m->params_memory = m->host_params;
    point_parameters(&m->params, m->params_memory, m->param_sizes);
    m->entries = checkpoint_entries(&m->config, &m->params, m->host_params, &m->n_entries);
}

// a model directory (config.json + model.safetensors or its sharded index), or a .gguf file
static void model_load(Model *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->k = cpu_kernels();
    m->config = checkpoint_config(path);
    model_alloc_parameters(m);
    checkpoint_load(path, &m->config, m->entries, m->n_entries, m->host_params);
}

// the activations' and the batch's buffers, counted (activation_bytes: the memory report at train's start)
static float *compute_floats(Model *m, size_t n) {
    m->activation_bytes += checked_mul(n, sizeof(float), "activations");
    return (float *)m->k->alloc(n * sizeof(float));
}
static int *compute_ints(Model *m, size_t n) {
    m->activation_bytes += checked_mul(n, sizeof(int), "batch");
    return (int *)m->k->alloc(n * sizeof(int));
}

// moves the parameters to where k computes (nothing to do on the CPU); before model_alloc_*
static void model_place(Model *m, const Kernels *k) {
    m->k = k;
    if (k->host_memory) return;
    size_t bytes = m->num_parameters * sizeof(float);
    m->params_memory = (float *)k->alloc(bytes);
    k->upload(m->params_memory, m->host_params, bytes);
    point_parameters(&m->params, m->params_memory, m->param_sizes);
}

// the parameters back on the host, before they are saved
static void model_sync_params(Model *m) {
    if (!m->k->host_memory) m->k->download(m->host_params, m->params_memory, m->num_parameters * sizeof(float));
}

static void model_alloc_training(Model *m) {
    size_t bytes = m->num_parameters * sizeof(float);
    float **bufs[] = {&m->grads_memory, &m->m_memory, &m->v_memory};
    for (int i = 0; i < 3; i++) { *bufs[i] = (float *)m->k->alloc(bytes); m->k->zero(*bufs[i], bytes); }
    point_parameters(&m->grads, m->grads_memory, m->param_sizes);
}

// activations for up to max_B sequences of max_T tokens with at most max_R response positions
static void model_alloc_batch(Model *m, int max_B, int max_T, int max_R, int recompute) {
    const Config *c = &m->config;
    size_t BT = checked_mul(max_B, max_T, "batch"), C = c->channels, L = c->n_layer;
    m->max_B = max_B; m->max_T = max_T; m->max_R = max_R; m->recompute = recompute;
    m->resid = compute_floats(m, checked_mul(L + 1, BT * C, "activations"));
    m->layer_acts_memory = compute_floats(m, checked_mul(recompute ? 1 : L, layer_act_floats(c, max_B, max_T), "activations"));
    m->lnf = compute_floats(m, BT * C);
    m->lnf_mean = compute_floats(m, BT);
    m->lnf_rstd = compute_floats(m, BT);
    m->hidden = compute_floats(m, (size_t)max_R * C);
    // the logits of every response row; under --recompute, of head_rows rows at a time (about 128 MB)
    m->head_rows = max_R;
    if (recompute) {
        size_t rows = ((size_t)128 << 20) / (sizeof(float) * c->vocab_size);
        const char *e = getenv("REPO_HEAD_ROWS"); // the tests make the chunks small
        if (e && atoi(e) > 0) rows = (size_t)atoi(e);
        m->head_rows = rows < 1 ? 1 : rows < (size_t)max_R ? (int)rows : max_R;
    }
    m->logits = compute_floats(m, checked_mul(m->head_rows, c->vocab_size, "logits"));
    m->lse = compute_floats(m, max_R);
    m->logp = compute_floats(m, max_R);
    m->dlogp = compute_floats(m, max_R);
    if (m->grads_memory) { // backward's scratch: one block's worth, reused by every block
        BackwardScratch *s = &m->scratch;
        s->dresidual = compute_floats(m, BT * C);
        s->dln = compute_floats(m, BT * C);
        s->datty = compute_floats(m, BT * attn_dim(c));
        s->dqkv = compute_floats(m, BT * qkv_dim(c));
        s->dfch = compute_floats(m, BT * fc_dim(c));
        s->dfch_act = compute_floats(m, BT * c->hidden);
        s->dhidden = compute_floats(m, (size_t)max_R * C);
    }
    if (c->arch == ARCH_LLAMA) { // RoPE angles for every position the model knows (sampling goes past max_T)
        size_t n = (size_t)c->max_seq_len * (c->head_dim / 2);
        float *cs = xmalloc(n * sizeof(float)), *sn = xmalloc(n * sizeof(float));
        rope_tables(cs, sn, c->max_seq_len, c->head_dim, c->rope_theta);
        m->rope_cos = compute_floats(m, n); m->rope_sin = compute_floats(m, n);
        m->k->upload(m->rope_cos, cs, n * sizeof(float)); m->k->upload(m->rope_sin, sn, n * sizeof(float));
        free(cs); free(sn);
    }
    // the batch's ids and per-position numbers, in compute memory and (the same buffers on the CPU) on the host
    int **ints[] = {&m->tokens, &m->pos, &m->resp_row, &m->resp_target};
    int **host_ints[] = {&m->host_tokens, &m->host_pos, &m->host_resp_row, &m->host_resp_target};
    for (int i = 0; i < 4; i++) {
        size_t n = i < 2 ? BT : (size_t)max_R;
        *ints[i] = compute_ints(m, n);
        *host_ints[i] = m->k->host_memory ? *ints[i] : xmalloc(n * sizeof(int));
    }
    m->host_resp_seq = xmalloc(max_R * sizeof(int));
    m->host_logp = m->k->host_memory ? m->logp : xmalloc(max_R * sizeof(float));
    m->host_dlogp = m->k->host_memory ? m->dlogp : xmalloc(max_R * sizeof(float));
}

// GPT-2 and Llama differ, inside a block, only in the norm and the MLP's activation
static void norm_forward(const Model *m, float *out, float *mean, float *rstd, const float *inp, const float *w,
                         const float *b, int N) {
    const Config *c = &m->config;
    if (c->arch == ARCH_LLAMA) m->k->rmsnorm_forward(out, rstd, inp, w, N, c->channels, c->norm_eps);
    else m->k->layernorm_forward(out, mean, rstd, inp, w, b, N, c->channels, c->norm_eps);
}

static void norm_backward(const Model *m, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd, int N) {
    const Config *c = &m->config;
    if (c->arch == ARCH_LLAMA) m->k->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, c->channels);
    else m->k->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, c->channels);
}

static void mlp_act_forward(const Model *m, float *out, const float *inp, int N) {
    if (m->config.arch == ARCH_LLAMA) m->k->swiglu_forward(out, inp, N, m->config.hidden);
    else m->k->gelu_forward(out, inp, (size_t)N * m->config.hidden);
}

static void mlp_act_backward(const Model *m, float *dinp, const float *inp, const float *dout, int N) {
    if (m->config.arch == ARCH_LLAMA) m->k->swiglu_backward(dinp, inp, dout, N, m->config.hidden);
    else m->k->gelu_backward(dinp, inp, dout, (size_t)N * m->config.hidden);
}

typedef struct KVCache KVCache;
static void kv_attention(const Model *m, KVCache *kv, int l, const LayerActs *a, const int *seq, const int *pos, int n);

// One transformer block, pre-norm:  res2 = in + attention(norm1(in)),  out = res2 + mlp(norm2(res2)).
// N = B T rows at positions pos. With a key/value cache (sampling), the N rows are one new token
// per sequence seq[i], attending to that sequence's cache.
static void block_forward(const Model *m, int l, const LayerActs *a, int B, int T, const int *pos,
                          KVCache *kv, const int *kv_seq) {
    const Config *c = &m->config;
    const Kernels *k = m->k;
    LayerParams w = layer_params(&m->params, c, l);
    int N = B * T, C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim;
    int QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, a->in, w.ln1w, w.ln1b, N);
    k->matmul_forward(a->qkv, a->ln1, w.qkvw, w.qkvb, N, C, QKV);
    if (c->arch == ARCH_LLAMA) k->rope_forward(a->qkv, pos, m->rope_cos, m->rope_sin, N, NH + NKV, hd, QKV);
    if (kv) kv_attention(m, kv, l, a, kv_seq, pos, N);
    else k->attention_forward(a->atty, a->att_lse, a->qkv, B, T, NH, NKV, hd);
    k->matmul_forward(a->res2, a->atty, w.attprojw, w.attprojb, N, A, C);
    k->residual_forward(a->res2, a->in, a->res2, (size_t)N * C);
    norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, w.ln2w, w.ln2b, N);
    k->matmul_forward(a->fch, a->ln2, w.fcw, w.fcb, N, C, F);
    mlp_act_forward(m, a->fch_act, a->fch, N);
    k->matmul_forward(a->out, a->fch_act, w.fcprojw, w.fcprojb, N, H, C);
    k->residual_forward(a->out, a->res2, a->out, (size_t)N * C);
}

// The same block backward. On entry scratch.dresidual holds dLoss/d out; the residual adds pass it
// unchanged to res2 and to in, so each sub-layer's input gradient is added into it. Gradients of the
// block's parameters accumulate into grads.
static void block_backward(Model *m, int l, const LayerActs *a) {
    const Config *c = &m->config;
    const Kernels *k = m->k;
    LayerParams w = layer_params(&m->params, c, l), g = layer_params(&m->grads, c, l);
    BackwardScratch *s = &m->scratch;
    int B = m->B, T = m->T, N = B * T, C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head;
    int hd = c->head_dim, QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    // the MLP: out = res2 + fcproj(act(fc(norm2(res2))))
    k->zero(s->dfch_act, (size_t)N * H * sizeof(float));
    k->matmul_backward(s->dfch_act, g.fcprojw, g.fcprojb, s->dresidual, a->fch_act, w.fcprojw, N, H, C);
    k->zero(s->dfch, (size_t)N * F * sizeof(float));
    mlp_act_backward(m, s->dfch, a->fch, s->dfch_act, N);
    k->zero(s->dln, (size_t)N * C * sizeof(float));
    k->matmul_backward(s->dln, g.fcw, g.fcb, s->dfch, a->ln2, w.fcw, N, C, F);
    norm_backward(m, s->dresidual, g.ln2w, g.ln2b, s->dln, a->res2, w.ln2w, a->ln2_mean, a->ln2_rstd, N);
    // attention: res2 = in + attproj(attention(rope(qkv(norm1(in)))))
    k->zero(s->datty, (size_t)N * A * sizeof(float));
    k->matmul_backward(s->datty, g.attprojw, g.attprojb, s->dresidual, a->atty, w.attprojw, N, A, C);
    k->zero(s->dqkv, (size_t)N * QKV * sizeof(float));
    k->attention_backward(s->dqkv, s->datty, a->qkv, a->atty, a->att_lse, B, T, NH, NKV, hd);
    if (c->arch == ARCH_LLAMA) k->rope_backward(s->dqkv, m->pos, m->rope_cos, m->rope_sin, N, NH + NKV, hd, QKV);
    k->zero(s->dln, (size_t)N * C * sizeof(float));
    k->matmul_backward(s->dln, g.qkvw, g.qkvb, s->dqkv, a->ln1, w.qkvw, N, C, QKV);
    norm_backward(m, s->dresidual, g.ln1w, g.ln1b, s->dln, a->in, w.ln1w, a->ln1_mean, a->ln1_rstd, N);
}

// Forward over the current batch (tokens, pos, resp_* in compute memory): embeddings, the blocks,
// the final norm, and the output head at the response positions only; fills logp per position.
static void model_forward(Model *m) {
    const Config *c = &m->config;
    const Kernels *k = m->k;
    const ParameterTensors *p = &m->params;
    int N = m->B * m->T, C = c->channels;
    if (m->B > m->max_B || m->T > m->max_T || m->R > m->max_R)
        die("batch of %d x %d tokens (%d responses) exceeds the %d x %d (%d) allocated", m->B, m->T, m->R, m->max_B, m->max_T, m->max_R);
    k->encoder_forward(m->resid, m->tokens, m->pos, p->wte, p->wpe, N, C);
    for (int l = 0; l < c->n_layer; l++) {
        LayerActs a = layer_acts(m, l);
        block_forward(m, l, &a, m->B, m->T, m->pos, NULL, NULL);
    }
    const float *last = m->resid + (size_t)c->n_layer * N * C;
    norm_forward(m, m->lnf, m->lnf_mean, m->lnf_rstd, last, p->lnfw, p->lnfb, N);
    if (m->R == 0) return;
    k->rows_gather(m->hidden, m->lnf, m->resp_row, m->R, C);
    for (int r0 = 0; r0 < m->R; r0 += m->head_rows) { // in chunks of head_rows under --recompute, else at once
        int n = m->R - r0 < m->head_rows ? m->R - r0 : m->head_rows;
        float *logits = m->logits + (m->recompute ? 0 : (size_t)r0 * c->vocab_size);
        k->matmul_forward(logits, m->hidden + (size_t)r0 * C, c->tied ? p->wte : p->lmhead, NULL, n, C, c->vocab_size);
        k->logprob_forward(m->logp + r0, m->lse + r0, logits, m->resp_target + r0, n, c->vocab_size);
    }
}

// Backward from dlogp (dLoss/dlogp per response position, in compute memory); accumulates into grads.
// With recompute, each block's activations are rebuilt from its stored input first.
static void model_backward(Model *m) {
    const Config *c = &m->config;
    const Kernels *k = m->k;
    ParameterTensors *p = &m->params, *g = &m->grads;
    BackwardScratch *s = &m->scratch;
    int N = m->B * m->T, C = c->channels, R = m->R;
    k->zero(s->dhidden, (size_t)R * C * sizeof(float));
    for (int r0 = 0; r0 < R; r0 += m->head_rows) {
        int n = R - r0 < m->head_rows ? R - r0 : m->head_rows;
        const float *W = c->tied ? p->wte : p->lmhead;
        float *logits = m->logits + (m->recompute ? 0 : (size_t)r0 * c->vocab_size);
        if (m->recompute) k->matmul_forward(logits, m->hidden + (size_t)r0 * C, W, NULL, n, C, c->vocab_size);
        k->logprob_backward(logits, m->dlogp + r0, m->lse + r0, m->resp_target + r0, n, c->vocab_size);
        k->matmul_backward(s->dhidden + (size_t)r0 * C, c->tied ? g->wte : g->lmhead, NULL, logits, m->hidden + (size_t)r0 * C,
                           W, n, C, c->vocab_size);
    }
    k->zero(s->dln, (size_t)N * C * sizeof(float));
    k->rows_scatter_add(s->dln, s->dhidden, m->resp_row, R, C);
    k->zero(s->dresidual, (size_t)N * C * sizeof(float));
    const float *last = m->resid + (size_t)c->n_layer * N * C;
    norm_backward(m, s->dresidual, g->lnfw, g->lnfb, s->dln, last, p->lnfw, m->lnf_mean, m->lnf_rstd, N);
    for (int l = c->n_layer - 1; l >= 0; l--) {
        LayerActs a = layer_acts(m, l);
        if (m->recompute) block_forward(m, l, &a, m->B, m->T, m->pos, NULL, NULL);
        block_backward(m, l, &a);
    }
    k->encoder_backward(g->wte, g->wpe, s->dresidual, m->tokens, m->pos, N, C);
}

// ----------------------------------------------------------------------------
// incremental decoding (sampling, on the CPU): a key/value cache per layer, so each new token costs
// one row through the network instead of a forward over its whole sequence. The prompts go through
// model_forward once (kv_prefill copies their keys and values, Llama's already rotated); then
// decode_step runs block_forward on one new row per sequence, attending to the cache.

struct KVCache {
    int B, T;                     // sequences and positions the cache holds
    float *k, *v;                 // (L, B, T, NKV hd)
    float *x, *ln, *mean, *rstd, *qkv, *atty, *res2, *ln2, *mean2, *rstd2, *fch, *fch_act; // rows in flight: (B, ...)
    float *att;                   // (B, NH, T) one attention row per query
    float *lnf, *logits;          // (B, C), (B, V)
};

static void kv_alloc(KVCache *kv, const Config *c, int B, int T) {
    size_t KV = (size_t)c->n_kv_head * c->head_dim, C = c->channels;
    kv->B = B; kv->T = T;
    kv->k = xmalloc(checked_mul((size_t)c->n_layer * B * T, KV * sizeof(float), "key/value cache"));
    kv->v = xmalloc(checked_mul((size_t)c->n_layer * B * T, KV * sizeof(float), "key/value cache"));
    float **bufs[] = {&kv->x, &kv->ln, &kv->mean, &kv->rstd, &kv->qkv, &kv->atty, &kv->res2, &kv->ln2, &kv->mean2,
                      &kv->rstd2, &kv->fch, &kv->fch_act, &kv->att, &kv->lnf, &kv->logits};
    size_t widths[] = {C, C, 1, 1, (size_t)qkv_dim(c), (size_t)attn_dim(c), C, C, 1, 1, (size_t)fc_dim(c),
                       (size_t)c->hidden, (size_t)c->n_head * T, C, (size_t)c->vocab_size};
    for (int i = 0; i < 15; i++) *bufs[i] = xmalloc((size_t)B * widths[i] * sizeof(float));
}

static void kv_free(KVCache *kv) {
    float *bufs[] = {kv->k, kv->v, kv->x, kv->ln, kv->mean, kv->rstd, kv->qkv, kv->atty, kv->res2, kv->ln2, kv->mean2,
                     kv->rstd2, kv->fch, kv->fch_act, kv->att, kv->lnf, kv->logits};
    for (int i = 0; i < 17; i++) free(bufs[i]);
}

// after model_forward over B <= kv->B sequences of T <= kv->T tokens: cache every position's k, v
static void kv_prefill(const Model *m, KVCache *kv) {
    const Config *c = &m->config;
    int QKV = qkv_dim(c), KV = c->n_kv_head * c->head_dim, A = attn_dim(c);
    for (int l = 0; l < c->n_layer; l++) {
        const float *qkv = layer_acts(m, l).qkv;
        for (int b = 0; b < m->B; b++)
            for (int t = 0; t < m->T; t++) {
                const float *row = qkv + ((size_t)b * m->T + t) * QKV;
                size_t at = (((size_t)l * kv->B + b) * kv->T + t) * KV;
                memcpy(kv->k + at, row + A, KV * sizeof(float));
                memcpy(kv->v + at, row + A + KV, KV * sizeof(float));
            }
    }
}

// attention_forward's last row for each of the n rows in flight: row i (sequence seq[i], position
// pos[i]) stores its key and value in the cache, then attends to the cached positions 0..pos[i]
static void kv_attention(const Model *m, KVCache *kv, int l, const LayerActs *a, const int *seq, const int *pos, int n) {
    const Config *c = &m->config;
    int NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim, QKV = qkv_dim(c), A = attn_dim(c);
    int group = NH / NKV, KV = NKV * hd, T = kv->T;
    float *kc = kv->k + (size_t)l * kv->B * T * KV, *vc = kv->v + (size_t)l * kv->B * T * KV;
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < n; i++) {
        const float *row = a->qkv + (size_t)i * QKV;
        size_t at = ((size_t)seq[i] * T + pos[i]) * KV;
        memcpy(kc + at, row + A, KV * sizeof(float));
        memcpy(vc + at, row + A + KV, KV * sizeof(float));
    }
    #pragma omp parallel for collapse(2)
    for (int i = 0; i < n; i++)
        for (int h = 0; h < NH; h++) {
            const float *q = a->qkv + (size_t)i * QKV + h * hd;
            const float *k0 = kc + (size_t)seq[i] * T * KV + (h / group) * hd, *v0 = vc + (size_t)seq[i] * T * KV + (h / group) * hd;
            float *p = kv->att + ((size_t)i * NH + h) * T, maxval = -INFINITY;
            for (int t2 = 0; t2 <= pos[i]; t2++) {
                const float *key = k0 + (size_t)t2 * KV;
                float s = 0;
                for (int j = 0; j < hd; j++) s += q[j] * key[j];
                p[t2] = s * scale;
                if (p[t2] > maxval) maxval = p[t2];
            }
            float sum = 0;
            for (int t2 = 0; t2 <= pos[i]; t2++) { p[t2] = expf(p[t2] - maxval); sum += p[t2]; }
            for (int t2 = 0; t2 <= pos[i]; t2++) p[t2] /= sum;
            float *o = a->atty + (size_t)i * A + h * hd;
            for (int j = 0; j < hd; j++) o[j] = 0;
            for (int t2 = 0; t2 <= pos[i]; t2++) {
                const float *v = v0 + (size_t)t2 * KV;
                for (int j = 0; j < hd; j++) o[j] += p[t2] * v[j];
            }
        }
}

// n new tokens: token[i] at position pos[i] of cached sequence seq[i]; fills kv->logits (n, V)
static void decode_step(const Model *m, KVCache *kv, const int *token, const int *pos, const int *seq, int n) {
    const Config *c = &m->config;
    const ParameterTensors *p = &m->params;
    int C = c->channels;
    // the residual stream of the rows in flight updates in place: out aliases in
    LayerActs a = {kv->x, kv->ln, kv->mean, kv->rstd, kv->qkv, kv->atty, NULL, kv->res2, kv->ln2, kv->mean2, kv->rstd2,
                   kv->fch, kv->fch_act, kv->x};
    encoder_forward(kv->x, token, pos, p->wte, p->wpe, n, C);
    for (int l = 0; l < c->n_layer; l++) block_forward(m, l, &a, n, 1, pos, kv, seq);
    norm_forward(m, kv->lnf, kv->mean, kv->rstd, kv->x, p->lnfw, p->lnfb, n);
    m->k->matmul_forward(kv->logits, kv->lnf, c->tied ? p->wte : p->lmhead, NULL, n, C, c->vocab_size);
}

// ----------------------------------------------------------------------------
// batches of pairs: sequence 2i is prompt+chosen, 2i+1 is prompt+rejected, right-padded to T tokens.
// Position t predicts token t+1, so the response tokens y_1..y_n of a sequence with a prompt of
// P tokens are predicted at positions P-1 .. P+n-2: those are the batch's response positions (the
// response mask), and only they go through the output head.

static int pair_seq_len(const Pair *p, int rejected) { return p->n_prompt + (rejected ? p->n_rejected : p->n_chosen); }

static void upload_batch(Model *m) {
    const Kernels *k = m->k;
    size_t N = (size_t)m->B * m->T;
    if (k->host_memory) return; // the host's arrays are the compute arrays
    k->upload(m->tokens, m->host_tokens, N * sizeof(int));
    k->upload(m->pos, m->host_pos, N * sizeof(int));
    k->upload(m->resp_row, m->host_resp_row, m->R * sizeof(int));
    k->upload(m->resp_target, m->host_resp_target, m->R * sizeof(int));
}

static void model_set_batch(Model *m, Pair *const *pairs, int n_pairs) {
    int T = 0;
    for (int i = 0; i < n_pairs; i++)
        for (int k = 0; k < 2; k++) if (pair_seq_len(pairs[i], k) > T) T = pair_seq_len(pairs[i], k);
    m->B = 2 * n_pairs; m->T = T; m->R = 0;
    for (int i = 0; i < n_pairs; i++)
        for (int k = 0; k < 2; k++) {
            const Pair *p = pairs[i];
            int b = 2 * i + k, n_resp = k ? p->n_rejected : p->n_chosen;
            const int *resp = k ? p->rejected : p->chosen;
            int *row = m->host_tokens + (size_t)b * T;
            memcpy(row, p->prompt, p->n_prompt * sizeof(int));
            memcpy(row + p->n_prompt, resp, n_resp * sizeof(int));
            for (int t = p->n_prompt + n_resp; t < T; t++) row[t] = 0; // padding: causal attention never looks right
            for (int t = 0; t < T; t++) m->host_pos[(size_t)b * T + t] = t;
            for (int j = 0; j < n_resp; j++) {
                m->host_resp_row[m->R] = b * T + p->n_prompt - 1 + j;
                m->host_resp_seq[m->R] = b;
                m->host_resp_target[m->R] = resp[j];
                m->R++;
            }
        }
    upload_batch(m);
}

// s[b] = sum of log pi(y_t | ...) over sequence b's response positions: the mask in action, since
// only response positions have a logp. The margin then divides each sum by its response length.
// EXERCISE margin: per-sequence sums of the response log-probs (sequence_logps) and the length-normalized margin M
static void sequence_logps(const float *logp, const int *resp_seq, int R, int B, double *seq_logp) {
    for (int b = 0; b < B; b++) seq_logp[b] = 0;
    for (int r = 0; r < R; r++) seq_logp[resp_seq[r]] += logp[r];
}
// END EXERCISE margin

// forward over the current batch, then the summed response log-probs per sequence on the host
static void forward_logps(Model *m, double *seq_logp) {
    model_forward(m);
    if (!m->k->host_memory) m->k->download(m->host_logp, m->logp, m->R * sizeof(float));
    sequence_logps(m->host_logp, m->host_resp_seq, m->R, m->B, seq_logp);
}

// ----------------------------------------------------------------------------
// 3. the objective: per-pair statistics in, loss and dLoss/d(summed log-probs) out.
// s = summed response log-prob, n = response length, l = s/n; r = reference model's s.

typedef struct { double s_c, s_r; int n_c, n_r; double ref_c, ref_r; } PairStats;
typedef struct { double loss, d_sc, d_sr; } PairLoss;
// hyper-parameters: gamma target margin, beta inverse temperature, lambda weight of an
// auxiliary term, delta hinge margin (SLiC), alpha length penalty (R-DPO)
typedef struct { double gamma, beta, lambda, delta, alpha; } LossParams;

static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
// M = l_c - l_r: the length-normalized margin (the loss functions, the log and eval all use this one)
// EXERCISE margin: (part 2) the length-normalized margin M = s_c / n_c - s_r / n_r
static double margin(PairStats p) { return p.s_c / p.n_c - p.s_r / p.n_r; }
// END EXERCISE margin (a blank copy has: return 0;)

// RePO: ReLU(gamma - M). Pairs with M >= gamma are filtered: zero loss, zero gradient.
// EXERCISE loss_repo: RePO's pair loss ReLU(gamma - M) and its derivatives with respect to s_c and s_r
static PairLoss loss_repo(PairStats p, LossParams h) {
    double M = margin(p);
    if (M >= h.gamma) return (PairLoss){0, 0, 0};
    return (PairLoss){h.gamma - M, -1.0 / p.n_c, 1.0 / p.n_r};
}
// END EXERCISE loss_repo (a blank copy has: return (PairLoss){0, 0, 0};)

// SimPO: -log sigmoid(beta (M - gamma)); dL/dM = -beta sigmoid(-beta (M - gamma))
// EXERCISE loss_simpo: SimPO's pair loss -log sigmoid(beta (M - gamma)) and its derivatives, stable for any beta
static PairLoss loss_simpo(PairStats p, LossParams h) {
    double z = h.beta * (margin(p) - h.gamma), dM = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dM / p.n_c, -dM / p.n_r};
}
// END EXERCISE loss_simpo (a blank copy has: return (PairLoss){0, 0, 0};)

// RePO++: -log sigmoid(min(beta (M - gamma), 0)): SimPO's weighting, RePO's filter
static PairLoss loss_repo_pp(PairStats p, LossParams h) {
    double z = h.beta * (margin(p) - h.gamma);
    if (z >= 0) return (PairLoss){log(2.0), 0, 0};
    double dM = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dM / p.n_c, -dM / p.n_r};
}

// DPO: -log sigmoid(beta [(s_c - r_c) - (s_r - r_r)]), summed log-probs against the frozen initial model
// EXERCISE loss_dpo: DPO's pair loss -log sigmoid(beta [(s_c - r_c) - (s_r - r_r)]) and its derivatives
static PairLoss loss_dpo(PairStats p, LossParams h) {
    double z = h.beta * ((p.s_c - p.ref_c) - (p.s_r - p.ref_r)), dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dz, -dz};
}
// END EXERCISE loss_dpo (a blank copy has: return (PairLoss){0, 0, 0};)

// IPO: ((s_c - r_c)/n_c - (s_r - r_r)/n_r - 1/(2 beta))^2
static PairLoss loss_ipo(PairStats p, LossParams h) {
    double u = (p.s_c - p.ref_c) / p.n_c - (p.s_r - p.ref_r) / p.n_r - 1.0 / (2 * h.beta);
    return (PairLoss){u * u, 2 * u / p.n_c, -2 * u / p.n_r};
}

// SFT on the chosen responses: -l_chosen
static PairLoss loss_sft(PairStats p, LossParams h) {
    return (PairLoss){-p.s_c / p.n_c, -1.0 / p.n_c, 0};
}

// SLiC-HF: max(0, delta - s_c + s_r) - lambda s_c
static PairLoss loss_slic(PairStats p, LossParams h) {
    double hinge = h.delta - p.s_c + p.s_r;
    if (hinge <= 0) return (PairLoss){-h.lambda * p.s_c, -h.lambda, 0};
    return (PairLoss){hinge - h.lambda * p.s_c, -1 - h.lambda, 1};
}

// CPO: -log sigmoid(beta s_c - beta s_r) - lambda s_c
static PairLoss loss_cpo(PairStats p, LossParams h) {
    double z = h.beta * (p.s_c - p.s_r), dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z) - h.lambda * p.s_c, dz - h.lambda, -dz};
}

// ORPO: -l_c - lambda log sigmoid(odds(l_c) - odds(l_r)), odds(l) = l - log(1 - e^l), d odds/dl = 1/(1 - e^l).
// dL/dl_c = -1 - lambda sigmoid(-z) / (1 - e^l_c) is 0/0 when a confident model's l_c rounds to 0;
// multiplied out it is -1 - lambda / ((1 - e^l_c) + e^(l_c - odds(l_r))), finite there.
static PairLoss loss_orpo(PairStats p, LossParams h) {
    double lc = p.s_c / p.n_c, lr = p.s_r / p.n_r, odds_r = lr - log(-expm1(lr));
    double z = (lc - log(-expm1(lc))) - odds_r;
    double d_lc = -1 - h.lambda / (-expm1(lc) + exp(lc - odds_r)), d_lr = h.lambda * sigmoid(-z) / -expm1(lr);
    return (PairLoss){-lc + h.lambda * softplus(-z), d_lc / p.n_c, d_lr / p.n_r};
}

// R-DPO: -log sigmoid(beta h_c - beta h_r - alpha (n_c - n_r)), h = s - r
static PairLoss loss_rdpo(PairStats p, LossParams h) {
    double z = h.beta * ((p.s_c - p.ref_c) - (p.s_r - p.ref_r)) - h.alpha * (p.n_c - p.n_r), dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dz, -dz};
}

// DPO with RePO's filter: ReLU(gamma - (h_c - h_r))
static PairLoss loss_dpo_repo(PairStats p, LossParams h) {
    double hm = (p.s_c - p.ref_c) - (p.s_r - p.ref_r);
    if (hm >= h.gamma) return (PairLoss){0, 0, 0};
    return (PairLoss){h.gamma - hm, -1, 1};
}

// DPO with RePO++'s filter: -log sigmoid(min(beta (h_c - h_r) - gamma, 0))
static PairLoss loss_dpo_repo_pp(PairStats p, LossParams h) {
    double z = h.beta * ((p.s_c - p.ref_c) - (p.s_r - p.ref_r)) - h.gamma;
    if (z >= 0) return (PairLoss){log(2.0), 0, 0};
    double dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dz, -dz};
}

// which hyper-parameters a loss reads (any other is refused on the command line)
enum { USES_GAMMA = 1, USES_BETA = 2, USES_LAMBDA = 4, USES_DELTA = 8, USES_ALPHA = 16, NEEDS_REFERENCE = 32 };
typedef struct {
    const char *name;
    PairLoss (*fn)(PairStats, LossParams);
    int flags;
    LossParams defaults;    // gamma, beta, lambda, delta, alpha
    const char *formula;
} LossKind;

static const LossKind LOSSES[] = {
    {"repo",       loss_repo,        USES_GAMMA,                            {0.5, 0, 0, 0, 0},     "ReLU(gamma - M)"},
    {"simpo",      loss_simpo,       USES_GAMMA | USES_BETA,                {0.5, 2.5, 0, 0, 0},   "-log sigmoid(beta (M - gamma))"},
    {"repo++",     loss_repo_pp,     USES_GAMMA | USES_BETA,                {0.5, 2.5, 0, 0, 0},   "-log sigmoid(min(beta (M - gamma), 0))"},
    {"dpo",        loss_dpo,         USES_BETA | NEEDS_REFERENCE,           {0, 0.1, 0, 0, 0},     "-log sigmoid(beta [(s_c - r_c) - (s_r - r_r)])"},
    {"ipo",        loss_ipo,         USES_BETA | NEEDS_REFERENCE,           {0, 0.1, 0, 0, 0},     "((s_c - r_c)/n_c - (s_r - r_r)/n_r - 1/(2 beta))^2"},
    {"sft",        loss_sft,         0,                                     {0, 0, 0, 0, 0},       "-l_c"},
    {"slic",       loss_slic,        USES_LAMBDA | USES_DELTA,              {0, 0, 0.1, 1.0, 0},   "max(0, delta - s_c + s_r) - lambda s_c"},
    {"cpo",        loss_cpo,         USES_BETA | USES_LAMBDA,               {0, 0.1, 1.0, 0, 0},   "-log sigmoid(beta s_c - beta s_r) - lambda s_c"},
    {"orpo",       loss_orpo,        USES_LAMBDA,                           {0, 0, 0.1, 0, 0},     "-l_c - lambda log sigmoid(odds(l_c) - odds(l_r))"},
    {"rdpo",       loss_rdpo,        USES_BETA | USES_ALPHA | NEEDS_REFERENCE, {0, 0.1, 0, 0, 0.05}, "-log sigmoid(beta h_c - beta h_r - alpha (n_c - n_r))"},
    {"dpo-repo",   loss_dpo_repo,    USES_GAMMA | NEEDS_REFERENCE,          {0.5, 0, 0, 0, 0},     "ReLU(gamma - (h_c - h_r))"},
    {"dpo-repo++", loss_dpo_repo_pp, USES_GAMMA | USES_BETA | NEEDS_REFERENCE, {0.5, 0.1, 0, 0, 0}, "-log sigmoid(min(beta (h_c - h_r) - gamma, 0))"},
};
#define NUM_LOSSES ((int)(sizeof LOSSES / sizeof *LOSSES))

static const LossKind *find_loss(const char *name) {
    for (int i = 0; i < NUM_LOSSES; i++) if (!strcmp(LOSSES[i].name, name)) return &LOSSES[i];
    return NULL;
}


// ----------------------------------------------------------------------------
// 4. the optimizer: AdamW as torch.optim.AdamW, gradient clipping as clip_grad_norm_, and the
// schedules of the learning rate and of gamma over the run's steps (s counts from 0)

static int is_finite(double x) { // by bit pattern: -ffast-math may assume isfinite() is always true
    uint64_t bits; memcpy(&bits, &x, 8);
    return ((bits >> 52) & 0x7ff) != 0x7ff;
}
static int is_finite_float(float x) { uint32_t bits; memcpy(&bits, &x, 4); return ((bits >> 23) & 0xff) != 0xff; }

// sum of x^2 in double, in fixed chunks summed in a fixed order: the same bits at any thread count
#define SUM_CHUNK 65536
static double sum_squares(const float *x, size_t n) {
    size_t n_chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    double *partial = xmalloc((n_chunks ? n_chunks : 1) * sizeof(double)), sum = 0;
    #pragma omp parallel for
    for (size_t c = 0; c < n_chunks; c++) {
        double s = 0;
        for (size_t i = c * SUM_CHUNK; i < n && i < (c + 1) * SUM_CHUNK; i++) s += (double)x[i] * x[i];
        partial[c] = s;
    }
    for (size_t c = 0; c < n_chunks; c++) sum += partial[c];
    free(partial);
    return sum;
}

static void scale_buffer(float *x, float s, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p' = p - lr (wd p + m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)),
// with weight decay wd on the first n_decay elements (the matrices). One flat loop over the buffer.
// The new parameters go over the gradients first (g[i] is read before it is overwritten) and replace
// the parameters only if every one is finite: "the last good parameters" survive a blow-up. Returns
// how many are not finite (0: updated).
// EXERCISE adamw: one AdamW step over the flat parameter buffer, as torch.optim.AdamW (decay on the matrices only)
static size_t adamw_update(float *params, float *grads, float *m, float *v, size_t n, size_t n_decay, float lr,
                           float weight_decay, int t) {
    const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float bias1 = 1.0f - powf(beta1, (float)t), bias2 = 1.0f - powf(beta2, (float)t);
    size_t bad = 0;
    #pragma omp parallel for reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i], wd = i < n_decay ? weight_decay : 0.0f;
        float mom = m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        float vel = v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float p = params[i] - lr * (wd * params[i] + (mom / bias1) / (sqrtf(vel / bias2) + eps));
        grads[i] = p;
        bad += !is_finite_float(p);
    }
    if (!bad) memcpy(params, grads, n * sizeof(float));
    return bad;
}
// END EXERCISE adamw (a blank copy has: return 0;)

typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE } Schedule;

// lr: linear warmup to lr over `warmup` steps, then constant / linear / cosine decay to 0
static double lr_at(int s, int n_steps, double lr, int warmup, Schedule kind) {
    if (s < warmup) return lr * (s + 1) / warmup;
    double p = (double)(s - warmup) / (n_steps - warmup > 1 ? n_steps - warmup : 1);
    if (kind == SCHED_LINEAR) return lr * (1 - p);
    if (kind == SCHED_COSINE) return lr * 0.5 * (1 + cos(M_PI * p));
    return lr;
}

// gamma: from gamma_start at the first step to gamma_end at the last ("large to small": 1.0 -> 0.2)
// EXERCISE gamma_schedule: gamma at step s of N: constant, or linear / cosine from --gamma to --gamma-end
static double gamma_at(int s, int n_steps, double g0, double g1, Schedule kind) {
    double p = n_steps > 1 ? (double)s / (n_steps - 1) : 0;
    if (kind == SCHED_LINEAR) return g0 + (g1 - g0) * p;
    if (kind == SCHED_COSINE) return g1 + (g0 - g1) * 0.5 * (1 + cos(M_PI * p));
    return g0;
}
// END EXERCISE gamma_schedule (a blank copy has: return 0;)

// ----------------------------------------------------------------------------
// the CPU's table of kernels (section "where the compute runs")

static void *host_alloc(size_t bytes) { return xmalloc(bytes); }
static void host_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void host_copy(void *dst, const void *src, size_t bytes) { if (dst != src) memcpy(dst, src, bytes); }
static void host_allreduce_sum(float *x, size_t n) { dist_allreduce_sum(x, n); }

static const Kernels CPU_KERNELS = {
    encoder_forward, encoder_backward, layernorm_forward, layernorm_backward, rmsnorm_forward, rmsnorm_backward,
    matmul_forward, matmul_backward, rope_forward, rope_backward, attention_forward, attention_backward,
    gelu_forward, gelu_backward, swiglu_forward, swiglu_backward, residual_forward, rows_gather, rows_scatter_add,
    logprob_forward, logprob_backward,
    1, host_alloc, host_zero, host_copy, host_copy, host_copy, NULL,
    sum_squares, scale_buffer, adamw_update, host_allreduce_sum,
};
#ifdef REPO_REFERENCE_KERNELS
// -DREPO_REFERENCE_KERNELS (make check-exercise-full): the model runs section 1's plain reference matmul
// and attention instead of the tuned ones. The plain attention keeps P (B, NH, T, T): behind the model's
// signature, forward computes it into a scratch buffer (lse is left unwritten: only the tuned backward
// reads it) and backward recomputes it with the same forward.
static void attention_forward_plain(float *out, float *lse, const float *qkv, int B, int T, int NH, int NKV, int hd) {
    float *att = xmalloc(sizeof(float) * B * NH * T * T);
    attention_forward_reference(out, att, qkv, B, T, NH, NKV, hd);
    free(att);
}
static void attention_backward_plain(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                                     int B, int T, int NH, int NKV, int hd) {
    float *att = xmalloc(sizeof(float) * B * NH * T * T), *y = xmalloc(sizeof(float) * B * T * NH * hd);
    attention_forward_reference(y, att, qkv, B, T, NH, NKV, hd);
    attention_backward_reference(dqkv, dout, qkv, att, B, T, NH, NKV, hd);
    free(att); free(y);
}
static const Kernels *cpu_kernels(void) {
    static Kernels k;
    k = CPU_KERNELS;
    k.matmul_forward = matmul_forward_reference; k.matmul_backward = matmul_backward_reference;
    k.attention_forward = attention_forward_plain; k.attention_backward = attention_backward_plain;
    return &k;
}
#else
static const Kernels *cpu_kernels(void) { return &CPU_KERNELS; }
#endif

// ----------------------------------------------------------------------------
// the command line: one row per flag, with its range and the commands that take it. A flag out of
// range, or given to a command that does not use it, is an error naming it (never silently ignored).

typedef struct {
    const char *model, *data, *out, *log, *margins, *save_grads, *loss_name, *eval_data, *precision;
    const char *prompts, *prompt_text, *tokenizer, *chat_template;
    int no_progress, no_shuffle, skip_bad, resume, recompute;
    double gamma, gamma_end, beta, lambda, delta, alpha, lr, weight_decay, grad_clip, temperature, top_p;
    int gamma_schedule, lr_schedule; // Schedule
    int warmup_steps, batch_pairs, micro_batch_pairs, steps, epochs, max_len, max_prompt_len, seed;
    int save_every, snapshot_every, eval_every, threads, n_samples, max_new;
    char given[64];                  // given[i]: OPTIONS[i] was on the command line
    int argc;                        // the flags as given (for the trainer state)
    char **argv;
} Options;

enum { TRAIN = 1, EVAL = 2, SAMPLE = 4 };
typedef enum { OPT_FLAG, OPT_STR, OPT_INT, OPT_NUM, OPT_SCHEDULE } OptType;
typedef struct { const char *name; OptType type; size_t offset; double lo, hi; int commands; const char *help; } OptSpec;

#define OPT(field) offsetof(Options, field)
#define FLOAT_MAX 3.4028234e38 // a number the model uses as a float must fit in one
static const OptSpec OPTIONS[] = {
    {"--model", OPT_STR, OPT(model), 0, 0, TRAIN | EVAL | SAMPLE, "DIR|FILE.gguf  the model: config.json + safetensors, or GGUF"},
    {"--data", OPT_STR, OPT(data), 0, 0, TRAIN | EVAL, "FILE  pairs: JSONL (ids or text) or a `repo prepare` file"},
    {"--out", OPT_STR, OPT(out), 0, 0, TRAIN | EVAL | SAMPLE, "train: DIR for the model; eval, sample: FILE.jsonl"},
    {"--tokenizer", OPT_STR, OPT(tokenizer), 0, 0, TRAIN | EVAL | SAMPLE, "PATH  tokenizer for text lines (default: the model's)"},
    {"--chat-template", OPT_STR, OPT(chat_template), 0, 0, TRAIN | EVAL | SAMPLE, "plain|chatml|llama3 (default chatml if the tokenizer has <|im_start|>)"},
    {"--skip-bad", OPT_FLAG, OPT(skip_bad), 0, 0, TRAIN | EVAL | SAMPLE, "skip bad data lines (counted per reason) instead of stopping"},
    {"--max-len", OPT_INT, OPT(max_len), 2, 1 << 24, TRAIN | EVAL, "T  longest sequence, prompt + response (default min(512, positions))"},
    {"--max-prompt-len", OPT_INT, OPT(max_prompt_len), 1, 1 << 24, TRAIN | EVAL, "P  prompt tokens kept when a pair is too long (default T/2)"},
    {"--micro-batch-pairs", OPT_INT, OPT(micro_batch_pairs), 1, 1 << 20, TRAIN | EVAL, "m  pairs per forward/backward (train: default B; eval: 4)"},
    {"--loss", OPT_STR, OPT(loss_name), 0, 0, TRAIN, "NAME  repo (default), simpo, repo++, dpo, ipo, sft, slic, cpo, orpo, rdpo, dpo-repo, dpo-repo++"},
    {"--gamma", OPT_NUM, OPT(gamma), -1e6, 1e6, TRAIN, "G  target margin gamma, or its start with a schedule (default 0.5)"},
    {"--gamma-end", OPT_NUM, OPT(gamma_end), -1e6, 1e6, TRAIN, "G  gamma at the last step (default: --gamma; alone, it implies linear)"},
    {"--gamma-schedule", OPT_SCHEDULE, OPT(gamma_schedule), 0, 0, TRAIN, "S  constant|linear|cosine from --gamma to --gamma-end"},
    {"--beta", OPT_NUM, OPT(beta), 1e-30, 1e6, TRAIN, "B  inverse temperature (simpo, repo++ 2.5; dpo, ipo, cpo, rdpo, dpo-repo++ 0.1)"},
    {"--lambda", OPT_NUM, OPT(lambda), -1e6, 1e6, TRAIN, "L  auxiliary weight (slic 0.1, cpo 1.0, orpo 0.1)"},
    {"--delta", OPT_NUM, OPT(delta), -1e6, 1e6, TRAIN, "D  SLiC hinge margin (default 1.0)"},
    {"--alpha", OPT_NUM, OPT(alpha), -1e6, 1e6, TRAIN, "A  R-DPO length penalty (default 0.05)"},
    {"--lr", OPT_NUM, OPT(lr), 0, FLOAT_MAX, TRAIN, "LR  peak learning rate (default 1e-6)"},
    {"--lr-schedule", OPT_SCHEDULE, OPT(lr_schedule), 0, 0, TRAIN, "S  constant|linear|cosine after warmup (default cosine)"},
    {"--warmup-steps", OPT_INT, OPT(warmup_steps), 0, 2147483647, TRAIN, "N  linear warmup steps (default 10% of the steps)"},
    {"--weight-decay", OPT_NUM, OPT(weight_decay), 0, FLOAT_MAX, TRAIN, "W  AdamW decoupled weight decay on 2-D tensors (default 0)"},
    {"--grad-clip", OPT_NUM, OPT(grad_clip), 0, FLOAT_MAX, TRAIN, "C  clip the global gradient norm to C, 0 disables (default 1.0)"},
    {"--batch-pairs", OPT_INT, OPT(batch_pairs), 1, 1 << 20, TRAIN, "B  pairs per optimizer step (default 8)"},
    {"--steps", OPT_INT, OPT(steps), 1, 2147483647, TRAIN, "N  optimizer steps (default: one epoch)"},
    {"--epochs", OPT_INT, OPT(epochs), 1, 1 << 20, TRAIN, "E  epochs (default 1; give --steps or --epochs)"},
    {"--seed", OPT_INT, OPT(seed), -2147483647.0 - 1, 2147483647, TRAIN | SAMPLE, "S  shuffling (train) or sampling seed (default 42)"},
    {"--no-shuffle", OPT_FLAG, OPT(no_shuffle), 0, 0, TRAIN, "batches in file order"},
    {"--log", OPT_STR, OPT(log), 0, 0, TRAIN, "FILE  append one JSON object per step"},
    {"--margins", OPT_STR, OPT(margins), 0, 0, TRAIN, "FILE  append every pair's margin M, one JSON line per step"},
    {"--eval-data", OPT_STR, OPT(eval_data), 0, 0, TRAIN, "FILE  held-out pairs: eval_* metrics before, every --eval-every steps, and at the end"},
    {"--eval-every", OPT_INT, OPT(eval_every), 1, 2147483647, TRAIN, "N  steps between evaluations on --eval-data"},
    {"--no-progress", OPT_FLAG, OPT(no_progress), 0, 0, TRAIN, "a line per step even on a terminal (default there: a progress bar)"},
    {"--save-grads", OPT_STR, OPT(save_grads), 0, 0, TRAIN, "FILE  the first step's raw gradients as safetensors"},
    {"--save-every", OPT_INT, OPT(save_every), 1, 2147483647, TRAIN, "N  write a resumable checkpoint to --out every N steps"},
    {"--resume", OPT_FLAG, OPT(resume), 0, 0, TRAIN, "continue from the checkpoint in --out (the same command otherwise)"},
    {"--snapshot-every", OPT_INT, OPT(snapshot_every), 1, 2147483647, TRAIN, "N  also write the model every N steps to OUT-stepS"},
    {"--recompute", OPT_FLAG, OPT(recompute), 0, 0, TRAIN, "keep only each block's input; recompute the block in backward"},
    {"--threads", OPT_INT, OPT(threads), 1, 1024, TRAIN | EVAL | SAMPLE, "N  OpenMP threads (default: all cores)"},
    {"--precision", OPT_STR, OPT(precision), 0, 0, TRAIN | EVAL, "P  ./repo_cuda's matmuls: fp32 (default), tf32, bf16"},
    {"--prompt", OPT_STR, OPT(prompt_text), 0, 0, SAMPLE, "TEXT  one chat message, answered as text"},
    {"--prompts", OPT_STR, OPT(prompts), 0, 0, SAMPLE, "FILE.jsonl  prompts (ids or text, or a pair file's prompts)"},
    {"--n", OPT_INT, OPT(n_samples), 1, 1 << 20, SAMPLE, "K  samples per prompt (default 1)"},
    {"--max-new", OPT_INT, OPT(max_new), 1, 1 << 24, SAMPLE, "N  new tokens at most (default 64)"},
    {"--temperature", OPT_NUM, OPT(temperature), 0, FLOAT_MAX, SAMPLE, "T  0 is greedy (default 1)"},
    {"--top-p", OPT_NUM, OPT(top_p), 1e-9, 1, SAMPLE, "P  sample from the smallest set of tokens holding this mass (default 1)"},
};
#define NUM_OPTIONS ((int)(sizeof OPTIONS / sizeof *OPTIONS))

static int option_index(const char *name) {
    for (int i = 0; i < NUM_OPTIONS; i++) if (!strcmp(OPTIONS[i].name, name)) return i;
    return -1;
}
static int given(const Options *o, const char *name) { return o->given[option_index(name)]; }

static const char *COMMAND_NAMES[] = {"", "train", "eval", "", "sample"};

static void usage(void) {
    printf("usage: repo train --model DIR --data FILE --out DIR [options]   preference optimization\n"
           "       repo eval  --model DIR --data FILE [--out FILE.jsonl]      margins and log-probs of pairs\n"
           "       repo sample --model DIR --prompt TEXT | --prompts FILE    samples (greedy at --temperature 0)\n"
           "       repo init  --config config.json --out DIR [--seed S]       a freshly initialized model\n"
           "       repo prepare --model DIR --data FILE.jsonl --out FILE.bin  text or id pairs -> binary pair file\n"
           "       repo encode|decode --model DIR | --tokenizer PATH          stdin lines: text -> ids | ids -> text\n");
    for (int cmd = TRAIN; cmd <= SAMPLE; cmd <<= 1) {
        printf("\n%s options:\n", COMMAND_NAMES[cmd]);
        for (int i = 0; i < NUM_OPTIONS; i++)
            if (OPTIONS[i].commands & cmd) printf("  %-20s %s\n", OPTIONS[i].name, OPTIONS[i].help);
    }
}

static double parse_num(const char *flag, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !is_finite(x)) die("%s: \"%s\" is not a number", flag, v);
    return x;
}

static Schedule parse_schedule(const char *flag, const char *v) {
    if (!strcmp(v, "constant")) return SCHED_CONSTANT;
    if (!strcmp(v, "linear")) return SCHED_LINEAR;
    if (!strcmp(v, "cosine")) return SCHED_COSINE;
    die("%s: unknown schedule \"%s\" (constant, linear, cosine)", flag, v);
}

static Options parse_options(int cmd, int argc, char **argv) {
    Options o;
    memset(&o, 0, sizeof o);
    o.loss_name = "repo"; o.lr = 1e-6; o.lr_schedule = SCHED_COSINE; o.warmup_steps = -1; o.precision = "fp32";
    o.n_samples = 1; o.max_new = 64; o.temperature = 1.0; o.top_p = 1.0;
    o.grad_clip = 1.0; o.batch_pairs = 8; o.seed = 42;
    o.argc = argc; o.argv = argv;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(); exit(0); }
        int j = option_index(f);
        if (j < 0) die("unknown option %s (see --help)", f);
        const OptSpec *s = &OPTIONS[j];
        if (!(s->commands & cmd)) die("%s is not an option of %s (see --help)", f, COMMAND_NAMES[cmd]);
        if (o.given[j]) die("%s is given twice", f);
        o.given[j] = 1;
        char *field = (char *)&o + s->offset;
        if (s->type == OPT_FLAG) { *(int *)field = 1; continue; }
        if (i + 1 >= argc) die("%s needs a value (see --help)", f);
        const char *v = argv[++i];
        if (s->type == OPT_STR) { *(const char **)field = v; continue; }
        if (s->type == OPT_SCHEDULE) { *(int *)field = parse_schedule(f, v); continue; }
        double x = parse_num(f, v);
        if (s->type == OPT_INT && x != floor(x)) die("%s: \"%s\" is not an integer", f, v);
        if (x < s->lo || x > s->hi) die("%s: %s is out of range [%.9g, %.9g]", f, v, s->lo, s->hi);
        if (s->type == OPT_INT) *(int *)field = (int)x;
        else *(double *)field = x;
    }
    if (strcmp(o.precision, "fp32") && strcmp(o.precision, "tf32") && strcmp(o.precision, "bf16"))
        die("--precision: unknown \"%s\" (fp32, tf32, bf16)", o.precision);
#ifndef REPO_CUDA
    if (strcmp(o.precision, "fp32")) die("--precision %s needs the GPU build (make cuda: ./repo_cuda); ./repo computes in fp32", o.precision);
#endif
    if (o.threads) {
#ifdef _OPENMP
        omp_set_num_threads(o.threads);
#else
        if (o.threads > 1) die("--threads %d: this build has no OpenMP (make repo)", o.threads);
#endif
    }
    return o;
}

// ----------------------------------------------------------------------------
// shared by train and eval: load model and data, fit the data to the context

// the files a run reads (no output may be one of them): the model's (every file of its directory),
// the data, the tokenizer
typedef struct { const char *paths[256]; char *owned[256]; int n; } Inputs;

static void add_input(Inputs *in, const char *path) { if (path && in->n < 256) in->paths[in->n++] = path; }

static void collect_inputs(Inputs *in, const Options *o) {
    memset(in, 0, sizeof *in);
    add_input(in, o->model); add_input(in, o->data); add_input(in, o->eval_data); add_input(in, o->prompts);
    add_input(in, o->tokenizer);
    if (o->model && dir_exists(o->model)) {
        const char *names[] = {"config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json",
                               "tokenizer_config.json", "vocab.json", "merges.txt", "generation_config.json",
                               "special_tokens_map.json"};
        for (size_t i = 0; i < sizeof names / sizeof *names && in->n < 256; i++) {
            char *p = xmalloc(strlen(o->model) + strlen(names[i]) + 2);
            sprintf(p, "%s/%s", o->model, names[i]);
            in->owned[in->n] = p;
            add_input(in, p);
        }
    }
}

static void check_outputs(const Options *o, const Inputs *in) {
    const char *files[][2] = {{"--log", o->log}, {"--margins", o->margins}, {"--save-grads", o->save_grads}};
    for (int i = 0; i < 3; i++) {
        if (!files[i][1]) continue;
        output_file_check(files[i][0], files[i][1]);
        output_not_input(files[i][0], files[i][1], in->paths, in->n);
    }
}

typedef struct { Model model; PairSet data, eval; int longest; } Setup;

static int longest_sequence(const PairSet *ps, int *longest_response) {
    int longest = 0;
    for (int i = 0; i < ps->n_pairs; i++) {
        const Pair *p = &ps->pairs[i];
        for (int k = 0; k < 2; k++) if (pair_seq_len(p, k) > longest) longest = pair_seq_len(p, k);
        if (p->n_chosen > *longest_response) *longest_response = p->n_chosen;
        if (p->n_rejected > *longest_response) *longest_response = p->n_rejected;
    }
    return longest;
}

static void load_pairs(PairSet *ps, const char *path, const Options *o, const Config *c, int max_len, int max_prompt) {
    DataOptions dopt = {o->model, o->tokenizer, o->chat_template, o->skip_bad}; // named: repo.cu compiles this file as C++
    data_load_pairs(ps, path, c->vocab_size, &dopt);
    if (ps->n_pairs == 0) die("%s: no pairs", path);
    int cut = pairs_truncate(ps, max_len, max_prompt);
    if (cut && dist_rank() == 0)
        printf("%s: truncated %d of %d pairs to --max-len %d (prompt kept to its last %d tokens, responses cut at the end)\n",
               path, cut, ps->n_pairs, max_len, max_prompt);
}

static void setup(Setup *s, const Options *o) {
    if (!o->model) die("--model DIR is required");
    if (!o->data) die("--data FILE is required");
    memset(s, 0, sizeof *s);
    model_load(&s->model, o->model);
    const Config *c = &s->model.config;
    int max_len = o->max_len > 0 ? o->max_len : (c->max_seq_len < 512 ? c->max_seq_len : 512);
    if (max_len > c->max_seq_len) die("--max-len %d exceeds the model's %d positions", max_len, c->max_seq_len);
    if (c->sliding_window && max_len > c->sliding_window) // within the window, sliding-window attention is causal attention
        die("--max-len %d exceeds the model's sliding_window %d (sliding-window attention is not implemented)", max_len, c->sliding_window);
    int max_prompt = o->max_prompt_len > 0 ? o->max_prompt_len : max_len / 2;
    if (max_prompt >= max_len) die("--max-prompt-len %d must be smaller than --max-len %d", max_prompt, max_len);
    load_pairs(&s->data, o->data, o, c, max_len, max_prompt);
    if (o->eval_data) load_pairs(&s->eval, o->eval_data, o, c, max_len, max_prompt);
}

// activations for micro-batches of `micro` pairs of the loaded data
static void setup_batch(Setup *s, int micro, int recompute) {
    int longest_response = 0, longest = longest_sequence(&s->data, &longest_response);
    if (s->eval.n_pairs) {
        int l = longest_sequence(&s->eval, &longest_response);
        if (l > longest) longest = l;
    }
    s->longest = longest;
    model_alloc_batch(&s->model, 2 * micro, longest, 2 * micro * longest_response, recompute);
}

// forward over pairs[0..n) in micro-batches; fills summed log-probs per pair (chosen, rejected).
// Under MPI each process scores its share and the sums are exchanged.
static void score_pairs(Model *m, Pair *pairs, int n, int micro, double *s_c, double *s_r) {
    int P = dist_size(), r = dist_rank(), lo = (int)((long long)n * r / P), hi = (int)((long long)n * (r + 1) / P);
    Pair **batch = xmalloc(micro * sizeof(Pair *));
    double *seq = xmalloc(2 * micro * sizeof(double));
    for (int i = 0; i < n; i++) s_c[i] = s_r[i] = 0;
    for (int i0 = lo; i0 < hi; i0 += micro) {
        int k = hi - i0 < micro ? hi - i0 : micro;
        for (int i = 0; i < k; i++) batch[i] = &pairs[i0 + i];
        model_set_batch(m, batch, k);
        forward_logps(m, seq);
        for (int i = 0; i < k; i++) { s_c[i0 + i] = seq[2 * i]; s_r[i0 + i] = seq[2 * i + 1]; }
    }
    dist_allreduce_sum_double(s_c, n);
    dist_allreduce_sum_double(s_r, n);
    free(batch); free(seq);
}

// what eval reports over a set of pairs, as TRL names them (train --eval-data logs them as eval_*)
typedef struct { double loss, margin_mean, acc, chosen_logp, rejected_logp, filtered_frac; } EvalStats;

static PairStats pair_stats(const Pair *p, double s_c, double s_r, double ref_c, double ref_r) {
    PairStats st = {s_c, s_r, p->n_chosen, p->n_rejected, ref_c, ref_r};
    return st;
}

static EvalStats eval_stats(const PairSet *ps, const double *s_c, const double *s_r, const LossKind *loss,
                            LossParams hp, const double *ref_c, const double *ref_r) {
    EvalStats e = {0, 0, 0, 0, 0, 0};
    int n = ps->n_pairs;
    for (int i = 0; i < n; i++) {
        PairStats st = pair_stats(&ps->pairs[i], s_c[i], s_r[i], ref_c ? ref_c[i] : 0, ref_r ? ref_r[i] : 0);
        double M = margin(st);
        if (loss) e.loss += loss->fn(st, hp).loss;
        e.margin_mean += M; e.acc += M > 0; e.filtered_frac += M >= hp.gamma;
        e.chosen_logp += st.s_c / st.n_c; e.rejected_logp += st.s_r / st.n_r;
    }
    e.loss /= n; e.margin_mean /= n; e.acc /= n; e.filtered_frac /= n; e.chosen_logp /= n; e.rejected_logp /= n;
    return e;
}

// ----------------------------------------------------------------------------
// 5. training

typedef struct { uint64_t state; } Rng;
static uint64_t rng_next(Rng *r) { // xorshift64*
    r->state ^= r->state >> 12; r->state ^= r->state << 25; r->state ^= r->state >> 27;
    return r->state * 2685821657736338717ULL;
}
static Rng rng_seeded(int seed) { Rng r = {(uint64_t)(int64_t)seed * 0x9E3779B97F4A7C15ULL + 1}; return r; }
static void shuffle(int *a, int n, Rng *r) {
    for (int i = n - 1; i > 0; i--) { int j = (int)(rng_next(r) % (uint64_t)(i + 1)); int t = a[i]; a[i] = a[j]; a[j] = t; }
}

static double now_seconds(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

// the order of the pairs: reshuffled at every epoch's start; a batch never spans two epochs
typedef struct { int n_pairs, batch_pairs, shuffle, cursor, epoch; int *order; Rng rng; } Loader;

static int next_batch(Loader *ld, int *batch_idx) {
    int B = 0;
    while (B < ld->batch_pairs) {
        if (ld->cursor == ld->n_pairs) { // the epoch is over: the last batch may be short
            if (B > 0) break;
            ld->cursor = 0; ld->epoch++;
            if (ld->shuffle) shuffle(ld->order, ld->n_pairs, &ld->rng);
        }
        batch_idx[B++] = ld->order[ld->cursor++];
    }
    return B;
}

// one step's numbers, summed over its pairs (and over processes): the log and the progress line
typedef struct { double loss, chosen_logp, rejected_logp, tokens; double *margins; } StepStats;

// A micro-batch of k pairs (global batch positions first .. first + k - 1 of B): forward, the pair
// losses, their per-token gradients, backward. Filtered pairs (zero gradient) cost only their forward.
static void train_micro_batch(Model *m, const PairSet *data, const int *batch_idx, int first, int k, int B,
                              const LossKind *loss, LossParams hp, const double *ref_c, const double *ref_r,
                              StepStats *st) {
    Pair *pairs[k];
    double seq[2 * k], d_seq[2 * k];
    for (int i = 0; i < k; i++) pairs[i] = &data->pairs[batch_idx[first + i]];
    model_set_batch(m, pairs, k);
    forward_logps(m, seq);
    // the pair losses: the objective sees only the summed log-probs (and lengths) of each pair
    int any = 0;
    for (int i = 0; i < k; i++) {
        int idx = batch_idx[first + i];
        PairStats ps = pair_stats(pairs[i], seq[2 * i], seq[2 * i + 1], ref_c ? ref_c[idx] : 0, ref_r ? ref_r[idx] : 0);
        PairLoss pl = loss->fn(ps, hp);
        st->loss += pl.loss;
        d_seq[2 * i] = pl.d_sc / B; // the batch loss is a mean over its B pairs
        d_seq[2 * i + 1] = pl.d_sr / B;
        any |= pl.d_sc != 0 || pl.d_sr != 0;
        st->margins[first + i] = margin(ps);
        st->chosen_logp += ps.s_c / ps.n_c; st->rejected_logp += ps.s_r / ps.n_r;
    }
    for (int b = 0; b < 2 * k; b++) st->tokens += pair_seq_len(pairs[b / 2], b % 2);
    if (!any) return; // every pair filtered: nothing to propagate
    // per-token gradients: s = sum of the response positions' logp, so dLoss/dlogp_r = dLoss/ds of r's sequence
    for (int r = 0; r < m->R; r++) m->host_dlogp[r] = (float)d_seq[m->host_resp_seq[r]];
    if (!m->k->host_memory) m->k->upload(m->dlogp, m->host_dlogp, m->R * sizeof(float));
    model_backward(m);
}

// the training run: the model, its data and everything a checkpoint holds
typedef struct {
    Options o;
    const LossKind *loss;
    Setup s;
    Loader loader;
    int n_steps, warmup, step;        // step: optimizer steps done
    double *ref_c, *ref_r;            // reference model's summed log-probs (NEEDS_REFERENCE)
    double *eval_ref_c, *eval_ref_r;
    FILE *log, *margins_log;
    unsigned long long data_hash, eval_hash;
} Run;

static unsigned long long pairs_hash(const PairSet *ps) { // FNV-1a over every pair's lengths and ids
    unsigned long long h = 1469598103934665603ULL;
    for (int i = 0; i < ps->n_pairs; i++) {
        const Pair *p = &ps->pairs[i];
        const int *parts[3] = {p->prompt, p->chosen, p->rejected};
        int lens[3] = {p->n_prompt, p->n_chosen, p->n_rejected};
        for (int j = 0; j < 3; j++)
            for (int t = -1; t < lens[j]; t++) {
                uint32_t x = (uint32_t)(t < 0 ? lens[j] : parts[j][t]);
                for (int b = 0; b < 4; b++) { h ^= (x >> (8 * b)) & 0xff; h *= 1099511628211ULL; }
            }
    }
    return h;
}

// the flags that define the run (a --resume must repeat them); these may differ
static int is_run_flag(const char *f) {
    return strcmp(f, "--resume") && strcmp(f, "--threads") && strcmp(f, "--no-progress");
}

static void write_trainer_state(const Run *run, const char *dir, int finished) {
    TrainerState st;
    memset(&st, 0, sizeof st);
    st.step = run->step; st.n_steps = run->n_steps; st.finished = finished;
    char **args = xmalloc((run->o.argc + 1) * sizeof(char *));
    for (int i = 0; i < run->o.argc; i++) {
        const char *f = run->o.argv[i];
        int j = option_index(f), has_value = j >= 0 && OPTIONS[j].type != OPT_FLAG;
        if (is_run_flag(f)) { args[st.n_args++] = run->o.argv[i]; if (has_value) args[st.n_args++] = run->o.argv[i + 1]; }
        if (has_value) i++;
    }
    st.args = args;
    st.data_hash = run->data_hash; st.eval_hash = run->eval_hash;
    st.n_pairs = run->loader.n_pairs; st.cursor = run->loader.cursor; st.epoch = run->loader.epoch;
    st.rng = run->loader.rng.state; st.order = run->loader.order;
    st.log_bytes = run->log ? ftell(run->log) : 0;
    st.margins_bytes = run->margins_log ? ftell(run->margins_log) : 0;
    st.ref_c = run->ref_c; st.ref_r = run->ref_r;
    state_write(dir, &st);
    free(args);
}

// --out as a whole: the model Hugging Face loads, the trainer state, and (resumable) AdamW's moments.
// Written beside --out and renamed into place: a kill at any instant leaves the old or the new one.
static void save_run(Run *run, int finished, int resumable) {
    if (dist_rank() != 0) return;
    Model *m = &run->s.model;
    OutDir d;
    outdir_begin(&d, run->o.out);
    model_sync_params(m);
    checkpoint_save(run->o.model, &m->config, m->entries, m->n_entries, m->host_params, d.tmp);
    if (resumable && !finished) {
        size_t n = m->num_parameters;
        float *mh = m->m_memory, *vh = m->v_memory;
        if (!m->k->host_memory) {
            mh = xmalloc(n * sizeof(float)); vh = xmalloc(n * sizeof(float));
            m->k->download(mh, m->m_memory, n * sizeof(float)); m->k->download(vh, m->v_memory, n * sizeof(float));
        }
        optimizer_write(d.tmp, mh, vh, n);
        if (!m->k->host_memory) { free(mh); free(vh); }
    }
    write_trainer_state(run, d.tmp, finished);
    outdir_commit(&d);
}

// the model alone, every --snapshot-every steps: OUT-stepS
static void save_snapshot(Run *run) {
    if (dist_rank() != 0) return;
    Model *m = &run->s.model;
    char path[4200];
    snprintf(path, sizeof path, "%s-step%d", run->o.out, run->step);
    OutDir d;
    outdir_begin(&d, path);
    model_sync_params(m);
    checkpoint_save(run->o.model, &m->config, m->entries, m->n_entries, m->host_params, d.tmp);
    outdir_commit(&d);
}

// a line appended with one write(2): a kill leaves whole lines only
static void append_line(FILE *f, const char *line) {
    fflush(f);
    size_t n = strlen(line);
    if (write(fileno(f), line, n) != (ssize_t)n) die("cannot append to a log: disk full?");
    fseek(f, 0, SEEK_END);
}

static void log_eval(Run *run, LossParams hp) {
    const PairSet *ev = &run->s.eval;
    int n = ev->n_pairs;
    double *s_c = xmalloc(n * sizeof(double)), *s_r = xmalloc(n * sizeof(double));
    score_pairs(&run->s.model, ev->pairs, n, run->o.micro_batch_pairs, s_c, s_r);
    EvalStats e = eval_stats(ev, s_c, s_r, run->loss, hp, run->eval_ref_c, run->eval_ref_r);
    free(s_c); free(s_r);
    if (dist_rank() != 0) return;
    printf("eval step %d | loss %.6f | margin %+.4f | acc %.4f | filtered %.1f%% | chosen %.4f | rejected %.4f\n",
           run->step, e.loss, e.margin_mean, e.acc, 100 * e.filtered_frac, e.chosen_logp, e.rejected_logp);
    if (!run->log) return;
    char line[1024];
    snprintf(line, sizeof line, "{\"step\": %d, \"eval_loss\": %.9g, \"eval_margin_mean\": %.9g, \"eval_acc\": %.9g, "
             "\"eval_filtered_frac\": %.9g, \"eval_chosen_logp\": %.9g, \"eval_rejected_logp\": %.9g, \"eval_pairs\": %d}\n",
             run->step, e.loss, e.margin_mean, e.acc, e.filtered_frac, e.chosen_logp, e.rejected_logp, n);
    append_line(run->log, line);
}

static void log_step(Run *run, const StepStats *st, int B, LossParams hp, double lr, double grad_norm, double dt) {
    if (dist_rank() != 0) return;
    double mean = 0, var = 0;
    int acc = 0, filtered = 0;
    for (int i = 0; i < B; i++) { mean += st->margins[i]; acc += st->margins[i] > 0; filtered += st->margins[i] >= hp.gamma; }
    mean /= B;
    for (int i = 0; i < B; i++) var += (st->margins[i] - mean) * (st->margins[i] - mean);
    double std = sqrt(var / B), loss = st->loss / B;
    int step = run->step, n_steps = run->n_steps;
    if (isatty(fileno(stdout)) && !run->o.no_progress) { // one line redrawn in place on a terminal
        int width = 24, done = (int)((double)step / n_steps * width);
        printf("\r[%.*s%*s] %d/%d | loss %.4f | margin %+.3f | acc %.2f | filtered %3.0f%% | gamma %.2f | %.0f tok/s ",
               done, "########################", width - done, "", step, n_steps, loss, mean,
               (double)acc / B, 100.0 * filtered / B, hp.gamma, st->tokens / dt);
        if (step == n_steps) printf("\n");
    } else
        printf("step %4d/%d | loss %.6f | margin %+.4f ±%.4f | acc %.2f | filtered %5.1f%% | gamma %.3f | lr %.2e | |g| %.3e | %.0f tok/s\n",
               step, n_steps, loss, mean, std, (double)acc / B, 100.0 * filtered / B, hp.gamma, lr, grad_norm, st->tokens / dt);
    fflush(stdout);
    if (run->margins_log) { // every pair's margin: the histograms of the "emergent curriculum"
        char *buf; size_t len;
        FILE *mf = open_memstream(&buf, &len);
        fprintf(mf, "{\"step\": %d, \"gamma\": %.6g, \"margins\": [", step, hp.gamma);
        for (int i = 0; i < B; i++) fprintf(mf, i ? ", %.6g" : "%.6g", st->margins[i]);
        fprintf(mf, "]}\n");
        fclose(mf);
        append_line(run->margins_log, buf);
        free(buf);
    }
    if (run->log) {
        char line[1024];
        snprintf(line, sizeof line, "{\"step\": %d, \"loss\": %.9g, \"gamma\": %.9g, \"lr\": %.9g, \"margin_mean\": %.9g, "
                 "\"margin_std\": %.9g, \"acc\": %.9g, \"filtered_frac\": %.9g, \"chosen_logp\": %.9g, "
                 "\"rejected_logp\": %.9g, \"grad_norm\": %.9g, \"tokens_per_s\": %.1f}\n",
                 step, loss, hp.gamma, lr, mean, std, (double)acc / B, (double)filtered / B,
                 st->chosen_logp / B, st->rejected_logp / B, grad_norm, st->tokens / dt);
        append_line(run->log, line);
    }
}

// the loss's hyper-parameters at step s (gamma follows its schedule)
static LossParams loss_params_at(const Run *run, int s) {
    const Options *o = &run->o;
    LossParams hp = {gamma_at(s, run->n_steps, o->gamma, o->gamma_end, (Schedule)o->gamma_schedule), o->beta, o->lambda,
                     o->delta, o->alpha};
    return hp;
}

static volatile sig_atomic_t stop_requested = 0; // SIGINT / SIGTERM: finish the step, save, exit
static void on_stop_signal(int sig) { (void)sig; stop_requested = 1; }

// One optimizer step: next batch -> (forward -> pair losses -> per-token gradients -> backward) per
// micro-batch -> sum over processes -> clip -> AdamW -> log. Returns 0, or 1 if it stopped on a
// non-finite number (the parameters are then the last good ones).
static int train_step(Run *run) {
    Model *m = &run->s.model;
    const Kernels *k = m->k;
    const Options *o = &run->o;
    int s = run->step, P = dist_size(), rank = dist_rank();
    double t0 = now_seconds();
    double lr = lr_at(s, run->n_steps, o->lr, run->warmup, (Schedule)o->lr_schedule);
    LossParams hp = loss_params_at(run, s);
    int batch_idx[o->batch_pairs];
    int B = next_batch(&run->loader, batch_idx);
    // [loss, chosen, rejected, tokens, margins (B)]: each process fills its share, the sum is the whole batch
    double sums[4 + B];
    memset(sums, 0, sizeof sums);
    StepStats st = {0, 0, 0, 0, sums + 4};
    k->zero(m->grads_memory, m->num_parameters * sizeof(float));
    int lo = (int)((long long)B * rank / P), hi = (int)((long long)B * (rank + 1) / P);
    for (int i0 = lo; i0 < hi; i0 += o->micro_batch_pairs) {
        int n = hi - i0 < o->micro_batch_pairs ? hi - i0 : o->micro_batch_pairs;
        train_micro_batch(m, &run->s.data, batch_idx, i0, n, B, run->loss, hp, run->ref_c, run->ref_r, &st);
    }
    sums[0] = st.loss; sums[1] = st.chosen_logp; sums[2] = st.rejected_logp; sums[3] = st.tokens;
    dist_allreduce_sum_double(sums, 4 + B);
    st.loss = sums[0]; st.chosen_logp = sums[1]; st.rejected_logp = sums[2]; st.tokens = sums[3];
    if (P > 1) k->allreduce_sum(m->grads_memory, m->num_parameters);
    double grad_norm = sqrt(k->sum_squares(m->grads_memory, m->num_parameters));
    if (!is_finite(st.loss) || !is_finite(grad_norm)) {
        save_run(run, 0, 0);
        die("step %d: loss %g, gradient norm %g are not finite; stopped before the update. "
            "%s holds the last good parameters (after step %d)", s + 1, st.loss / B, grad_norm, o->out, s);
    }
    if (s == 0 && o->save_grads && rank == 0) {
        float *g = m->grads_memory;
        if (!k->host_memory) { g = xmalloc(m->num_parameters * sizeof(float)); k->download(g, m->grads_memory, m->num_parameters * sizeof(float)); }
        checkpoint_write_tensors(m->entries, m->n_entries, g, o->save_grads);
        if (!k->host_memory) free(g);
    }
    if (o->grad_clip > 0 && grad_norm > o->grad_clip) // as torch.nn.utils.clip_grad_norm_
        k->scale(m->grads_memory, (float)(o->grad_clip / (grad_norm + 1e-6)), m->num_parameters);
    size_t bad = k->adamw(m->params_memory, m->grads_memory, m->m_memory, m->v_memory, m->num_parameters,
                          m->num_decay_parameters, (float)lr, (float)o->weight_decay, s + 1);
    if (bad) {
        save_run(run, 0, 0);
        die("step %d: the update would make %zu parameters non-finite (lr %g); stopped before applying it. "
            "%s holds the last good parameters (after step %d)", s + 1, bad, lr, o->out, s);
    }
    run->step = s + 1;
    log_step(run, &st, B, hp, lr, grad_norm, now_seconds() - t0);
    return 0;
}

// A run killed at any moment continues with --resume: its checkpoint restores the parameters,
// AdamW's moments, the step, the data order and the logs' lengths, so it ends byte-identical.
// resume_check reads the checkpoint and refuses one from another command or other data; returns
// 0 (no checkpoint yet), 1 (resume), -1 (the run is finished).
static int resume_check(Run *run, TrainerState *st) {
    const Options *o = &run->o;
    if (!state_read(o->out, st)) {
        if (dist_rank() == 0) printf("--resume: %s holds no checkpoint yet; starting from the beginning\n", o->out);
        return 0;
    }
    if (st->finished) return -1;
    if (!file_exists_in(o->out, "optimizer.safetensors"))
        die("--resume: %s holds no optimizer state (the run stopped on a non-finite number after step %d): nothing to resume",
            o->out, st->step);
    // the same command: every flag that defines the run with the same value, the same data
    for (int i = 0; i < o->argc; i++) {
        const char *f = o->argv[i];
        int has_value = OPTIONS[option_index(f)].type != OPT_FLAG, found = 0;
        const char *v = has_value ? o->argv[++i] : "";
        if (!is_run_flag(f)) continue;
        for (int a = 0; a < st->n_args; a++) {
            int k = option_index(st->args[a]);
            if (k < 0) continue;
            const char *sv = OPTIONS[k].type != OPT_FLAG && a + 1 < st->n_args ? st->args[++a] : "";
            if (strcmp(OPTIONS[k].name, f)) continue;
            if (strcmp(sv, v)) die("--resume: %s is %s here but %s in the checkpoint in %s", f, v, sv, o->out);
            found = 1;
        }
        if (!found) die("--resume: %s is given here but not in the checkpoint in %s", f, o->out);
    }
    for (int a = 0; a < st->n_args; a++) {
        int k = option_index(st->args[a]);
        if (k < 0) continue; // a value
        if (!o->given[k]) die("--resume: the checkpoint in %s was run with %s; give it again", o->out, st->args[a]);
    }
    if (st->data_hash != run->data_hash) die("--resume: --data %s holds other pairs than the checkpoint's", o->data);
    if (st->eval_hash != run->eval_hash) die("--resume: --eval-data holds other pairs than the checkpoint's");
    if (st->n_steps != run->n_steps || st->n_pairs != run->loader.n_pairs)
        die("--resume: the checkpoint's run is %d steps over %d pairs, this one %d over %d", st->n_steps, st->n_pairs,
            run->n_steps, run->loader.n_pairs);
    return 1;
}

static void resume_apply(Run *run, const TrainerState *st) {
    const Options *o = &run->o;
    Model *m = &run->s.model;
    const Kernels *k = m->k;
    size_t n = m->num_parameters, bytes = n * sizeof(float);
    checkpoint_load(o->out, &m->config, m->entries, m->n_entries, m->host_params);
    k->upload(m->params_memory, m->host_params, bytes);
    float *mh = k->host_memory ? m->m_memory : xmalloc(bytes), *vh = k->host_memory ? m->v_memory : xmalloc(bytes);
    optimizer_read(o->out, mh, vh, n);
    if (!k->host_memory) { k->upload(m->m_memory, mh, bytes); k->upload(m->v_memory, vh, bytes); free(mh); free(vh); }
    if (k->prepare) k->prepare(m, o->precision); // e.g. the GPU's bf16 copy of the parameters
    run->step = st->step;
    run->loader.cursor = st->cursor; run->loader.epoch = st->epoch; run->loader.rng.state = st->rng;
    memcpy(run->loader.order, st->order, st->n_pairs * sizeof(int));
    if (st->ref_c) { run->ref_c = st->ref_c; run->ref_r = st->ref_r; }
    // the logs continue where the checkpoint's step left them (the killed run may have written more)
    if (dist_rank() == 0) {
        if (o->log) truncate_to(o->log, st->log_bytes);
        if (o->margins) truncate_to(o->margins, st->margins_bytes);
        printf("resuming %s after step %d of %d\n", o->out, st->step, st->n_steps);
    }
}

static int train(int argc, char **argv) {
    Run run;
    memset(&run, 0, sizeof run);
    Options *o = &run.o;
    *o = parse_options(TRAIN, argc, argv);
    const LossKind *loss = run.loss = find_loss(o->loss_name);
    if (!loss) die("--loss: unknown loss \"%s\" (see --help for the list)", o->loss_name);
    if (!o->out) die("--out DIR is required");
    // a flag the loss does not read would silently do nothing: refuse it
    if ((given(o, "--gamma") || given(o, "--gamma-end") || given(o, "--gamma-schedule")) && !(loss->flags & USES_GAMMA))
        die("--loss %s does not use gamma; drop --gamma/--gamma-end/--gamma-schedule", loss->name);
    const char *hyper[] = {"--beta", "--lambda", "--delta", "--alpha"};
    int uses[] = {USES_BETA, USES_LAMBDA, USES_DELTA, USES_ALPHA};
    for (int i = 0; i < 4; i++)
        if (given(o, hyper[i]) && !(loss->flags & uses[i])) die("--loss %s does not use %s; drop %s", loss->name, hyper[i] + 2, hyper[i]);
    if (!given(o, "--gamma")) o->gamma = loss->defaults.gamma;
    if (!given(o, "--beta")) o->beta = loss->defaults.beta;
    if (!given(o, "--lambda")) o->lambda = loss->defaults.lambda;
    if (!given(o, "--delta")) o->delta = loss->defaults.delta;
    if (!given(o, "--alpha")) o->alpha = loss->defaults.alpha;
    if (!given(o, "--gamma-end")) o->gamma_end = o->gamma;
    if (given(o, "--gamma-end") && !given(o, "--gamma-schedule") && o->gamma_end != o->gamma) o->gamma_schedule = SCHED_LINEAR;
    if (!given(o, "--micro-batch-pairs")) o->micro_batch_pairs = o->batch_pairs;
    if (o->micro_batch_pairs > o->batch_pairs)
        die("--micro-batch-pairs %d exceeds --batch-pairs %d", o->micro_batch_pairs, o->batch_pairs);
    if (o->steps && o->epochs) die("give --steps or --epochs, not both");
    if (given(o, "--eval-every") && !o->eval_data) die("--eval-every needs --eval-data");
    // every output is checked before anything is loaded or trained
    Inputs inputs;
    collect_inputs(&inputs, o);
    outdir_check("--out", o->out, "trainer_state.json");
    output_not_input("--out", o->out, inputs.paths, inputs.n);
    check_outputs(o, &inputs);

    setup(&run.s, o);
    Model *m = &run.s.model;
    PairSet *data = &run.s.data;
    int n_pairs = data->n_pairs;
    long long steps_per_epoch = (n_pairs + o->batch_pairs - 1) / o->batch_pairs;
    long long n_steps = o->steps ? o->steps : steps_per_epoch * (o->epochs ? o->epochs : 1);
    if (n_steps > 2147483647LL) die("--epochs %d: %lld steps are too many", o->epochs, n_steps);
    run.n_steps = (int)n_steps;
    run.warmup = o->warmup_steps >= 0 ? o->warmup_steps : run.n_steps / 10;
    run.data_hash = pairs_hash(data);
    run.eval_hash = o->eval_data ? pairs_hash(&run.s.eval) : 0;
    run.loader.n_pairs = n_pairs; run.loader.batch_pairs = o->batch_pairs; run.loader.shuffle = !o->no_shuffle;
    run.loader.cursor = n_pairs; // start a new epoch at the first step
    run.loader.order = xmalloc(n_pairs * sizeof(int));
    for (int i = 0; i < n_pairs; i++) run.loader.order[i] = i;
    run.loader.rng = rng_seeded(o->seed);
    TrainerState state;
    int resume = o->resume ? resume_check(&run, &state) : 0;
    if (resume < 0) {
        if (dist_rank() == 0) printf("--resume: the run in %s is finished (%d steps); nothing to do\n", o->out, run.n_steps);
        return 0;
    }
    model_place(m, COMPUTE_KERNELS);
    model_alloc_training(m);
    setup_batch(&run.s, o->micro_batch_pairs, o->recompute);
    if (m->k->prepare) m->k->prepare(m, o->precision);
    // reference-based losses compare against the frozen initial model, scored once up front
    if (loss->flags & NEEDS_REFERENCE) {
        if (!resume) {
            if (dist_rank() == 0) printf("scoring %d pairs with the frozen reference model...\n", n_pairs);
            run.ref_c = xmalloc(n_pairs * sizeof(double)); run.ref_r = xmalloc(n_pairs * sizeof(double));
            score_pairs(m, data->pairs, n_pairs, o->micro_batch_pairs, run.ref_c, run.ref_r);
        }
        if (o->eval_data) {
            int n = run.s.eval.n_pairs;
            run.eval_ref_c = xmalloc(n * sizeof(double)); run.eval_ref_r = xmalloc(n * sizeof(double));
            score_pairs(m, run.s.eval.pairs, n, o->micro_batch_pairs, run.eval_ref_c, run.eval_ref_r);
        }
    }
    if (resume) resume_apply(&run, &state);
    if (dist_rank() == 0) {
        printf("model: %d layers, %d channels, %d heads, vocab %d, %.2fM parameters\n", m->config.n_layer,
               m->config.channels, m->config.n_head, m->config.vocab_size, m->num_parameters / 1e6);
        printf("data: %d pairs, longest sequence %d tokens; %d steps of %d pairs (micro-batches of %d%s)\n",
               n_pairs, run.s.longest, run.n_steps, o->batch_pairs, o->micro_batch_pairs, o->recompute ? ", recomputed" : "");
        if (dist_size() > 1) printf("processes: %d, each taking its share of every batch\n", dist_size());
        double mb = 1024.0 * 1024, p_mb = m->num_parameters * sizeof(float) / mb, a_mb = m->activation_bytes / mb;
        printf("memory (analytic): parameters %.1f MB, gradients and AdamW's two moments %.1f MB, activations %.1f MB; "
               "%.1f MB in all\n", p_mb, 3 * p_mb, a_mb, 4 * p_mb + a_mb);
        printf("loss: %s = %s", loss->name, loss->formula);
        if (loss->flags & USES_GAMMA) printf(", gamma %g -> %g", o->gamma, o->gamma_end);
        if (loss->flags & USES_BETA) printf(", beta %g", o->beta);
        if (loss->flags & USES_LAMBDA) printf(", lambda %g", o->lambda);
        if (loss->flags & USES_DELTA) printf(", delta %g", o->delta);
        if (loss->flags & USES_ALPHA) printf(", alpha %g", o->alpha);
        printf("; lr %g, warmup %d\n", o->lr, run.warmup);
        if (o->log) run.log = open_log(o->log);
        if (o->margins) run.margins_log = open_log(o->margins);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND; // a second Ctrl-C stops at once
    sigaction(SIGINT, &sa, NULL); sigaction(SIGTERM, &sa, NULL);
    // a checkpoint of the start, so that a run killed before its first --save-every resumes with its logs cut back
    if (o->save_every && !resume) save_run(&run, 0, 1);
    if (o->eval_data && run.step == 0) log_eval(&run, loss_params_at(&run, 0));
    while (run.step < run.n_steps) {
        train_step(&run);
        int s = run.step, last = s == run.n_steps;
        if (o->eval_data && (last || (o->eval_every && s % o->eval_every == 0))) log_eval(&run, loss_params_at(&run, s - 1));
        if (o->snapshot_every && s % o->snapshot_every == 0 && !last) save_snapshot(&run);
        double stop = stop_requested;
        dist_allreduce_sum_double(&stop, 1); // every process stops after the same step
        if (!last && ((o->save_every && s % o->save_every == 0) || stop)) save_run(&run, 0, 1);
        if (stop && !last) {
            if (dist_rank() == 0) printf("\ninterrupted after step %d of %d: %s holds a checkpoint (continue with --resume)\n", s, run.n_steps, o->out);
            dist_finalize();
            exit(130);
        }
    }
    save_run(&run, 1, 0);
    if (dist_rank() == 0) printf("saved %s\n", o->out);
    if (run.log) fclose(run.log);
    if (run.margins_log) fclose(run.margins_log);
    return 0;
}

// ----------------------------------------------------------------------------
// eval: summed and mean log-probs of each pair under a model

static int eval(int argc, char **argv) {
    Options o = parse_options(EVAL, argc, argv);
    int micro = o.micro_batch_pairs ? o.micro_batch_pairs : 4;
    Inputs inputs;
    collect_inputs(&inputs, &o);
    if (o.out) { output_file_check("--out", o.out); output_not_input("--out", o.out, inputs.paths, inputs.n); }
    Setup s;
    setup(&s, &o);
    model_place(&s.model, COMPUTE_KERNELS);
    setup_batch(&s, micro, 0);
    if (s.model.k->prepare) s.model.k->prepare(&s.model, o.precision);
    int n = s.data.n_pairs;
    double *s_c = xmalloc(n * sizeof(double)), *s_r = xmalloc(n * sizeof(double));
    score_pairs(&s.model, s.data.pairs, n, micro, s_c, s_r);
    LossParams hp = {0, 0, 0, 0, 0};
    EvalStats e = eval_stats(&s.data, s_c, s_r, NULL, hp, NULL, NULL);
    if (dist_rank() != 0) return 0;
    if (o.out) {
        AtomicFile af = atomic_open(o.out);
        for (int i = 0; i < n; i++) {
            const Pair *p = &s.data.pairs[i];
            fprintf(af.f, "{\"chosen_logp\": %.9g, \"rejected_logp\": %.9g, \"chosen_len\": %d, \"rejected_len\": %d, \"margin\": %.9g}\n",
                    s_c[i], s_r[i], p->n_chosen, p->n_rejected, margin(pair_stats(p, s_c[i], s_r[i], 0, 0)));
        }
        atomic_close(&af);
    }
    printf("pairs %d | margin_mean %.6f | acc %.4f | chosen_logp %.6f | rejected_logp %.6f\n",
           n, e.margin_mean, e.acc, e.chosen_logp, e.rejected_logp);
    return 0;
}

// ----------------------------------------------------------------------------
// sampling: extend each prompt one token at a time. The prompts go through one forward over
// the batch, read at each sequence's last position (the response-position machinery of
// training with one "response" row per sequence); every later token is one decode_step
// against the key/value cache.

typedef struct { float temperature, top_p; int max_new, eos; } SampleParams;

static double rng_uniform(Rng *r) { return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

static const float *sort_probs; // qsort has no context argument
static int by_prob_desc(const void *a, const void *b) {
    float pa = sort_probs[*(const int *)a], pb = sort_probs[*(const int *)b];
    return (pa < pb) - (pa > pb);
}

// temperature 0 is greedy; top_p < 1 samples from the smallest set of tokens holding that much mass
static int sample_token(const float *logits, int V, SampleParams sp, Rng *rng, float *probs, int *order) {
    int best = 0;
    for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
    if (sp.temperature <= 0) return best;
    double sum = 0;
    for (int v = 0; v < V; v++) sum += probs[v] = expf((logits[v] - logits[best]) / sp.temperature);
    int n = V;
    for (int v = 0; v < V; v++) order[v] = v;
    if (sp.top_p < 1) {
        sort_probs = probs;
        qsort(order, V, sizeof(int), by_prob_desc);
        double mass = 0;
        for (n = 0; n < V && mass < sp.top_p * sum; n++) mass += probs[order[n]];
        sum = mass;
    }
    double u = rng_uniform(rng) * sum, c = 0;
    for (int i = 0; i < n; i++) { c += probs[order[i]]; if (u < c) return order[i]; }
    return order[n - 1];
}

// samples[i] gets the new tokens for prompts[i] (EOS included when produced), lens in sample_lens;
// returns how many samples stopped at the end of the model's context rather than at EOS or --max-new
static int generate(Model *m, int **prompts, const int *prompt_lens, int n, SampleParams sp, Rng *rng,
                    int **samples, int *sample_lens) {
    int V = m->config.vocab_size, maxB = m->max_B, maxT = m->max_T, at_context_end = 0;
    int *seq = xmalloc((size_t)maxB * maxT * sizeof(int)), *len = xmalloc(maxB * sizeof(int)), *active = xmalloc(maxB * sizeof(int));
    float *probs = xmalloc(V * sizeof(float));
    int *order = xmalloc(V * sizeof(int));
    int *rows = xmalloc(maxB * sizeof(int)), *toks = xmalloc(maxB * sizeof(int)), *pos = xmalloc(maxB * sizeof(int));
    KVCache kv;
    kv_alloc(&kv, &m->config, maxB, maxT);
    for (int i0 = 0; i0 < n; i0 += maxB) {
        int k = n - i0 < maxB ? n - i0 : maxB;
        for (int b = 0; b < k; b++) { // sample() made sure every prompt leaves room for a new token
            len[b] = prompt_lens[i0 + b];
            memcpy(seq + (size_t)b * maxT, prompts[i0 + b], len[b] * sizeof(int));
            samples[i0 + b] = xmalloc((sp.max_new + 1) * sizeof(int));
            sample_lens[i0 + b] = 0;
            active[b] = 1;
        }
        // the prompts in one forward (logits at each last prompt position), their keys and values cached;
        // then one decode_step per new token for the sequences still going
        int T = 0;
        for (int b = 0; b < k; b++) if (len[b] > T) T = len[b];
        m->B = k; m->T = T; m->R = k;
        for (int b = 0; b < k; b++) {
            for (int t = 0; t < T; t++) {
                m->host_tokens[(size_t)b * T + t] = t < len[b] ? seq[(size_t)b * maxT + t] : 0;
                m->host_pos[(size_t)b * T + t] = t;
            }
            m->host_resp_row[b] = b * T + len[b] - 1; m->host_resp_seq[b] = b; m->host_resp_target[b] = 0;
            rows[b] = b;
        }
        model_forward(m);
        kv_prefill(m, &kv);
        const float *logits = m->logits;
        int R = k;
        for (int step = 0; step < sp.max_new && R > 0; step++) {
            int going = 0;
            for (int r = 0; r < R; r++) {
                int b = rows[r];
                int tok = sample_token(logits + (size_t)r * V, V, sp, rng, probs, order);
                samples[i0 + b][sample_lens[i0 + b]++] = tok;
                seq[(size_t)b * maxT + len[b]++] = tok;
                if (tok == sp.eos) { active[b] = 0; continue; }
                if (len[b] >= maxT) { active[b] = 0; at_context_end += step + 1 < sp.max_new; continue; }
                rows[going] = b; toks[going] = tok; pos[going] = len[b] - 1; going++;
            }
            R = going;
            if (R == 0 || step + 1 == sp.max_new) break;
            decode_step(m, &kv, toks, pos, rows, R);
            logits = kv.logits;
        }
    }
    kv_free(&kv);
    free(rows); free(toks); free(pos);
    free(seq); free(len); free(active); free(probs); free(order);
    return at_context_end;
}

static void write_ids(FILE *f, const int *ids, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", ids[i]);
    fputc(']', f);
}

static int sample(int argc, char **argv) {
    Options o = parse_options(SAMPLE, argc, argv);
    if (!o.model) die("--model DIR is required");
    if (!o.prompts == !o.prompt_text) die("sample needs --prompt TEXT or --prompts FILE.jsonl");
    Inputs inputs;
    collect_inputs(&inputs, &o);
    if (o.out) { output_file_check("--out", o.out); output_not_input("--out", o.out, inputs.paths, inputs.n); }
    Model m;
    model_load(&m, o.model);
    SampleParams sp = {(float)o.temperature, (float)o.top_p, o.max_new, m.config.eos};
    PromptSet ps;
    DataOptions dopt = {o.model, o.tokenizer, o.chat_template, o.skip_bad};
    if (o.prompt_text) { // one chat message: answered as text, stopping at the template's end of turn
        memset(&ps, 0, sizeof ps);
        ps.n = 1;
        ps.lens = xmalloc(sizeof(int));
        ps.prompts = xmalloc(sizeof(int *));
        int end_of_turn;
        ps.lens[0] = data_chat_prompt(o.prompt_text, &dopt, &ps.ids, &end_of_turn);
        ps.prompts[0] = ps.ids;
        for (int i = 0; i < ps.lens[0]; i++)
            if (ps.ids[i] >= m.config.vocab_size) die("--prompt: token id %d is outside the model's vocabulary", ps.ids[i]);
        if (end_of_turn >= 0) sp.eos = end_of_turn;
    } else
        data_load_prompts(&ps, o.prompts, m.config.vocab_size, &dopt);
    if (ps.n == 0) die("%s: no prompts", o.prompts);
    int n = ps.n * o.n_samples, longest = 0;
    int **prompts = xmalloc(n * sizeof(int *)), *lens = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        prompts[i] = ps.prompts[i / o.n_samples]; lens[i] = ps.lens[i / o.n_samples];
        if (lens[i] >= m.config.max_seq_len)
            die("%s: prompt %d has %d tokens: no room for a new token in the model's %d positions",
                o.prompts ? o.prompts : "--prompt", i / o.n_samples + 1, lens[i], m.config.max_seq_len);
        if (lens[i] > longest) longest = lens[i];
    }
    int maxT = (long long)longest + sp.max_new < m.config.max_seq_len ? longest + sp.max_new : m.config.max_seq_len;
    int maxB = n < 64 ? n : 64;
    model_alloc_batch(&m, maxB, maxT, maxB, 0);
    int **samples = xmalloc(n * sizeof(int *)), *sample_lens = xmalloc(n * sizeof(int));
    Rng rng = rng_seeded(o.seed);
    int cut = generate(&m, prompts, lens, n, sp, &rng, samples, sample_lens);
    if (cut) fprintf(stderr, "repo: warning: %d samples stopped at the model's %d positions before --max-new %d\n",
                     cut, m.config.max_seq_len, sp.max_new);
    if (o.prompt_text) { // the answers as text, the end-of-turn token left out
        for (int j = 0; j < o.n_samples; j++) {
            int len = sample_lens[j] - (sample_lens[j] > 0 && samples[j][sample_lens[j] - 1] == sp.eos);
            char *text = data_decode(samples[j], len, &dopt);
            printf("%s%s\n", o.n_samples > 1 ? "--- sample\n" : "", text);
            free(text);
        }
        return 0;
    }
    AtomicFile af = {0};
    FILE *f = stdout;
    if (o.out) { af = atomic_open(o.out); f = af.f; }
    for (int p = 0; p < ps.n; p++) {
        fprintf(f, "{\"prompt_ids\": ");
        write_ids(f, ps.prompts[p], ps.lens[p]);
        fprintf(f, ", \"samples\": [");
        for (int j = 0; j < o.n_samples; j++) {
            if (j) fprintf(f, ", ");
            write_ids(f, samples[p * o.n_samples + j], sample_lens[p * o.n_samples + j]);
        }
        fprintf(f, "]}\n");
    }
    if (o.out) atomic_close(&af);
    return 0;
}

// ----------------------------------------------------------------------------
// init: a freshly initialized model from a config.json, as Hugging Face initializes GPT-2:
// weights ~ N(0, 0.02), residual output projections scaled by 1/sqrt(2 n_layer), norms 1, biases 0

static double rng_normal(Rng *r) { // Box-Muller
    double u1 = ((rng_next(r) >> 11) + 0.5) / 9007199254740992.0, u2 = (rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static int init_model(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    int seed = 42;
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 >= argc) die("init: %s needs a value", argv[i]);
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--seed")) seed = (int)parse_num(argv[i], argv[i + 1]);
        else die("init: unknown option %s (init --config FILE --out DIR [--seed S])", argv[i]);
    }
    if (!config || !out) die("init: --config FILE and --out DIR are required");
    outdir_check("--out", out, NULL); // init never replaces anything
    Model m;
    memset(&m, 0, sizeof m);
    m.k = cpu_kernels();
    m.config = checkpoint_config(config); // validated before anything is written
    model_alloc_parameters(&m);
    OutDir d;
    outdir_begin(&d, out);
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/config.json", d.tmp);
    copy_file_atomic(config, dst);
    Rng rng = rng_seeded(seed);
    for (int i = 0; i < m.n_entries; i++) {
        TensorEntry *e = &m.entries[i];
        float *w = m.host_params + e->offset;
        size_t n = (size_t)e->rows * (e->cols ? e->cols : 1);
        int is_bias = strstr(e->name, "bias") != NULL;
        double std = 0.02;
        if (strstr(e->name, "c_proj.weight") || strstr(e->name, "o_proj") || strstr(e->name, "down_proj"))
            std /= sqrt(2.0 * m.config.n_layer);
        for (size_t j = 0; j < n; j++) w[j] = e->cols ? (float)(std * rng_normal(&rng)) : is_bias ? 0.0f : 1.0f;
    }
    checkpoint_save(d.tmp, &m.config, m.entries, m.n_entries, m.host_params, d.tmp);
    outdir_commit(&d);
    printf("initialized %s: %.2fM parameters, seed %d\n", out, m.num_parameters / 1e6, seed);
    return 0;
}

#ifndef REPO_NO_MAIN
int main(int argc, char **argv) {
    dist_init(&argc, &argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(); return argc < 2; }
    int rc;
    if (dist_size() > 1 && strcmp(argv[1], "train") && strcmp(argv[1], "eval"))
        die("%s runs on one process: ./repo %s (mpirun runs train and eval)", argv[1], argv[1]);
    if (!strcmp(argv[1], "train")) rc = train(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "eval")) rc = eval(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "init")) rc = init_model(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "sample")) rc = sample(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "prepare") || !strcmp(argv[1], "encode") || !strcmp(argv[1], "decode"))
        rc = data_command(argv[1], argc - 2, argv + 2);
    else die("unknown command \"%s\" (train, eval, sample, init, prepare, encode, decode; see --help)", argv[1]);
    dist_finalize();
    return rc;
}
#endif
