// Attention alone: repo.c's tiled attention (attention_forward / attention_backward, what the model
// runs) against the reference that keeps the (B, NH, T, T) probabilities, in the same process,
// alternating, on random inputs. Prints tokens/s of forward + backward (min / median / max over the
// repetitions) and the memory each keeps for backward. A benchmark, not a test.
//   bench/attention_bench.sh [B] [NH] [NKV] [HD] [REPS] [T...]
#define REPO_NO_MAIN
#include "../repo.c"

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }
static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: attention_bench B NH NKV HD REPS T...\n"); return 2; }
    int B = atoi(argv[1]), NH = atoi(argv[2]), NKV = atoi(argv[3]), hd = atoi(argv[4]), reps = atoi(argv[5]);
    printf("B %d NH %d NKV %d hd %d, %d repetitions, forward + backward, tokens/s min / median / max\n", B, NH, NKV, hd, reps);
    printf("%6s %28s %28s %9s %12s %12s\n", "T", "reference", "tiled", "ratio", "ref MB", "tiled MB");
    for (int ai = 6; ai < argc; ai++) {
        int T = atoi(argv[ai]), qkv_dim = (NH + 2 * NKV) * hd;
        size_t n_qkv = (size_t)B * T * qkv_dim, n_out = (size_t)B * T * NH * hd, n_att = (size_t)B * NH * T * T;
        float *qkv = xmalloc(n_qkv * sizeof(float)), *dout = xmalloc(n_out * sizeof(float));
        float *out = xmalloc(n_out * sizeof(float)), *dqkv = xmalloc(n_qkv * sizeof(float));
        float *att = xmalloc(n_att * sizeof(float)), *lse = xmalloc((size_t)B * NH * T * sizeof(float));
        uint64_t s = 1;
        for (size_t i = 0; i < n_qkv; i++) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; qkv[i] = (float)((s >> 40) / 16777216.0) * 4 - 2; }
        for (size_t i = 0; i < n_out; i++) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; dout[i] = (float)((s >> 40) / 16777216.0) * 2 - 1; }
        double *tr = xmalloc(reps * sizeof(double)), *tt = xmalloc(reps * sizeof(double));
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            attention_forward_reference(out, att, qkv, B, T, NH, NKV, hd);
            memset(dqkv, 0, n_qkv * sizeof(float));
            attention_backward_reference(dqkv, dout, qkv, att, B, T, NH, NKV, hd);
            double t1 = now();
            attention_forward(out, lse, qkv, B, T, NH, NKV, hd);
            memset(dqkv, 0, n_qkv * sizeof(float));
            attention_backward(dqkv, dout, qkv, out, lse, B, T, NH, NKV, hd);
            double t2 = now();
            tr[r] = B * T / (t1 - t0); tt[r] = B * T / (t2 - t1);
        }
        qsort(tr, reps, sizeof(double), cmp_double); qsort(tt, reps, sizeof(double), cmp_double);
        char a[64], b[64];
        snprintf(a, sizeof a, "%.0f / %.0f / %.0f", tr[0], tr[reps / 2], tr[reps - 1]);
        snprintf(b, sizeof b, "%.0f / %.0f / %.0f", tt[0], tt[reps / 2], tt[reps - 1]);
        printf("%6d %28s %28s %8.2fx %12.1f %12.3f\n", T, a, b, tt[reps / 2] / tr[reps / 2], n_att * 4 / 1e6, B * NH * T * 4 / 1e6);
        fflush(stdout);
        free(qkv); free(dout); free(out); free(dqkv); free(att); free(lse); free(tr); free(tt);
    }
    return 0;
}
