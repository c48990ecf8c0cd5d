// matmul.h: the float32 matrix products of a linear layer, forward and backward, on the CPU.
// Row-major, any 4-byte alignment, OpenMP-parallel, bit-identical for any thread count.
// matmul.c says how they are blocked.
#ifndef MATMUL_H
#define MATMUL_H
#ifdef __cplusplus
extern "C" {
#endif

// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC); bias may be NULL; out is overwritten
void matmul_forward_fast(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);

// dinp (N, C) += dout (N, OC) @ weight (OC, C); dweight (OC, C) += dout^T @ inp; dbias (OC) += sum_n dout[n, :].
// Each of dinp, dweight, dbias may be NULL (that product is skipped). Rows of dout that are all zero
// contribute nothing and are skipped.
void matmul_backward_fast(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int C, int OC);

// which micro-kernel this build uses ("avx512", "avx2", "portable")
const char *matmul_isa(void);

#ifdef __cplusplus
}
#endif
#endif
