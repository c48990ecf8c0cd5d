// matmul.c against a plain double-precision triple loop, on random inputs.
// Shapes from 1 to the LM head's vocabulary, odd sizes, zero rows in dout, NULL outputs, accumulation
// into non-zero buffers, pointers at every 4-byte offset, guard zones around every buffer, inputs
// checked unchanged; then bit-identity of every output across thread counts and repeated runs.
//
// Tolerance: an element is the fp32 sum of K products, added in order within K blocks of KC = 256
// terms (one fused multiply-add each) and then block by block into C. The classic bound for recursive
// summation (Higham, Accuracy and Stability, 3.1) makes the error at most
//     (KC' + B + 2) u (|c0| + sum_k |a_k b_k|),    u = 2^-24, KC' = min(K, 256), B = K blocks,
// (one rounding per term in the block chain, one per block added into C, one for the bias / initial
// value, one more for a build without FMA). The test requires exactly that per element, with the
// exact (double) sum of |a_k b_k|; a lost, doubled or misplaced term is far outside it for the shapes here.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../matmul.h"

static int passed, failed;
static void check(int ok, const char *what) {
    if (ok) passed++;
    else { failed++; printf("FAIL %s\n", what); }
}

static uint64_t rng = 88172645463325252ull;
static float uniform(void) { // in [-1, 1)
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / 8388608.0 - 1.0);
}

// a buffer of n floats at `offset` floats past a 64-byte boundary, with guard zones on both sides
#define GUARD 64
static const float guard_value = -12345.678f;
typedef struct { float *base, *p; size_t n; } Buf;
static Buf buf_new(size_t n, int offset) {
    Buf b = {malloc((n + 2 * GUARD + 32) * sizeof(float)), NULL, n};
    if (!b.base) { printf("out of memory\n"); exit(1); }
    float *start = (float *)(((uintptr_t)b.base + 63) & ~(uintptr_t)63); // 64-aligned, then offset
    b.p = start + GUARD + offset;
    for (float *q = b.base; q < b.p; q++) *q = guard_value;
    for (float *q = b.p + n; q < b.base + n + 2 * GUARD + 32; q++) *q = guard_value;
    return b;
}
static int buf_guards_ok(const Buf *b) {
    for (float *q = b->p - GUARD; q < b->p; q++) if (*q != guard_value) return 0;
    for (float *q = b->p + b->n; q < b->p + b->n + GUARD; q++) if (*q != guard_value) return 0;
    return 1;
}
static void fill_random(Buf *b) { for (size_t i = 0; i < b->n; i++) b->p[i] = uniform(); }

// |got - want| <= (KC' + B + 2) u (|c0| + sum |terms|), see the top of the file
static int close_enough(float got, double want, double abs_sum, long K) {
    long kc = K < 256 ? K : 256, blocks = (K + 255) / 256;
    double bound = (kc + blocks + 2) * ldexp(1.0, -24) * abs_sum;
    return fabs((double)got - want) <= bound; // (NaN fails)
}

typedef struct {
    int N, C, OC;
    double dead;      // fraction of dout's rows set to zero (first and last rows included when > 0)
    int bias;         // forward with a bias
    int outputs;      // bit mask of the backward outputs: 1 dinp, 2 dweight, 4 dbias
    int offset;       // floats past a 64-byte boundary, for every buffer
} Case;

static void run_case(const Case *t) {
    int N = t->N, C = t->C, OC = t->OC;
    char name[160];
    snprintf(name, sizeof name, "N %d C %d OC %d dead %.2f bias %d outputs %d offset %d", N, C, OC, t->dead, t->bias,
             t->outputs, t->offset);
    Buf inp = buf_new((size_t)N * C, t->offset), w = buf_new((size_t)OC * C, (t->offset + 1) % 16);
    Buf bias = buf_new(OC, (t->offset + 2) % 16), out = buf_new((size_t)N * OC, (t->offset + 3) % 16);
    Buf dout = buf_new((size_t)N * OC, (t->offset + 5) % 16), dinp = buf_new((size_t)N * C, (t->offset + 7) % 16);
    Buf dw = buf_new((size_t)OC * C, (t->offset + 11) % 16), db = buf_new(OC, (t->offset + 13) % 16);
    fill_random(&inp); fill_random(&w); fill_random(&bias); fill_random(&dout);
    fill_random(&dinp); fill_random(&dw); fill_random(&db);
    char *dead = calloc(N, 1);
    for (int n = 0; n < N; n++) {
        dead[n] = t->dead > 0 && (n == 0 || n == N - 1 || (uniform() + 1) / 2 < t->dead);
        if (dead[n]) memset(dout.p + (size_t)n * OC, 0, OC * sizeof(float));
    }
    // copies: inputs must come back unchanged, outputs accumulate onto these
    size_t sz_in = inp.n * 4, sz_w = w.n * 4, sz_d = dout.n * 4;
    float *inp0 = malloc(sz_in), *w0 = malloc(sz_w), *dout0 = malloc(sz_d);
    float *dinp0 = malloc(dinp.n * 4), *dw0 = malloc(dw.n * 4), *db0 = malloc(db.n * 4);
    memcpy(inp0, inp.p, sz_in); memcpy(w0, w.p, sz_w); memcpy(dout0, dout.p, sz_d);
    memcpy(dinp0, dinp.p, dinp.n * 4); memcpy(dw0, dw.p, dw.n * 4); memcpy(db0, db.p, db.n * 4);
    char what[240];

    // forward: out is overwritten (NaN before: any read of it shows)
    for (size_t i = 0; i < out.n; i++) out.p[i] = NAN;
    matmul_forward_fast(out.p, inp.p, w.p, t->bias ? bias.p : NULL, N, C, OC);
    int ok = 1;
    for (int n = 0; n < N && ok; n++)
        for (int o = 0; o < OC && ok; o++) {
            double s = t->bias ? bias.p[o] : 0, a = fabs(s);
            for (int i = 0; i < C; i++) { double p = (double)inp.p[(size_t)n * C + i] * w.p[(size_t)o * C + i]; s += p; a += fabs(p); }
            ok = close_enough(out.p[(size_t)n * OC + o], s, a, C);
        }
    snprintf(what, sizeof what, "forward values: %s", name); check(ok, what);
    snprintf(what, sizeof what, "forward guards and inputs: %s", name);
    check(buf_guards_ok(&out) && !memcmp(inp0, inp.p, sz_in) && !memcmp(w0, w.p, sz_w) && buf_guards_ok(&bias), what);

    // backward; an Inf in every dead row of inp must not reach dweight (dead rows contribute nothing)
    for (int n = 0; n < N; n++) if (dead[n]) inp.p[(size_t)n * C] = INFINITY;
    memcpy(inp0, inp.p, sz_in);
    int live_rows = 0;
    for (int n = 0; n < N; n++) live_rows += !dead[n];
    matmul_backward_fast(t->outputs & 1 ? dinp.p : NULL, t->outputs & 2 ? dw.p : NULL, t->outputs & 4 ? db.p : NULL,
                         dout.p, inp.p, w.p, N, C, OC);
    ok = 1;
    for (int n = 0; n < N && ok; n++) // dinp = dinp0 + dout @ W
        for (int i = 0; i < C && ok; i++) {
            size_t at = (size_t)n * C + i;
            if (!(t->outputs & 1)) { ok = !memcmp(&dinp.p[at], &dinp0[at], 4); continue; }
            double s = dinp0[at], a = fabs(s);
            for (int o = 0; o < OC; o++) { double p = (double)dout.p[(size_t)n * OC + o] * w.p[(size_t)o * C + i]; s += p; a += fabs(p); }
            ok = dead[n] ? !memcmp(&dinp.p[at], &dinp0[at], 4) : close_enough(dinp.p[at], s, a, OC);
        }
    snprintf(what, sizeof what, "backward dinp: %s", name); check(ok, what);
    ok = 1;
    for (int o = 0; o < OC && ok; o++) // dW = dW0 + dout^T @ inp over live rows
        for (int i = 0; i < C && ok; i++) {
            size_t at = (size_t)o * C + i;
            if (!(t->outputs & 2)) { ok = !memcmp(&dw.p[at], &dw0[at], 4); continue; }
            double s = dw0[at], a = fabs(s);
            for (int n = 0; n < N; n++) {
                if (dead[n]) continue;
                double p = (double)dout.p[(size_t)n * OC + o] * inp.p[(size_t)n * C + i]; s += p; a += fabs(p);
            }
            ok = close_enough(dw.p[at], s, a, live_rows);
        }
    snprintf(what, sizeof what, "backward dweight: %s", name); check(ok, what);
    ok = 1;
    for (int o = 0; o < OC && ok; o++) { // dbias = dbias0 + sum_n dout
        if (!(t->outputs & 4)) { ok = !memcmp(&db.p[o], &db0[o], 4); continue; }
        double s = db0[o], a = fabs(s);
        for (int n = 0; n < N; n++) { double d = dout.p[(size_t)n * OC + o]; s += d; a += fabs(d); }
        ok = close_enough(db.p[o], s, a, N); // one chain of N additions: inside the same bound
    }
    snprintf(what, sizeof what, "backward dbias: %s", name); check(ok, what);
    snprintf(what, sizeof what, "backward guards and inputs: %s", name);
    check(buf_guards_ok(&dinp) && buf_guards_ok(&dw) && buf_guards_ok(&db) && buf_guards_ok(&inp) && buf_guards_ok(&w) &&
          buf_guards_ok(&dout) && !memcmp(inp0, inp.p, sz_in) && !memcmp(w0, w.p, sz_w) && !memcmp(dout0, dout.p, sz_d), what);

    Buf *all[] = {&inp, &w, &bias, &out, &dout, &dinp, &dw, &db};
    for (int i = 0; i < 8; i++) free(all[i]->base);
    free(dead); free(inp0); free(w0); free(dout0); free(dinp0); free(dw0); free(db0);
}

// empty dimensions: an empty sum is 0 (forward: out = bias), nothing else is touched
static void empty_shapes(void) {
    Buf out = buf_new(15, 1), bias = buf_new(5, 2), dout = buf_new(15, 3), db = buf_new(5, 4), dinp = buf_new(12, 5);
    Buf inp = buf_new(12, 6), w = buf_new(20, 7), dw = buf_new(20, 8);
    fill_random(&bias); fill_random(&dout); fill_random(&db); fill_random(&dinp); fill_random(&inp); fill_random(&w); fill_random(&dw);
    int ok = 1;
    for (int i = 0; i < 15; i++) out.p[i] = NAN;
    matmul_forward_fast(out.p, inp.p, w.p, bias.p, 3, 0, 5); // C = 0
    for (int i = 0; i < 15; i++) ok &= out.p[i] == bias.p[i % 5];
    matmul_forward_fast(out.p, inp.p, w.p, NULL, 3, 0, 5);
    for (int i = 0; i < 15; i++) ok &= out.p[i] == 0.0f;
    check(ok && buf_guards_ok(&out), "forward with C = 0: out = bias, or 0");
    float db0[5], dinp0[12], dw0[20];
    memcpy(db0, db.p, sizeof db0); memcpy(dinp0, dinp.p, sizeof dinp0); memcpy(dw0, dw.p, sizeof dw0);
    matmul_forward_fast(out.p, inp.p, w.p, bias.p, 0, 4, 5);              // N = 0
    matmul_forward_fast(out.p, inp.p, w.p, bias.p, 3, 4, 0);              // OC = 0
    matmul_backward_fast(dinp.p, dw.p, db.p, dout.p, inp.p, w.p, 0, 4, 5); // N = 0
    matmul_backward_fast(dinp.p, dw.p, db.p, dout.p, inp.p, w.p, 3, 4, 0); // OC = 0: dinp += 0
    ok = !memcmp(db0, db.p, sizeof db0) && !memcmp(dinp0, dinp.p, sizeof dinp0) && !memcmp(dw0, dw.p, sizeof dw0);
    for (int i = 0; i < 15; i++) ok &= out.p[i] == 0.0f;
    matmul_backward_fast(dinp.p, dw.p, db.p, dout.p, inp.p, w.p, 3, 0, 5); // C = 0: only dbias
    for (int o = 0; o < 5; o++) {
        double s = db0[o], a = fabs(s);
        for (int n = 0; n < 3; n++) { s += dout.p[n * 5 + o]; a += fabs(dout.p[n * 5 + o]); }
        ok &= close_enough(db.p[o], s, a, 3);
    }
    ok &= !memcmp(dinp0, dinp.p, sizeof dinp0) && !memcmp(dw0, dw.p, sizeof dw0);
    Buf *all[] = {&out, &bias, &dout, &db, &dinp, &inp, &w, &dw};
    for (int i = 0; i < 8; i++) { ok &= buf_guards_ok(all[i]); free(all[i]->base); }
    check(ok, "N, OC or C = 0: nothing written but dbias (C = 0), no access outside the buffers");
}

// every output of one forward and one backward call, with `threads` threads, from fixed inputs
typedef struct { float *out, *dinp, *dw, *db; } Outputs;
static Outputs run_all(int N, int C, int OC, double dead, int threads) {
    (void)threads; // (without OpenMP: one thread)
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    uint64_t saved = rng;
    rng = 12345 + N * 7 + C * 13 + OC;
    float *inp = malloc((size_t)N * C * 4), *w = malloc((size_t)OC * C * 4), *bias = malloc(OC * 4), *dout = malloc((size_t)N * OC * 4);
    Outputs o = {malloc((size_t)N * OC * 4), malloc((size_t)N * C * 4), malloc((size_t)OC * C * 4), malloc(OC * 4)};
    for (size_t i = 0; i < (size_t)N * C; i++) { inp[i] = uniform(); o.dinp[i] = uniform(); }
    for (size_t i = 0; i < (size_t)OC * C; i++) { w[i] = uniform(); o.dw[i] = uniform(); }
    for (int i = 0; i < OC; i++) { bias[i] = uniform(); o.db[i] = uniform(); }
    for (int n = 0; n < N; n++) {
        int zero = (uniform() + 1) / 2 < dead;
        for (int i = 0; i < OC; i++) dout[(size_t)n * OC + i] = zero ? 0.0f : uniform();
    }
    matmul_forward_fast(o.out, inp, w, bias, N, C, OC);
    matmul_backward_fast(o.dinp, o.dw, o.db, dout, inp, w, N, C, OC);
    free(inp); free(w); free(bias); free(dout);
    rng = saved;
    return o;
}
static int same_outputs(Outputs a, Outputs b, int N, int C, int OC) {
    return !memcmp(a.out, b.out, (size_t)N * OC * 4) && !memcmp(a.dinp, b.dinp, (size_t)N * C * 4) &&
           !memcmp(a.dw, b.dw, (size_t)OC * C * 4) && !memcmp(a.db, b.db, OC * 4);
}
static void free_outputs(Outputs o) { free(o.out); free(o.dinp); free(o.dw); free(o.db); }
static uint64_t fnv1a(uint64_t h, const float *p, size_t n) { // of the bits
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    int quick = 0; // --quick: the smaller shapes only (under the sanitizers)
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) { // the build must have picked this micro-kernel
            char what[80];
            snprintf(what, sizeof what, "micro-kernel %s, expected %s", matmul_isa(), argv[++i]);
            check(!strcmp(matmul_isa(), argv[i]), what);
        } else { fprintf(stderr, "usage: %s [--quick] [--isa avx512|avx2|portable]\n", argv[0]); return 2; }
    }
    printf("matmul: %s micro-kernel\n", matmul_isa());
    // tiny and odd shapes, each edge of the micro-tiles and tiles, several K blocks, the LM head's width
    static const int shapes[][3] = {
        {1, 1, 1}, {1, 8, 5}, {2, 3, 1}, {5, 7, 33}, {7, 33, 81}, {3, 81, 257}, {33, 8, 96}, {13, 96, 40},
        {12, 32, 32}, {13, 33, 17}, {6, 16, 16}, {25, 47, 65}, {64, 257, 300}, {300, 64, 90}, {257, 513, 31},
        {145, 20, 513}, {100, 300, 520}, {4, 16, 50257}, {3, 8, 49152},
    };
    int n_shapes = sizeof shapes / sizeof *shapes, k = 0;
    for (int s = 0; s < n_shapes; s++) {
        if (quick && (double)shapes[s][0] * shapes[s][1] * shapes[s][2] > 4e6) continue;
        for (int variant = 0; variant < 4; variant++, k++) {
            Case t = {shapes[s][0], shapes[s][1], shapes[s][2], variant == 0 ? 0.0 : variant == 3 ? 1.0 : 0.3,
                      variant != 1, variant == 2 ? 1 + (k % 6) : 7, k % 16};
            run_case(&t);
        }
    }
    { Case t = {150, 300, 530, 0.25, 1, 7, 3}; if (!quick) run_case(&t); } // many tiles in every direction
    empty_shapes();
    // bit-identical across thread counts and runs (the shapes are large enough to run in parallel)
    static const int big[][3] = {{512, 768, 768}, {100, 300, 520}, {64, 96, 50257}, {77, 1000, 333}};
    uint64_t digest = 14695981039346656037ull;
    for (int s = 0; s < 4; s++) {
        int N = big[s][0], C = big[s][1], OC = big[s][2];
        if (quick && s != 1) continue;
        for (int d = 0; d < 2; d++) {
            double dead = d ? 0.4 : 0.0;
            Outputs one = run_all(N, C, OC, dead, 1), two = run_all(N, C, OC, dead, 2), again = run_all(N, C, OC, dead, 2);
            Outputs three = run_all(N, C, OC, dead, 3);
            char what[120];
            snprintf(what, sizeof what, "bit-identical for 1, 2, 2 again, 3 threads: N %d C %d OC %d dead %.1f", N, C, OC, dead);
            check(same_outputs(one, two, N, C, OC) && same_outputs(two, again, N, C, OC) && same_outputs(one, three, N, C, OC), what);
            digest = fnv1a(digest, one.out, (size_t)N * OC); digest = fnv1a(digest, one.dinp, (size_t)N * C);
            digest = fnv1a(digest, one.dw, (size_t)OC * C); digest = fnv1a(digest, one.db, OC);
            free_outputs(one); free_outputs(two); free_outputs(again); free_outputs(three);
        }
    }
    // (the AVX-512 and AVX2 builds must agree: tests/test_matmul.sh compares these)
    printf("digest of the outputs above: %016llx%s\n", (unsigned long long)digest, quick ? " (quick)" : "");
#ifndef _OPENMP
    printf("(built without OpenMP: the thread-count checks ran on one thread)\n");
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
