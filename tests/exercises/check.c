// check.c: one exercise's focused test (make check-exercise NAME=X; docs/exercises/README.md).
//
//   tests/exercises/check NAME [-a]     -a: show every failure, not only the first ones
//   tests/exercises/check --list        the exercises it knows
//
// The inputs and the expected outputs come from tests/exercises/expected/NAME.json, written by PyTorch
// (tests/exercises/expected.py); nothing here computes an expected value. It calls repo.c's function
// on each input and compares every output: a failure names the call and its inputs, the output or
// gradient and the entry, the expected and the computed value, and a hint when the value shows a
// common mistake (a buffer overwritten instead of added to, or not written at all).
// Ends with "N passed, M failed" (one check per output of each input); exit status 1 on any failure.
#define REPO_NO_MAIN
#include "../../repo.c"
#include <cjson/cJSON.h>
#include <stdarg.h>

static int n_pass = 0, n_fail = 0, show_all = 0;
enum { SHOWN = 12 }; // failures printed without -a

static void failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failure(const char *fmt, ...) {
    if (show_all || n_fail < SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        printf("FAIL ");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    }
    n_fail++;
}

// a crash or a hang inside the student's function still says which call it was
static char current[1024];
static void on_fatal(int sig) {
    char msg[1400];
    int n = snprintf(msg, sizeof msg, "FAIL %s: %s\n%d passed, %d failed\n", current,
                     sig == SIGALRM ? "did not return within 60 s (an endless loop?)"
                                    : "crashed (a bad pointer, an index out of range, or a NULL buffer written)",
                     n_pass, n_fail + 1);
    if (write(1, msg, n) < 0) _exit(1);
    _exit(1);
}
static void calling(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void calling(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current, sizeof current, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

// two values agree within atol + rtol |expected| (NaN never agrees)
static int close_to(double got, double expected, double rtol, double atol) {
    return fabs(got - expected) <= atol + rtol * fabs(expected);
}

// "0.5" and "0.50000001" both print as 0.5 with %.6g: then show every digit
static void two_numbers(char *a, char *b, size_t n, double x, double y) {
    snprintf(a, n, "%.6g", x); snprintf(b, n, "%.6g", y);
    if (!strcmp(a, b)) { snprintf(a, n, "%.17g", x); snprintf(b, n, "%.17g", y); }
    if (!strcmp(a, "-0")) strcpy(a, "0"); // a gradient of -0 is a gradient of 0
    if (!strcmp(b, "-0")) strcpy(b, "0");
}

static void check_value(const char *call, const char *what, double expected, double got, double rtol, double atol) {
    if (close_to(got, expected, rtol, atol)) { n_pass++; return; }
    char e[40], g[40];
    two_numbers(e, g, sizeof e, expected, got);
    failure("%s: %s expected %s, got %s", call, what, e, g);
}

// A tensor's check: one pass or fail for the whole tensor, naming its first wrong entry.
// before: the buffer's contents before the call (NULL: none); add: the function adds into it
// (expected = before + result), else it replaces it.
typedef void (*IndexName)(char *buf, size_t n, size_t i, const void *ctx);
static void check_tensor(const char *call, const char *name, const double *expected, const double *got, const float *before,
                         int add, size_t n, IndexName index_name, const void *ctx, double rtol, double atol) {
    size_t wrong = 0, first = 0, unchanged = 0;
    for (size_t i = 0; i < n; i++) {
        if (close_to(got[i], expected[i], rtol, atol)) continue;
        if (!wrong++) first = i;
        if (before && got[i] == before[i]) unchanged++;
    }
    if (!wrong) { n_pass++; return; }
    char idx[160], e[40], g[40], hint[240] = "";
    index_name(idx, sizeof idx, first, ctx);
    two_numbers(e, g, sizeof e, expected[first], got[first]);
    if (before && unchanged == wrong)
        snprintf(hint, sizeof hint, wrong == n ? "; every entry still holds what was there before the call: nothing was written"
                                               : "; those entries still hold what was there before the call: nothing was written to them");
    else if (before && add && close_to(got[first], expected[first] - before[first], rtol, atol))
        snprintf(hint, sizeof hint, "; it held %.6g before the call and backward adds (+=) into its gradients: "
                 "this looks like = instead of +=", before[first]);
    else if (before && !add && close_to(got[first], expected[first] + before[first], rtol, atol))
        snprintf(hint, sizeof hint, "; it held %.6g before the call: the result replaces it (set it, don't add to it)", before[first]);
    failure("%s: %s%s expected %s, got %s (%zu of %zu entries wrong%s)", call, name, idx, e, g, wrong, n, hint);
}

// largest |x|: tensors are compared to a fraction of their own scale
static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}
static double *to_double(const float *x, size_t n) {
    double *d = xmalloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static float *copy_floats(const float *x, size_t n) {
    float *c = xmalloc((n ? n : 1) * sizeof(float));
    memcpy(c, x, n * sizeof(float));
    return c;
}

static void name_flat(char *buf, size_t n, size_t i, const void *ctx) { snprintf(buf, n, "[%zu]", i); }
static void name_rows(char *buf, size_t n, size_t i, const void *ctx) { // ctx: the row length, then the names
    const int *cols = (const int *)ctx;
    snprintf(buf, n, "[row %zu, column %zu]", i / cols[0], i % cols[0]);
}

// ---- the expected-value file

static const char *path_now;
static cJSON *load_cases(const char *dir, const char *name) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/expected/%s.json", dir, name);
    path_now = path;
    char *text = read_whole_file(path, NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *cases = root ? cJSON_GetObjectItem(root, "cases") : NULL;
    if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) == 0)
        die("%s: not an expected-value file (regenerate: python tests/exercises/expected.py gen)", path);
    return cases;
}
static cJSON *field(const cJSON *c, const char *key) {
    cJSON *f = cJSON_GetObjectItem(c, key);
    if (!f) die("%s: a case has no \"%s\"", path_now, key);
    return f;
}
static double num(const cJSON *c, const char *key) {
    cJSON *f = field(c, key);
    if (!cJSON_IsNumber(f)) die("%s: \"%s\" is not a number", path_now, key);
    return f->valuedouble;
}
static int integer(const cJSON *c, const char *key) { return (int)num(c, key); }
static const char *note(const cJSON *c) { cJSON *f = cJSON_GetObjectItem(c, "note"); return cJSON_IsString(f) ? f->valuestring : ""; }
static double *doubles(const cJSON *c, const char *key, size_t n) {
    cJSON *a = field(c, key);
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
        die("%s: \"%s\" should hold %zu numbers", path_now, key, n);
    double *x = xmalloc((n ? n : 1) * sizeof(double));
    size_t i = 0;
    for (cJSON *e = a->child; e; e = e->next) x[i++] = e->valuedouble;
    return x;
}
static float *floats(const cJSON *c, const char *key, size_t n) {
    double *d = doubles(c, key, n);
    float *x = xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)d[i];
    free(d);
    return x;
}
static int *ints(const cJSON *c, const char *key, size_t n) {
    double *d = doubles(c, key, n);
    int *x = xmalloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) x[i] = (int)d[i];
    free(d);
    return x;
}
#define EACH_CASE(c, cases) for (cJSON *c = (cases)->child; c; c = c->next)

// ---- the exercises

// the pair losses: the loss and its derivatives with respect to the summed log-probs s_c, s_r
static void check_loss(cJSON *cases, const char *name, PairLoss (*fn)(PairStats, LossParams)) {
    EACH_CASE(c, cases) {
        PairStats p = {num(c, "s_c"), num(c, "s_r"), integer(c, "n_c"), integer(c, "n_r"), num(c, "ref_c"), num(c, "ref_r")};
        LossParams h = {num(c, "gamma"), num(c, "beta"), 0, 0, 0};
        double M = p.s_c / p.n_c - p.s_r / p.n_r;
        char call[640], beta[48] = "";
        if (!strcmp(name, "loss_simpo")) snprintf(beta, sizeof beta, ", beta = %g", h.beta);
        if (!strcmp(name, "loss_dpo"))
            snprintf(call, sizeof call, "loss_dpo(s_c = %.6g, ref_c = %.6g, s_r = %.6g, ref_r = %.6g, beta = %g) [%s]",
                     p.s_c, p.ref_c, p.s_r, p.ref_r, h.beta, note(c));
        else
            snprintf(call, sizeof call, "%s(M = %.6g, gamma = %g%s; s_c = %.6g, n_c = %d, s_r = %.6g, n_r = %d) [%s]",
                     name, M, h.gamma, beta, p.s_c, p.n_c, p.s_r, p.n_r, note(c));
        calling("%s", call);
        PairLoss got = fn(p, h);
        // all in double: a few ulps of rounding is all a right formula differs by
        check_value(call, "loss", num(c, "loss"), got.loss, 1e-8, 1e-10);
        check_value(call, "dL/ds_c", num(c, "d_sc"), got.d_sc, 1e-8, 1e-10);
        check_value(call, "dL/ds_r", num(c, "d_sr"), got.d_sr, 1e-8, 1e-10);
    }
}
static void check_loss_repo(cJSON *cases) { check_loss(cases, "loss_repo", loss_repo); }
static void check_loss_simpo(cJSON *cases) { check_loss(cases, "loss_simpo", loss_simpo); }
static void check_loss_dpo(cJSON *cases) { check_loss(cases, "loss_dpo", loss_dpo); }

static void name_sequence(char *buf, size_t n, size_t i, const void *ctx) {
    snprintf(buf, n, "[%zu] (pair %zu's %s)", i, i / 2, i % 2 ? "rejected" : "chosen");
}

// sequence_logps: per-sequence sums of the response positions' log-probs; margin: M from them
static void check_margin(cJSON *cases) {
    EACH_CASE(c, cases) {
        int B = integer(c, "B"), R = integer(c, "R");
        float *logp = floats(c, "logp", R);
        int *seq = ints(c, "resp_seq", R), *n_resp = ints(c, "n_resp", B);
        double *expected = doubles(c, "seq_logp", B), *M = doubles(c, "M", B / 2), *got = xmalloc(B * sizeof(double));
        float *before = xmalloc(B * sizeof(float));
        for (int b = 0; b < B; b++) got[b] = before[b] = 999; // what an uninitialized array may hold
        char call[640];
        snprintf(call, sizeof call, "sequence_logps(R = %d response positions, B = %d sequences) [%s]", R, B, note(c));
        calling("%s", call);
        sequence_logps(logp, seq, R, B, got);
        // double sums of float32 terms: ~1e-15 apart in any order; summing in float is off by ~1e-6
        check_tensor(call, "seq_logp", expected, got, before, 0, B, name_sequence, NULL, 1e-9, 1e-12);
        for (int i = 0; i < B / 2; i++) {
            PairStats p = {expected[2 * i], expected[2 * i + 1], n_resp[2 * i], n_resp[2 * i + 1], 0, 0};
            snprintf(call, sizeof call, "margin(s_c = %.6g, n_c = %d, s_r = %.6g, n_r = %d) [%s, pair %d]",
                     p.s_c, p.n_c, p.s_r, p.n_r, note(c), i);
            calling("%s", call);
            check_value(call, "M", M[i], margin(p), 1e-10, 1e-12);
        }
        free(logp); free(seq); free(n_resp); free(expected); free(M); free(got); free(before);
    }
}

static void check_gamma_schedule(cJSON *cases) {
    EACH_CASE(c, cases) {
        int s = integer(c, "s"), N = integer(c, "n_steps");
        double g0 = num(c, "g0"), g1 = num(c, "g1");
        const char *kind = field(c, "kind")->valuestring;
        char call[640];
        snprintf(call, sizeof call, "gamma_at(s = %d, n_steps = %d, gamma = %g, gamma_end = %g, %s) [%s]", s, N, g0, g1, kind, note(c));
        calling("%s", call);
        check_value(call, "gamma", num(c, "gamma"), gamma_at(s, N, g0, g1, parse_schedule("kind", kind)), 1e-12, 1e-12);
    }
}

static void name_param(char *buf, size_t n, size_t i, const void *ctx) {
    size_t n_decay = *(const size_t *)ctx;
    snprintf(buf, n, "[%zu] (%s)", i, i < n_decay ? "< n_decay: a matrix entry" : ">= n_decay: a bias or gain, never decayed");
}

static void check_adamw(cJSON *cases) {
    EACH_CASE(c, cases) {
        size_t n = (size_t)integer(c, "n"), n_decay = (size_t)integer(c, "n_decay");
        float lr = (float)num(c, "lr"), wd = (float)num(c, "weight_decay");
        int t = integer(c, "t");
        float *params = floats(c, "params", n), *grads = floats(c, "grads", n), *m = floats(c, "m", n), *v = floats(c, "v", n);
        float *p0 = copy_floats(params, n), *m0 = copy_floats(m, n), *v0 = copy_floats(v, n);
        cJSON *nan_at = field(c, "nan_grads_at");
        for (cJSON *e = nan_at->child; e; e = e->next) grads[e->valueint] = NAN;
        char call[640];
        snprintf(call, sizeof call, "adamw_update(n = %zu, n_decay = %zu, lr = %g, weight_decay = %g, t = %d) [%s]",
                 n, n_decay, lr, wd, t, note(c));
        calling("%s", call);
        size_t bad = adamw_update(params, grads, m, v, n, n_decay, lr, wd, t);
        check_value(call, "the returned count of non-finite parameters", integer(c, "n_bad"), (double)bad, 0, 0);
        double *expected = doubles(c, "params_after", n), *got = to_double(params, n);
        // float32: an ulp of the parameter plus 1e-4 of a step of lr. torch's betas are doubles and 1 - 0.999f
        // is 1.3e-5 away from 1 - 0.999, so v may differ by that much; a wrong formula is off by O(1)
        check_tensor(call, "params", expected, got, p0, 0, n, name_param, &n_decay, 3e-7, 1e-4 * lr + 1e-30);
        if (cJSON_GetObjectItem(c, "m_after")) {
            double *em = doubles(c, "m_after", n), *ev = doubles(c, "v_after", n), *gm = to_double(m, n), *gv = to_double(v, n);
            check_tensor(call, "m (the first moment)", em, gm, m0, 0, n, name_flat, NULL, 2e-6, 1e-6 * max_abs(em, n) + 1e-30);
            check_tensor(call, "v (the second moment)", ev, gv, v0, 0, n, name_flat, NULL, 5e-5, 1e-6 * max_abs(ev, n) + 1e-30);
            free(em); free(ev); free(gm); free(gv);
        }
        free(params); free(grads); free(m); free(v); free(p0); free(m0); free(v0); free(expected); free(got);
    }
}

// a backward pass's gradient: float32 sums of tens of terms, against float64; a wrong formula is off by O(1)
#define GRAD_RTOL 1e-4
#define GRAD_ATOL(e, n) (1e-5 * max_abs(e, n) + 1e-7)
static void check_grad(const char *call, const char *name, const cJSON *c, const char *key, const float *got_f,
                       const float *before, size_t n, IndexName index_name, const void *ctx) {
    double *expected = doubles(c, key, n), *got = to_double(got_f, n);
    check_tensor(call, name, expected, got, before, 1, n, index_name, ctx, GRAD_RTOL, GRAD_ATOL(expected, n));
    free(expected); free(got);
}

static void name_channel(char *buf, size_t n, size_t i, const void *ctx) { snprintf(buf, n, "[channel %zu]", i); }
static void name_row_channel(char *buf, size_t n, size_t i, const void *ctx) {
    int C = *(const int *)ctx;
    snprintf(buf, n, "[row %zu, channel %zu]", i / C, i % C);
}

static void check_layernorm_backward(cJSON *cases) {
    EACH_CASE(c, cases) {
        int N = integer(c, "N"), C = integer(c, "C");
        size_t NC = (size_t)N * C;
        float *inp = floats(c, "inp", NC), *w = floats(c, "w", C), *mean = floats(c, "mean", N), *rstd = floats(c, "rstd", N);
        float *dout = floats(c, "dout", NC);
        float *dinp0 = floats(c, "prefill_dinp", NC), *dw0 = floats(c, "prefill_dw", C), *db0 = floats(c, "prefill_db", C);
        float *dinp = copy_floats(dinp0, NC), *dw = copy_floats(dw0, C), *db = copy_floats(db0, C);
        char call[640];
        snprintf(call, sizeof call, "layernorm_backward(N = %d rows, C = %d channels) [%s]", N, C, note(c));
        calling("%s", call);
        layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        check_grad(call, "dinp", c, "dinp", dinp, dinp0, NC, name_row_channel, &C);
        check_grad(call, "dw", c, "dw", dw, dw0, C, name_channel, NULL);
        check_grad(call, "db", c, "db", db, db0, C, name_channel, NULL);
        float *all[] = {inp, w, mean, rstd, dout, dinp0, dw0, db0, dinp, dw, db};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    }
}

static void check_matmul_backward(cJSON *cases) {
    EACH_CASE(c, cases) {
        int N = integer(c, "N"), C = integer(c, "C"), OC = integer(c, "OC"), has_bias = cJSON_IsTrue(field(c, "has_bias"));
        size_t NC = (size_t)N * C, OCC = (size_t)OC * C;
        float *inp = floats(c, "inp", NC), *weight = floats(c, "weight", OCC), *dout = floats(c, "dout", (size_t)N * OC);
        float *dinp0 = floats(c, "prefill_dinp", NC), *dw0 = floats(c, "prefill_dweight", OCC);
        float *db0 = floats(c, "prefill_dbias", has_bias ? OC : 0);
        float *dinp = copy_floats(dinp0, NC), *dw = copy_floats(dw0, OCC), *db = copy_floats(db0, has_bias ? OC : 0);
        char call[640];
        snprintf(call, sizeof call, "matmul_backward_reference(N = %d, C = %d, OC = %d%s) [%s]", N, C, OC,
                 has_bias ? "" : ", dbias = NULL", note(c));
        calling("%s", call);
        matmul_backward_reference(dinp, dw, has_bias ? db : NULL, dout, inp, weight, N, C, OC);
        int cols_c[1] = {C};
        check_grad(call, "dinp", c, "dinp", dinp, dinp0, NC, name_rows, cols_c);
        check_grad(call, "dweight", c, "dweight", dw, dw0, OCC, name_rows, cols_c);
        if (has_bias) check_grad(call, "dbias", c, "dbias", db, db0, OC, name_flat, NULL);
        float *all[] = {inp, weight, dout, dinp0, dw0, db0, dinp, dw, db};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    }
}

typedef struct { int T, NH, NKV, hd; } AttShape;
static void name_qkv(char *buf, size_t n, size_t i, const void *ctx) { // which sequence, position, q/k/v, head, component
    const AttShape *s = (const AttShape *)ctx;
    size_t D = (size_t)(s->NH + 2 * s->NKV) * s->hd, j = i % D;
    size_t b = i / D / s->T, t = (i / D) % s->T, h = j / s->hd, k = j % s->hd;
    if (h < (size_t)s->NH) snprintf(buf, n, "[b %zu, t %zu, q of head %zu, component %zu]", b, t, h, k);
    else if (h < (size_t)(s->NH + s->NKV)) snprintf(buf, n, "[b %zu, t %zu, k of kv head %zu, component %zu]", b, t, h - s->NH, k);
    else snprintf(buf, n, "[b %zu, t %zu, v of kv head %zu, component %zu]", b, t, h - s->NH - s->NKV, k);
}

static void check_attention_backward(cJSON *cases) {
    EACH_CASE(c, cases) {
        AttShape s = {integer(c, "T"), integer(c, "NH"), integer(c, "NKV"), integer(c, "hd")};
        int B = integer(c, "B");
        size_t n_qkv = (size_t)B * s.T * (s.NH + 2 * s.NKV) * s.hd, n_out = (size_t)B * s.T * s.NH * s.hd;
        float *qkv = floats(c, "qkv", n_qkv), *att = floats(c, "att", (size_t)B * s.NH * s.T * s.T), *dout = floats(c, "dout", n_out);
        float *dqkv0 = floats(c, "prefill_dqkv", n_qkv), *dqkv = copy_floats(dqkv0, n_qkv);
        char call[640];
        snprintf(call, sizeof call, "attention_backward_reference(B = %d, T = %d, NH = %d, NKV = %d, hd = %d) [%s]",
                 B, s.T, s.NH, s.NKV, s.hd, note(c));
        calling("%s", call);
        attention_backward_reference(dqkv, dout, qkv, att, B, s.T, s.NH, s.NKV, s.hd);
        check_grad(call, "dqkv", c, "dqkv", dqkv, dqkv0, n_qkv, name_qkv, &s);
        free(qkv); free(att); free(dout); free(dqkv0); free(dqkv);
    }
}

typedef struct { int V; const int *targets; } LogitsShape;
static void name_logit(char *buf, size_t n, size_t i, const void *ctx) {
    const LogitsShape *s = (const LogitsShape *)ctx;
    size_t r = i / s->V, v = i % s->V;
    snprintf(buf, n, "[row %zu, token %zu%s]", r, v, (int)v == s->targets[r] ? ": the target" : "");
}

static void check_logprob_backward(cJSON *cases) {
    EACH_CASE(c, cases) {
        int R = integer(c, "R"), V = integer(c, "V");
        size_t RV = (size_t)R * V;
        float *logits = floats(c, "logits", RV), *dlogp = floats(c, "dlogp", R), *lse = floats(c, "lse", R);
        float *buf = copy_floats(logits, RV);
        int *targets = ints(c, "targets", R);
        char call[640];
        snprintf(call, sizeof call, "logprob_backward(R = %d rows, V = %d tokens) [%s]", R, V, note(c));
        calling("%s", call);
        logprob_backward(buf, dlogp, lse, targets, R, V);
        LogitsShape s = {V, targets};
        double *expected = doubles(c, "dlogits", RV), *got = to_double(buf, RV);
        // the buffer held the logits and is replaced by their gradient
        check_tensor(call, "dlogits", expected, got, logits, 0, RV, name_logit, &s, GRAD_RTOL, GRAD_ATOL(expected, RV));
        free(logits); free(dlogp); free(lse); free(buf); free(targets); free(expected); free(got);
    }
}

static const struct { const char *name; void (*check)(cJSON *cases); } EXERCISES[] = {
    {"layernorm_backward", check_layernorm_backward}, {"matmul_backward", check_matmul_backward},
    {"attention_backward", check_attention_backward}, {"logprob_backward", check_logprob_backward},
    {"margin", check_margin}, {"loss_repo", check_loss_repo}, {"loss_simpo", check_loss_simpo}, {"loss_dpo", check_loss_dpo},
    {"adamw", check_adamw}, {"gamma_schedule", check_gamma_schedule},
};
#define NUM_EXERCISES ((int)(sizeof EXERCISES / sizeof *EXERCISES))

int main(int argc, char **argv) {
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-a")) show_all = 1;
        else if (!strcmp(argv[i], "--list")) { for (int j = 0; j < NUM_EXERCISES; j++) printf("%s\n", EXERCISES[j].name); return 0; }
        else name = argv[i];
    }
    if (!name || !*name) die("check-exercise: give NAME=X (make exercises lists them)");
    int which = -1;
    for (int j = 0; j < NUM_EXERCISES; j++) if (!strcmp(EXERCISES[j].name, name)) which = j;
    if (which < 0) die("check-exercise: unknown exercise \"%s\" (make exercises lists them)", name);
    // the expected values sit beside this program: tests/exercises/expected/
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", argv[0]);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else strcpy(dir, ".");
    cJSON *cases = load_cases(dir, name);
    signal(SIGSEGV, on_fatal); signal(SIGBUS, on_fatal); signal(SIGFPE, on_fatal); signal(SIGALRM, on_fatal);
    alarm(60);
    EXERCISES[which].check(cases);
    if (n_fail > SHOWN && !show_all) printf("... %d more failures not shown (all of them: tests/exercises/check %s -a)\n", n_fail - SHOWN, name);
    if (n_fail) printf("%s: %d of %d checks wrong (docs/exercises/%s.md)\n", name, n_fail, n_pass + n_fail, name);
    else printf("PASS %s: all %d checks right, on %d inputs\n", name, n_pass, cJSON_GetArraySize(cases));
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
