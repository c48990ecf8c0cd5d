/*
matmul.c: the three float32 products of a linear layer, blocked for the cache and the vector registers
(the BLIS / GotoBLAS scheme), in C with intrinsics.

Every product is one GEMM, C (M, N) (+)= A (M, K) @ B (K, N), with C row-major:
    forward   out   = inp  @ W^T   M = rows N, N = OC, K = C   A = inp (k contiguous), B = W^T (k contiguous)
    backward  dinp += dout @ W     M = rows N, N = C,  K = OC  A = dout (k contiguous), B = W (n contiguous)
              dW   += dout^T @ inp M = OC,     N = C,  K = rows A = dout^T (m contiguous), B = inp (n contiguous)
Rows of dout that are all zero are dropped before: they are left out of M for dinp (its rows of C are
reached through an index list) and out of K for dW.

Blocking, from the outside in (gemm_tiling, gemm_tile, micro_kernel):
    tiles         MT x NT   the unit of parallel work, taken by whichever thread is free (dynamic
                            schedule); one thread computes a tile from start to finish
    K blocks      KC = 256  in order; the thread packs the tile's B block (KC x NT) into NR-column panels
    row blocks    MC        of the tile; the thread packs the A block (MC x KC) into MR-row panels
    micro-panels  NR, MR    for each B micro-panel (KC x NR), every A micro-panel (MR x KC)
    micro-tile    MR x NR   held in vector registers over the K block, then added into C once
Packing copies a block into a buffer of the thread's own, contiguous in the order the kernel reads it and
zero-padded to whole panels (so the kernel has no edge cases inside its loop); it also transposes the
operands that are contiguous along k (8 x 8 in registers). The micro-kernel broadcasts MR values of A and
loads NR / VW vectors of B for each k, then does MR x NR / VW fused multiply-adds; MR x NR is as large as
the registers allow (MR x NR / VW accumulators, NR / VW vectors of B, one broadcast):
    AVX-512   MR 12, NR 32 (2 zmm)   24 accumulators of 32 registers
    AVX2+FMA  MR 6,  NR 16 (2 ymm)   12 accumulators of 16 registers
    portable  MR 6,  NR 8  (2 x 4)   GCC vector extensions: SSE2 on x86-64 without -march, NEON, or scalar
Cache sizes: a B micro-panel (KC x NR floats: 32 KiB on AVX-512) is reused by all MC / MR A micro-panels
(12 KiB each) from L1 and L2; the packed B block (at most KC x 512 floats, 512 KiB) and A block (at most
MC = 12 MR rows: 144 KiB on AVX-512) stay inside a 1 MiB L2 (Zen 4, Skylake-SP). KC = 256 keeps the
write-back of C (once per K block) under 1% of the multiply-adds. Packing costs about 1 / NT + 1 / MT of
the multiply-adds (A is packed again for every tile in its rows, B for every tile in its columns), so tiles
are as large as the thread count allows: one tile per column block on one thread, and halved, the longer
side first, until each of several threads has TILES_PER_THREAD to balance (a thread slowed by another
process then takes fewer). The buffers (0.7 MB a thread) are allocated per call; the only other
allocation is the list of live rows (N ints).

Determinism: each output element is the same sum in the same order whatever the thread count: within a
K block the kernel accumulates its k terms in order in one register lane, and the K blocks are added into
C in order by the one thread that owns the tile. Tile sizes (which may depend on the thread count) only
choose which thread computes an element, never how: there is no split of K across threads and no atomics.
KC is the same on every ISA, so the AVX-512 and AVX2 builds give the same bits too.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "matmul.h"
#ifdef __AVX__
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define MM_ISA "avx512"
typedef __m512 vec_t;
#define VW 16
#define MR 12
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADA(p) _mm512_load_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VSTOREA(p, x) _mm512_store_ps(p, x)
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#elif defined(__AVX2__) && defined(__FMA__)
#define MM_ISA "avx2"
typedef __m256 vec_t;
#define VW 8
#define MR 6
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADA(p) _mm256_load_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VSTOREA(p, x) _mm256_store_ps(p, x)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#else
#define MM_ISA "portable"
typedef float vec_t __attribute__((vector_size(16)));
#define VW 4
#define MR 6
static inline vec_t vload(const float *p) { vec_t v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vec_t v) { memcpy(p, &v, sizeof v); }
#define VZERO() ((vec_t){0, 0, 0, 0})
#define VLOAD(p) vload(p)
#define VLOADA(p) (*(const vec_t *)(p))
#define VSTORE(p, x) vstore(p, x)
#define VSTOREA(p, x) (*(vec_t *)(p) = (x))
#define VBCAST(x) ((vec_t){0, 0, 0, 0} + (x))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) ((a) + (b))
#endif

#define NV 2                // vectors of B per micro-tile row
#define NR (NV * VW)        // micro-tile columns
#define KC 256              // K block
#define MC_MAX (12 * MR)    // row block, at most
#define NC_MAX 512          // tile columns, at most (a multiple of NR)
#define MC_MIN (4 * MR)     // tiles are not shrunk below MC_MIN x NC_MIN
#define NC_MIN (4 * NR)
#define TILES_PER_THREAD 4  // fewer tiles than this per thread: shrink them, for the dynamic schedule
#define PACK_FLOATS (MC_MAX * KC + KC * NC_MAX)
#define PREFETCH_ROWS 4     // packing a row-by-row operand: prefetch this many rows ahead
#define SERIAL_FLOPS 2e6    // below this a product runs on one thread (same result, no fork cost)
_Static_assert(MR <= 32 && NR <= 32, "pack_lanes_along_k holds at most 32 lanes");

const char *matmul_isa(void) { return MM_ISA; }

static void *xmalloc_mm(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "repo: error: out of memory (%zu bytes for a matmul)\n", n); exit(1); }
    return p;
}

// a thread's packing buffers, the A block then the B block (about 0.7 MB), for the length of one call
static float *pack_buffer(void) {
    float *p = (float *)aligned_alloc(64, PACK_FLOATS * sizeof(float));
    if (!p) { fprintf(stderr, "repo: error: out of memory (matmul packing buffer)\n"); exit(1); }
    return p;
}

static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline int cdiv(int a, int b) { return (a + b - 1) / b; }

// ----------------------------------------------------------------------------
// packing: a block of an operand into panels of W (MR or NR) lanes: dst[k * W + j], lanes past w zero

#ifdef __AVX__
// dst[(k + i) * W + j] = s[j][k + i] for 8 rows s[j] and 8 k: an 8 x 8 transpose in registers
static inline void transpose_8x8(float *dst, size_t W, const float *const s[8], int k) {
    __m256 r0 = _mm256_loadu_ps(s[0] + k), r1 = _mm256_loadu_ps(s[1] + k), r2 = _mm256_loadu_ps(s[2] + k);
    __m256 r3 = _mm256_loadu_ps(s[3] + k), r4 = _mm256_loadu_ps(s[4] + k), r5 = _mm256_loadu_ps(s[5] + k);
    __m256 r6 = _mm256_loadu_ps(s[6] + k), r7 = _mm256_loadu_ps(s[7] + k);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3);
    __m256 t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE); // rows 0-3 of k 0|4, 1|5
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE); // k 2|6, 3|7
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE); // rows 4-7 likewise
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    float *d = dst + (size_t)k * W;
    _mm256_storeu_ps(d + 0 * W, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + 1 * W, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * W, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * W, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * W, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * W, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * W, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * W, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// the same for 4 rows s[j] and 8 k: dst[(k + i) * W + j] for j < 4
static inline void transpose_4x8(float *dst, size_t W, const float *const s[4], int k) {
    __m256 r0 = _mm256_loadu_ps(s[0] + k), r1 = _mm256_loadu_ps(s[1] + k), r2 = _mm256_loadu_ps(s[2] + k);
    __m256 r3 = _mm256_loadu_ps(s[3] + k);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3);
    __m256 t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE); // k 0|4, 1|5
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE); // k 2|6, 3|7
    float *d = dst + (size_t)k * W;
    _mm_storeu_ps(d + 0 * W, _mm256_castps256_ps128(u0)); _mm_storeu_ps(d + 4 * W, _mm256_extractf128_ps(u0, 1));
    _mm_storeu_ps(d + 1 * W, _mm256_castps256_ps128(u1)); _mm_storeu_ps(d + 5 * W, _mm256_extractf128_ps(u1, 1));
    _mm_storeu_ps(d + 2 * W, _mm256_castps256_ps128(u2)); _mm_storeu_ps(d + 6 * W, _mm256_extractf128_ps(u2, 1));
    _mm_storeu_ps(d + 3 * W, _mm256_castps256_ps128(u3)); _mm_storeu_ps(d + 7 * W, _mm256_extractf128_ps(u3, 1));
}
#endif

// the operand's rows are lanes, contiguous along k: lane j is row idx[i0 + j] (or i0 + j), from column k0
static void pack_lanes_along_k(float *restrict dst, int W, const float *src, size_t ld, const int *idx,
                               int i0, int w, int k0, int kc) {
    const float *s[32]; // W <= 32
    for (int j = 0; j < w; j++) s[j] = src + (size_t)(idx ? idx[i0 + j] : i0 + j) * ld + k0;
    int j = 0;
#ifdef __AVX__
    for (int group = 8; group >= 4; group /= 2) // groups of 8, then of 4 lanes: transposes, then the last k one by one
        for (; j + group <= w; j += group) {
            int k = 0;
            for (; k + 8 <= kc; k += 8)
                if (group == 8) transpose_8x8(dst + j, W, s + j, k);
                else transpose_4x8(dst + j, W, s + j, k);
            for (; k < kc; k++)
                for (int i = 0; i < group; i++) dst[(size_t)k * W + j + i] = s[j + i][k];
        }
#endif
    for (; j < w; j++) // the other lanes one by one
        for (int k = 0; k < kc; k++) dst[(size_t)k * W + j] = s[j][k];
    for (j = w; j < W; j++)
        for (int k = 0; k < kc; k++) dst[(size_t)k * W + j] = 0.0f;
}

// the operand's rows are k, contiguous along lanes: row idx[k0 + k] (or k0 + k), lanes from column j0,
// `width` of them, into width / W panels (the last zero-padded). Row by row, so that each source row is
// read front to back (inlined where W is a constant: whole panel rows copy as a few vector moves).
static inline __attribute__((always_inline)) void pack_lanes_contiguous(float *restrict dst, int W, const float *src,
                                                                        size_t ld, const int *idx, int k0, int kc, int j0, int width) {
    for (int k = 0; k < kc; k++) {
        const float *s = src + (size_t)(idx ? idx[k0 + k] : k0 + k) * ld + j0;
        const float *ahead = k + PREFETCH_ROWS < kc ? src + (size_t)(idx ? idx[k0 + k + PREFETCH_ROWS] : k0 + k + PREFETCH_ROWS) * ld + j0 : s;
        float *restrict d = dst + (size_t)k * W;
        int j = 0;
        for (; j + W <= width; j += W, d += (size_t)kc * W) {
            for (int l = 0; l < W; l += 16) __builtin_prefetch(ahead + j + l); // a later row, a cache line at a time
            memcpy(d, s + j, W * sizeof(float));
        }
        if (j < width) for (int l = 0; l < W; l++) d[l] = j + l < width ? s[j + l] : 0.0f;
    }
}

// ----------------------------------------------------------------------------
// the micro-kernel: acc (MR x NR) = A panel (kc x MR) @ B panel (kc x NR), then
// C rows crow[r][col ..] = (overwrite ? bias or 0 : C) + acc, for the rows x cols inside C

// (kept out of line, so that a profile shows the kernel apart from the packing)
__attribute__((noinline)) static void micro_kernel(int kc, const float *restrict a, const float *restrict b,
                                                   float *const *crow, int col, int rows, int cols, int overwrite,
                                                   const float *bias) {
    for (int r = 0; r < rows; r++) { // C's rows come in from L3 or memory while the k loop runs
        __builtin_prefetch(crow[r] + col, 1);
        __builtin_prefetch(crow[r] + col + cols - 1, 1);
    }
    vec_t acc[MR][NV];
    #pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = VZERO();
    for (int k = 0; k < kc; k++, a += MR, b += NR) { // acc += a[k] (outer product) b[k]
        vec_t b0 = VLOADA(b), b1 = VLOADA(b + VW);
        #pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            vec_t ar = VBCAST(a[r]);
            acc[r][0] = VFMA(ar, b0, acc[r][0]);
            acc[r][1] = VFMA(ar, b1, acc[r][1]);
        }
    }
    if (cols == NR) { // whole rows of the micro-tile: vector loads and stores
        #pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            if (r >= rows) break;
            float *c = crow[r] + col;
            #pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                vec_t x = !overwrite ? VLOAD(c + v * VW) : bias ? VLOAD(bias + v * VW) : VZERO();
                VSTORE(c + v * VW, VADD(x, acc[r][v]));
            }
        }
        return;
    }
    _Alignas(64) float tile[MR][NR]; // the right edge of C: through memory
    #pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++) VSTOREA(&tile[r][v * VW], acc[r][v]);
    for (int r = 0; r < rows; r++) {
        float *c = crow[r] + col;
        for (int j = 0; j < cols; j++) c[j] = (!overwrite ? c[j] : bias ? bias[j] : 0.0f) + tile[r][j];
    }
}

// ----------------------------------------------------------------------------
// one GEMM, C (M, N) (+)= A (M, K) @ B (K, N), and its output tiles

typedef struct {
    int M, N, K;
    const float *a; size_t lda; int a_along_k; // A(m, k) = a_along_k ? a[mi(m) lda + k] : a[ki(k) lda + m]
    const float *b; size_t ldb; int b_along_k; // B(k, n) = b_along_k ? b[n ldb + k]     : b[ki(k) ldb + n]
    const int *mrow, *krow;                    // mi, ki: index lists for m and k, or NULL for the identity
    float *c; size_t ldc;                      // C(m, n) = c[mi(m) ldc + n]
    int overwrite; const float *bias;          // C = bias (or 0) + A B instead of C += A B
    int mt, nt, tiles_n, tiles;                // the tiling (gemm_tiling)
} Gemm;

// Tiles as large as possible (fewest re-packings: A is packed N / nt times, B M / mt times), NC_MAX
// columns at most (the packed B block stays in L2), halved (the longer side first) while there are fewer
// than `want`, then evened out so that the tiles have about one size.
static void gemm_tiling(Gemm *g, long want) {
    g->tiles = 0;
    if (g->M <= 0 || g->N <= 0 || (g->K <= 0 && !g->overwrite)) return; // nothing to compute
    int mt = cdiv(g->M, MR) * MR, nt = min_int(cdiv(g->N, NR) * NR, NC_MAX);
    while ((long)cdiv(g->M, mt) * cdiv(g->N, nt) < want) {
        if (mt > MC_MIN && (mt >= nt || nt <= NC_MIN)) mt = cdiv(mt / 2, MR) * MR;
        else if (nt > NC_MIN) nt = cdiv(nt / 2, NR) * NR;
        else break;
    }
    int tm = cdiv(g->M, mt), tn = cdiv(g->N, nt);
    g->mt = cdiv(cdiv(g->M, tm), MR) * MR;
    g->nt = cdiv(cdiv(g->N, tn), NR) * NR;
    g->tiles_n = tn;
    g->tiles = tm * tn;
}

// tiles wanted for one product: one on one thread, else TILES_PER_THREAD a thread for the dynamic schedule
static long tiles_wanted(int threads) { return threads > 1 ? (long)TILES_PER_THREAD * threads : 1; }

// tile t of the GEMM (mt x nt), K block by K block in order: that order is each element's summation order
static void gemm_tile(const Gemm *g, int t, float *Ap) {
    int m0 = t / g->tiles_n * g->mt, n0 = t % g->tiles_n * g->nt;
    int mt = min_int(g->mt, g->M - m0), nt = min_int(g->nt, g->N - n0);
    int mc = cdiv(cdiv(mt, cdiv(mt, MC_MAX)), MR) * MR; // the tile's rows in blocks of about one size
    float *Bp = Ap + MC_MAX * KC;
    float *crow[MC_MAX]; // a row block's rows of C, from column n0
    int k0 = 0;
    do { // K blocks (once with kc = 0 when K = 0, to write the bias)
        int kc = min_int(KC, g->K - k0), overwrite = g->overwrite && k0 == 0;
        if (g->b_along_k) // the B block (kc x nt), in NR-column panels, once for all the row blocks
            for (int j = 0; j < nt; j += NR)
                pack_lanes_along_k(Bp + (size_t)j * kc, NR, g->b, g->ldb, NULL, n0 + j, min_int(NR, nt - j), k0, kc);
        else pack_lanes_contiguous(Bp, NR, g->b, g->ldb, g->krow, k0, kc, n0, nt);
        for (int i0 = m0; i0 < m0 + mt; i0 += mc) { // row blocks
            int rows = min_int(mc, m0 + mt - i0);
            if (g->a_along_k) // the A block (rows x kc), in MR-row panels
                for (int i = 0; i < rows; i += MR)
                    pack_lanes_along_k(Ap + (size_t)i * kc, MR, g->a, g->lda, g->mrow, i0 + i, min_int(MR, rows - i), k0, kc);
            else pack_lanes_contiguous(Ap, MR, g->a, g->lda, g->krow, k0, kc, i0, rows);
            for (int i = 0; i < rows; i++) crow[i] = g->c + (size_t)(g->mrow ? g->mrow[i0 + i] : i0 + i) * g->ldc + n0;
            for (int j = 0; j < nt; j += NR)       // B micro-panels: each stays in L1 ...
                for (int i = 0; i < rows; i += MR) // ... while the A micro-panels stream past it
                    micro_kernel(kc, Ap + (size_t)i * kc, Bp + (size_t)j * kc, crow + i, j, min_int(MR, rows - i),
                                 min_int(NR, nt - j), overwrite, overwrite && g->bias ? g->bias + n0 + j : NULL);
        }
        k0 += kc;
    } while (k0 < g->K);
}

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// ----------------------------------------------------------------------------
// the products

void matmul_forward_fast(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    Gemm g = {N, OC, C, inp, (size_t)C, 1, weight, (size_t)C, 1, NULL, NULL, out, (size_t)OC, 1, bias, 0, 0, 0, 0};
    int threads = 2.0 * N * C * OC < SERIAL_FLOPS ? 1 : max_threads();
    gemm_tiling(&g, tiles_wanted(threads));
    #pragma omp parallel num_threads(threads)
    {
        float *pack = NULL;
        #pragma omp for schedule(dynamic, 1) nowait
        for (int t = 0; t < g.tiles; t++) { // each tile by one thread, whichever is free
            if (!pack) pack = pack_buffer();
            gemm_tile(&g, t, pack);
        }
        free(pack);
    }
}

static int zero_row(const float *d, int n) {
    for (int i = 0; i < n; i++) if (d[i] != 0.0f) return 0;
    return 1;
}

#define BIAS_CHUNK 256 // columns of dbias per work item

void matmul_backward_fast(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int C, int OC) {
    if (!dinp && !dweight && !dbias) return;
    // the rows of dout with a non-zero entry, before the threads start (a live row stops the scan at its
    // first non-zero, a dead one costs a read of the row): the parallel part then needs no barrier
    int *live = (int *)xmalloc_mm((size_t)N * sizeof(int)), n_live = 0;
    for (int n = 0; n < N; n++) if (!zero_row(dout + (size_t)n * OC, OC)) live[n_live++] = n;
    const int *rows = n_live < N ? live : NULL;
    // dinp += dout @ W over the live rows of M; dW += dout^T @ inp over the live rows of K
    Gemm gi = {n_live, C, OC, dout, (size_t)OC, 1, weight, (size_t)C, 0, rows, NULL, dinp, (size_t)C, 0, NULL, 0, 0, 0, 0};
    Gemm gw = {OC, C, n_live, dout, (size_t)OC, 0, inp, (size_t)C, 0, NULL, rows, dweight, (size_t)C, 0, NULL, 0, 0, 0, 0};
    int threads = 4.0 * n_live * C * OC < SERIAL_FLOPS ? 1 : max_threads();
    long want = tiles_wanted(threads) / (dinp && dweight ? 2 : 1); // (the two products: equal work)
    if (dinp) gemm_tiling(&gi, want);
    if (dweight) gemm_tiling(&gw, want);
    int bias_items = dbias ? cdiv(OC, BIAS_CHUNK) : 0, items = gi.tiles + gw.tiles + bias_items;
    #pragma omp parallel num_threads(threads)
    {
        float *pack = NULL;
        #pragma omp for schedule(dynamic, 1) nowait
        for (int t = 0; t < items; t++) { // the tiles of both products, then dbias, each by one thread
            if (t < gi.tiles + gw.tiles && !pack) pack = pack_buffer();
            if (t < gi.tiles) gemm_tile(&gi, t, pack);
            else if (t < gi.tiles + gw.tiles) gemm_tile(&gw, t - gi.tiles, pack);
            else { // dbias[o0 ..] += sum over live rows, in row order
                int o0 = (t - gi.tiles - gw.tiles) * BIAS_CHUNK, ob = min_int(BIAS_CHUNK, OC - o0);
                float acc[BIAS_CHUNK] = {0};
                for (int i = 0; i < n_live; i++) {
                    const float *d = dout + (size_t)live[i] * OC + o0;
                    for (int j = 0; j < ob; j++) acc[j] += d[j];
                }
                for (int j = 0; j < ob; j++) dbias[o0 + j] += acc[j];
            }
        }
        free(pack);
    }
    free(live);
}
