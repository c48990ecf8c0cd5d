// matmul.c's three products against OpenBLAS cblas_sgemm, same shape, same thread count, same run.
// A benchmark, not a test (bench/matmul_bench.sh builds and runs it). For every shape and product the
// two are timed alternately, call by call; each pair gives a ratio, and the table shows the median and
// the min-max of GFLOP/s and of ours / OpenBLAS.
//   matmul_bench [--threads 1,2] [--shapes all|layers|peak|NAME] [--seconds S]
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../matmul.h"

// OpenBLAS's own entry points (declared in its cblas.h on Debian, repeated for other builds)
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
char *openblas_get_config(void);

// wall time, and the calling thread's CPU time: at 1 thread the latter leaves out the time slices that
// other processes take on a shared machine (not the cache they evict)
static double wall(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

static float *random_floats(size_t n, unsigned seed) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "matmul_bench: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f; }
    return p;
}

static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double median(double *v, int n) { qsort(v, n, sizeof *v, cmp_double); return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]); }

typedef struct { const char *name; int N, C, OC; } Shape;

enum { FWD, DINP, DW, NPROD };
static const char *prod_name[NPROD] = {"fwd inp W^T", "dinp dout W", "dW dout^T inp"};

typedef struct { float *inp, *w, *bias, *dout, *out, *dinp, *dw; int N, C, OC; } Bufs;

static void run_ours(const Bufs *b, int prod) {
    if (prod == FWD) matmul_forward_fast(b->out, b->inp, b->w, b->bias, b->N, b->C, b->OC);
    else if (prod == DINP) matmul_backward_fast(b->dinp, NULL, NULL, b->dout, b->inp, b->w, b->N, b->C, b->OC);
    else matmul_backward_fast(NULL, b->dw, NULL, b->dout, b->inp, b->w, b->N, b->C, b->OC);
}

static void run_blas(const Bufs *b, int prod) {
    int N = b->N, C = b->C, OC = b->OC;
    if (prod == FWD) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, b->inp, C, b->w, C, 0.0f, b->out, OC);
    else if (prod == DINP) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, b->dout, OC, b->w, C, 1.0f, b->dinp, C);
    else cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, b->dout, OC, b->inp, C, 1.0f, b->dw, C);
}

static void set_threads(int t) { omp_set_num_threads(t); openblas_set_num_threads(t); }

// times ours and OpenBLAS alternately (after one warm-up call each) for about `seconds` in all
static void bench_product(const Shape *s, int prod, int threads, double seconds) {
    Bufs b = {random_floats((size_t)s->N * s->C, 1), random_floats((size_t)s->OC * s->C, 2), random_floats(s->OC, 3),
              random_floats((size_t)s->N * s->OC, 4), random_floats((size_t)s->N * s->OC, 5),
              random_floats((size_t)s->N * s->C, 6), random_floats((size_t)s->OC * s->C, 7), s->N, s->C, s->OC};
    double flops = 2.0 * s->N * s->C * s->OC;
    set_threads(threads);
    run_ours(&b, prod); run_blas(&b, prod);
    double t0 = wall();
    run_ours(&b, prod);
    double once = wall() - t0;
    int reps = (int)(seconds / 2 / once);
    reps = reps < 5 ? 5 : reps > 41 ? 41 : reps;
    double g_ours[41], g_blas[41], ratio[41], ratio_cpu[41];
    // at several threads, a pause after each call lets the other library's idle threads stop spinning
    struct timespec gap = {0, threads > 1 ? 5000000 : 0};
    for (int r = 0; r < reps; r++) {
        double w0 = wall(), c0 = cpu();
        run_ours(&b, prod);
        double w_ours = wall() - w0, c_ours = cpu() - c0;
        nanosleep(&gap, NULL);
        w0 = wall(); c0 = cpu();
        run_blas(&b, prod);
        double w_blas = wall() - w0, c_blas = cpu() - c0;
        nanosleep(&gap, NULL);
        g_ours[r] = flops / w_ours * 1e-9; g_blas[r] = flops / w_blas * 1e-9;
        ratio[r] = w_blas / w_ours; ratio_cpu[r] = c_blas / c_ours;
    }
    // (median sorts: then [0] is the min, [reps - 1] the max)
    double mo = median(g_ours, reps), mb = median(g_blas, reps), mr = median(ratio, reps), mc = median(ratio_cpu, reps);
    printf("%-14s %4d %4d %5d  %-13s %2d  %6.1f [%5.1f %5.1f]  %6.1f [%5.1f %5.1f]  %4.2f [%4.2f %4.2f]", s->name, s->N, s->C,
           s->OC, prod_name[prod], threads,
           mo, g_ours[0], g_ours[reps - 1], mb, g_blas[0], g_blas[reps - 1], mr, ratio[0], ratio[reps - 1]);
    if (threads == 1) printf("  %4.2f [%4.2f %4.2f]", mc, ratio_cpu[0], ratio_cpu[reps - 1]);
    else printf("  %-16s", "");
    printf("  %2d\n", reps);
    fflush(stdout);
    free(b.inp); free(b.w); free(b.bias); free(b.dout); free(b.out); free(b.dinp); free(b.dw);
}

// the machine's sgemm peak: OpenBLAS and ours on a 2048^3 product
static void peak(int threads, double seconds) {
    Shape s = {"peak (square)", 2048, 2048, 2048};
    bench_product(&s, FWD, threads, seconds);
}

int main(int argc, char **argv) {
    const char *threads_arg = "1,0", *which = "all";
    double seconds = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--shapes")) which = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else { fprintf(stderr, "usage: %s [--threads 1,2] [--shapes all|layers|peak|NAME] [--seconds S]\n", argv[0]); return 1; }
    }
    int all = omp_get_num_procs(), thr[8], nthr = 0;
    for (const char *p = threads_arg; *p && nthr < 8; ) { int t = atoi(p); thr[nthr++] = t > 0 ? t : all; p = strchr(p, ','); if (!p) break; p++; }
    static const Shape shapes[] = {
        {"gpt2 qkv", 512, 768, 2304},    {"gpt2 attn.proj", 512, 768, 768}, {"gpt2 fc", 512, 768, 3072},
        {"gpt2 fc.proj", 512, 3072, 768}, {"gpt2 lm head", 256, 768, 50257},
        {"smol qkv", 1024, 576, 960},    {"smol o_proj", 1024, 576, 576},   {"smol gate|up", 1024, 576, 3072},
        {"smol down", 1024, 1536, 576},  {"smol lm head", 512, 576, 49152},
        {"smol qkv", 4096, 576, 960},    {"smol o_proj", 4096, 576, 576},   {"smol gate|up", 4096, 576, 3072},
        {"smol down", 4096, 1536, 576},
    };
    printf("ours: %s micro-kernel; OpenBLAS %s, core %s; %d processors\n", matmul_isa(), openblas_get_config(),
           openblas_get_corename(), all);
    printf("GFLOP/s by wall time, median [min max] of the calls; ours / OpenBLAS per pair of calls, by wall time\n"
           "and (1 thread) by CPU time\n");
    printf("%-14s %4s %4s %5s  %-13s %2s  %-20s  %-20s  %-16s  %-16s  %s\n", "layer", "N", "C", "OC", "product", "th", "ours", "OpenBLAS",
           "ours/OpenBLAS", "same, CPU time", "reps");
    for (int ti = 0; ti < nthr; ti++) {
        if (!strcmp(which, "all") || !strcmp(which, "peak")) peak(thr[ti], seconds);
        if (!strcmp(which, "peak")) continue;
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            if (!strcmp(which, "layers") && strstr(shapes[i].name, "lm head")) continue;
            if (strcmp(which, "all") && strcmp(which, "layers") && !strstr(shapes[i].name, which)) continue; // a name
            for (int prod = 0; prod < NPROD; prod++) bench_product(&shapes[i], prod, thr[ti], seconds);
        }
    }
    return 0;
}
