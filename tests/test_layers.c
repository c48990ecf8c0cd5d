// Finite-difference checks of every layer's backward and of every loss's gradient,
// plus the paper's Lemma (SimPO's normalized gradient tends to RePO's as beta grows).
// Each layer check compares the directional derivative <grad, v> from backward with
// (f(x + eps v) - f(x - eps v)) / (2 eps), where f = sum(out * w) for random w, v.
#define REPO_NO_MAIN
#include "../repo.c"

static int n_pass = 0, n_fail = 0;
static const char *only = NULL; // ./tests/test_layers NAME: only the checks whose name contains NAME
static void report(int ok, const char *name, const char *fmt, double a, double b) {
    if (only && !strstr(name, only)) return;
    printf("%s %s: ", ok ? "PASS" : "FAIL", name);
    printf(fmt, a, b);
    printf("\n");
    if (ok) n_pass++; else n_fail++;
}

static uint64_t seed = 12345;
static float frand(void) { // uniform in [-1, 1)
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((seed >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}
static float *rand_buf(size_t n, float scale) {
    float *p = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}
static float *zeros(size_t n) { return xcalloc(n, sizeof(float)); }

// A layer under test: `run` computes the forward into out; `back` runs backward with dout.
typedef struct {
    const char *name;
    int n_inputs;
    float *inputs[4];       // tensors we perturb
    float *grads[4];        // their gradients (filled by back)
    size_t sizes[4];
    const char *input_names[4];
    float *out, *w;         // output and random weights of f
    size_t out_size;
    void (*run)(void *ctx);
    void (*back)(void *ctx); // dout = w, grads zeroed before
    void *ctx;
} LayerCheck;

static double objective(LayerCheck *c) {
    c->run(c->ctx);
    double f = 0;
    for (size_t i = 0; i < c->out_size; i++) f += (double)c->out[i] * c->w[i];
    return f;
}

static void check_layer(LayerCheck *c, float eps, double tol) {
    for (int k = 0; k < c->n_inputs; k++) memset(c->grads[k], 0, c->sizes[k] * sizeof(float));
    c->run(c->ctx);
    c->back(c->ctx);
    for (int k = 0; k < c->n_inputs; k++) {
        float *x = c->inputs[k], *v = rand_buf(c->sizes[k], 1.0f), *x0 = xmalloc(c->sizes[k] * sizeof(float));
        memcpy(x0, x, c->sizes[k] * sizeof(float));
        double analytic = 0;
        for (size_t i = 0; i < c->sizes[k]; i++) analytic += (double)c->grads[k][i] * v[i];
        for (size_t i = 0; i < c->sizes[k]; i++) x[i] = x0[i] + eps * v[i];
        double fp = objective(c);
        for (size_t i = 0; i < c->sizes[k]; i++) x[i] = x0[i] - eps * v[i];
        double fm = objective(c);
        memcpy(x, x0, c->sizes[k] * sizeof(float));
        double numeric = (fp - fm) / (2 * eps);
        double rel = fabs(analytic - numeric) / (fabs(numeric) + 1e-6);
        char name[128];
        snprintf(name, sizeof name, "%s d/d%s", c->name, c->input_names[k]);
        report(rel < tol && fabs(numeric) > 1e-6, name, "backward %.6g vs finite difference %.6g", analytic, numeric);
        free(v); free(x0);
    }
}

// ---- the layers
enum { B = 2, T = 5, C = 12, NH = 4, NKV = 2, HD = 3, OC = 7, V = 11 };

typedef struct { float *out, *inp, *w, *b, *mean, *rstd; } LnCtx;
static void ln_run(void *p) { LnCtx *c = p; layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, B * T, C, 1e-5f); }
static LayerCheck *current;
static void ln_back(void *p) {
    LnCtx *c = p;
    layernorm_backward(current->grads[0], current->grads[1], current->grads[2], current->w, c->inp, c->w, c->mean, c->rstd, B * T, C);
}

typedef struct { float *out, *inp, *w, *b; } MmCtx;
static void mm_run(void *p) { MmCtx *c = p; matmul_forward(c->out, c->inp, c->w, c->b, B * T, C, OC); }
static void mm_back(void *p) {
    MmCtx *c = p;
    matmul_backward(current->grads[0], current->grads[1], current->grads[2], current->w, c->inp, c->w, B * T, C, OC);
}

typedef struct { float *out, *qkv, *lse; int nkv; } AttCtx;
static void att_run(void *p) { AttCtx *c = p; attention_forward(c->out, c->lse, c->qkv, B, T, NH, c->nkv, HD); }
static void att_back(void *p) { AttCtx *c = p; attention_backward(current->grads[0], current->w, c->qkv, c->out, c->lse, B, T, NH, c->nkv, HD); }
// the reference attention, which keeps every probability
typedef struct { float *out, *qkv, *att; int nkv; } AttRefCtx;
static void attref_run(void *p) { AttRefCtx *c = p; attention_forward_reference(c->out, c->att, c->qkv, B, T, NH, c->nkv, HD); }
static void attref_back(void *p) { AttRefCtx *c = p; attention_backward_reference(current->grads[0], current->w, c->qkv, c->att, B, T, NH, c->nkv, HD); }

typedef struct { float *out, *inp; } GeluCtx;
static void gelu_run(void *p) { GeluCtx *c = p; gelu_forward(c->out, c->inp, B * T * C); }
static void gelu_back(void *p) { GeluCtx *c = p; gelu_backward(current->grads[0], c->inp, current->w, B * T * C); }

static int *positions(void) { // row b T + t sits at position t
    int *pos = xmalloc(B * T * sizeof(int));
    for (int i = 0; i < B * T; i++) pos[i] = i % T;
    return pos;
}
typedef struct { float *out, *wte, *wpe; int *tokens; } EncCtx;
static void enc_run(void *p) { EncCtx *c = p; encoder_forward(c->out, c->tokens, positions(), c->wte, c->wpe, B * T, C); }
static void enc_back(void *p) { EncCtx *c = p; encoder_backward(current->grads[0], current->grads[1], current->w, c->tokens, positions(), B * T, C); }

// logprob: the logits buffer is overwritten by backward, so forward works on a copy
typedef struct { float *logp, *lse, *logits, *work; int *targets; } LpCtx;
static void lp_run(void *p) {
    LpCtx *c = p;
    memcpy(c->work, c->logits, B * T * V * sizeof(float));
    logprob_forward(c->logp, c->lse, c->work, c->targets, B * T, V);
}
static void lp_back(void *p) {
    LpCtx *c = p;
    logprob_backward(c->work, current->w, c->lse, c->targets, B * T, V);
    for (int i = 0; i < B * T * V; i++) current->grads[0][i] += c->work[i];
}

// Llama's layers
typedef struct { float *out, *inp, *w, *rstd; } RmsCtx;
static void rms_run(void *p) { RmsCtx *c = p; rmsnorm_forward(c->out, c->rstd, c->inp, c->w, B * T, C, 1e-5f); }
static void rms_back(void *p) {
    RmsCtx *c = p;
    rmsnorm_backward(current->grads[0], current->grads[1], current->w, c->inp, c->w, c->rstd, B * T, C);
}

// RoPE on qkv rows of heads of RHD (q and k heads rotated, v passed through); it works in place,
// so forward rotates a copy and backward rotates dout into the (zeroed) gradient
enum { RHD = 4, RQKV = (NH + 2 * NKV) * RHD };
typedef struct { float *out, *inp, *cos_t, *sin_t; } RopeCtx;
static void rope_run(void *p) {
    RopeCtx *c = p;
    memcpy(c->out, c->inp, B * T * RQKV * sizeof(float));
    rope_forward(c->out, positions(), c->cos_t, c->sin_t, B * T, NH + NKV, RHD, RQKV);
}
static void rope_back(void *p) {
    RopeCtx *c = p;
    for (int i = 0; i < B * T * RQKV; i++) current->grads[0][i] += current->w[i];
    rope_backward(current->grads[0], positions(), c->cos_t, c->sin_t, B * T, NH + NKV, RHD, RQKV);
}

typedef struct { float *out, *inp; } SwiCtx; // inp rows [gate (C) | up (C)]
static void swi_run(void *p) { SwiCtx *c = p; swiglu_forward(c->out, c->inp, B * T, C); }
static void swi_back(void *p) { SwiCtx *c = p; swiglu_backward(current->grads[0], c->inp, current->w, B * T, C); }

static void run_check(LayerCheck *c, float eps, double tol) {
    if (only && !strstr(c->name, only)) return;
    current = c;
    check_layer(c, eps, tol);
}

// ---- the tuned kernels against their plain references, on random inputs of many shapes
static double max_rel_diff(const float *a, const float *b, size_t n) { // max |a - b| / max |b|
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) { d = fmax(d, fabs((double)a[i] - b[i])); m = fmax(m, fabs((double)b[i])); }
    return d / m;
}

static void kernel_checks(void) {
    // fp32 sums of up to ~300 terms in another order: a few ulps of the largest output
    const double tol = 1e-5;
    int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {64, 96, 257}, {7, 8, 50}, {37, 65, 31}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int n = shapes[si][0], c = shapes[si][1], oc = shapes[si][2];
        float *inp = rand_buf((size_t)n * c, 1), *w = rand_buf((size_t)oc * c, 1), *b = rand_buf(oc, 1);
        float *out = zeros((size_t)n * oc), *ref = zeros((size_t)n * oc), *dout = rand_buf((size_t)n * oc, 1);
        for (int r = 0; r < n; r += 3) memset(dout + (size_t)r * oc, 0, oc * sizeof(float)); // skipped rows (filtered pairs)
        char name[96];
        matmul_forward(out, inp, w, b, n, c, oc);
        matmul_forward_reference(ref, inp, w, b, n, c, oc);
        snprintf(name, sizeof name, "matmul_forward = reference, N=%d C=%d OC=%d", n, c, oc);
        double d = max_rel_diff(out, ref, (size_t)n * oc);
        report(d < tol, name, "max relative difference %.3g (tolerance %.1g)", d, tol);
        float *g[3] = {rand_buf((size_t)n * c, 1), rand_buf((size_t)oc * c, 1), rand_buf(oc, 1)}; // they accumulate
        float *gr[3] = {xmalloc((size_t)n * c * 4), xmalloc((size_t)oc * c * 4), xmalloc(oc * 4)};
        memcpy(gr[0], g[0], (size_t)n * c * 4); memcpy(gr[1], g[1], (size_t)oc * c * 4); memcpy(gr[2], g[2], oc * 4);
        matmul_backward(g[0], g[1], g[2], dout, inp, w, n, c, oc);
        matmul_backward_reference(gr[0], gr[1], gr[2], dout, inp, w, n, c, oc);
        const char *what[3] = {"dinp", "dweight", "dbias"};
        size_t sizes[3] = {(size_t)n * c, (size_t)oc * c, (size_t)oc};
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "matmul_backward %s = reference, N=%d C=%d OC=%d", what[k], n, c, oc);
            d = max_rel_diff(g[k], gr[k], sizes[k]);
            report(d < tol, name, "max relative difference %.3g (tolerance %.1g)", d, tol);
        }
    }
    // the attention that keeps one log-sum-exp per row against the one that keeps every probability
    int att_shapes[][4] = {{1, 1, 1, 1}, {2, 3, 4, 2}, {3, 17, 4, 1}, {2, 40, 6, 3}, {1, 9, 4, 4}}; // B, T, NH, NKV
    for (size_t si = 0; si < sizeof att_shapes / sizeof *att_shapes; si++) {
        int b = att_shapes[si][0], t = att_shapes[si][1], nh = att_shapes[si][2], nkv = att_shapes[si][3], hd = 8;
        size_t qkv_n = (size_t)b * t * (nh + 2 * nkv) * hd, y_n = (size_t)b * t * nh * hd;
        float *qkv = rand_buf(qkv_n, 2), *y = zeros(y_n), *yr = zeros(y_n), *lse = zeros((size_t)b * nh * t);
        float *att = zeros((size_t)b * nh * t * t), *dy = rand_buf(y_n, 1), *dq = zeros(qkv_n), *dqr = zeros(qkv_n);
        memset(dy, 0, (size_t)t * nh * hd * sizeof(float)); // sequence 0's pair filtered: no gradient
        attention_forward(y, lse, qkv, b, t, nh, nkv, hd);
        attention_forward_reference(yr, att, qkv, b, t, nh, nkv, hd);
        attention_backward(dq, dy, qkv, y, lse, b, t, nh, nkv, hd);
        attention_backward_reference(dqr, dy, qkv, att, b, t, nh, nkv, hd);
        char name[96];
        snprintf(name, sizeof name, "attention_forward = reference, B=%d T=%d NH=%d NKV=%d", b, t, nh, nkv);
        double d = max_rel_diff(y, yr, y_n);
        report(d < tol, name, "max relative difference %.3g (tolerance %.1g)", d, tol);
        snprintf(name, sizeof name, "attention_backward = reference, B=%d T=%d NH=%d NKV=%d", b, t, nh, nkv);
        d = max_rel_diff(dq, dqr, qkv_n);
        report(d < 1e-4, name, "max relative difference %.3g (tolerance %.1g)", d, 1e-4);
    }
}

static void layer_checks(void) {
    const double tol = 2e-2; // float32 central differences with eps ~1e-2: a wrong formula is off by O(1)
    {
        LnCtx c = {zeros(B * T * C), rand_buf(B * T * C, 2), rand_buf(C, 1), rand_buf(C, 1), zeros(B * T), zeros(B * T)};
        LayerCheck lc = {"layernorm", 3, {c.inp, c.w, c.b}, {zeros(B * T * C), zeros(C), zeros(C)}, {B * T * C, C, C},
                         {"inp", "weight", "bias"}, c.out, rand_buf(B * T * C, 1), B * T * C, ln_run, ln_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    {
        MmCtx c = {zeros(B * T * OC), rand_buf(B * T * C, 1), rand_buf(OC * C, 1), rand_buf(OC, 1)};
        LayerCheck lc = {"matmul", 3, {c.inp, c.w, c.b}, {zeros(B * T * C), zeros(OC * C), zeros(OC)}, {B * T * C, OC * C, OC},
                         {"inp", "weight", "bias"}, c.out, rand_buf(B * T * OC, 1), B * T * OC, mm_run, mm_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    for (int nkv = NH; nkv >= 1; nkv /= 2) { // multi-head, grouped (2 queries per kv head), multi-query
        int qkv = (NH + 2 * nkv) * HD;
        uint64_t seed_before = seed;
        AttCtx c = {zeros(B * T * NH * HD), rand_buf(B * T * qkv, 1.5f), zeros(B * NH * T), nkv};
        char *name = xmalloc(64);
        snprintf(name, 64, "attention NH=%d NKV=%d", NH, nkv);
        LayerCheck lc = {name, 1, {c.qkv}, {zeros(B * T * qkv)}, {(size_t)B * T * qkv}, {"qkv"},
                         c.out, rand_buf(B * T * NH * HD, 1), B * T * NH * HD, att_run, att_back, &c};
        run_check(&lc, 1e-2f, tol);
        seed = seed_before; // the reference on the same inputs
        AttRefCtx r = {zeros(B * T * NH * HD), rand_buf(B * T * qkv, 1.5f), zeros(B * NH * T * T), nkv};
        char *rname = xmalloc(64);
        snprintf(rname, 64, "attention (reference) NH=%d NKV=%d", NH, nkv);
        LayerCheck rc = {rname, 1, {r.qkv}, {zeros(B * T * qkv)}, {(size_t)B * T * qkv}, {"qkv"},
                         r.out, rand_buf(B * T * NH * HD, 1), B * T * NH * HD, attref_run, attref_back, &r};
        run_check(&rc, 1e-2f, tol);
    }
    {
        GeluCtx c = {zeros(B * T * C), rand_buf(B * T * C, 3)};
        LayerCheck lc = {"gelu", 1, {c.inp}, {zeros(B * T * C)}, {B * T * C}, {"inp"},
                         c.out, rand_buf(B * T * C, 1), B * T * C, gelu_run, gelu_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    {
        int *tokens = xmalloc(B * T * sizeof(int));
        for (int i = 0; i < B * T; i++) tokens[i] = (i * 7) % V; // repeated tokens: accumulation must add up
        EncCtx c = {zeros(B * T * C), rand_buf(V * C, 1), rand_buf(T * C, 1), tokens};
        LayerCheck lc = {"encoder", 2, {c.wte, c.wpe}, {zeros(V * C), zeros(T * C)}, {V * C, T * C}, {"wte", "wpe"},
                         c.out, rand_buf(B * T * C, 1), B * T * C, enc_run, enc_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    {
        int *targets = xmalloc(B * T * sizeof(int));
        for (int i = 0; i < B * T; i++) targets[i] = (i * 5 + 3) % V;
        LpCtx c = {zeros(B * T), zeros(B * T), rand_buf(B * T * V, 3), zeros(B * T * V), targets};
        LayerCheck lc = {"logprob (fused log-softmax + gather)", 1, {c.logits}, {zeros(B * T * V)}, {B * T * V}, {"logits"},
                         c.logp, rand_buf(B * T, 1), B * T, lp_run, lp_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    uint64_t seed_before_llama = seed; // the checks after these keep the random inputs they had before them
    {
        RmsCtx c = {zeros(B * T * C), rand_buf(B * T * C, 2), rand_buf(C, 1), zeros(B * T)};
        LayerCheck lc = {"rmsnorm", 2, {c.inp, c.w}, {zeros(B * T * C), zeros(C)}, {B * T * C, C},
                         {"inp", "weight"}, c.out, rand_buf(B * T * C, 1), B * T * C, rms_run, rms_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    {
        RopeCtx c = {zeros(B * T * RQKV), rand_buf(B * T * RQKV, 1), zeros(T * RHD / 2), zeros(T * RHD / 2)};
        rope_tables(c.cos_t, c.sin_t, T, RHD, 3.0f); // a small base: every pair turns by a visible angle
        LayerCheck lc = {"rope", 1, {c.inp}, {zeros(B * T * RQKV)}, {B * T * RQKV}, {"qkv"},
                         c.out, rand_buf(B * T * RQKV, 1), B * T * RQKV, rope_run, rope_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    {
        SwiCtx c = {zeros(B * T * C), rand_buf(B * T * 2 * C, 3)};
        LayerCheck lc = {"swiglu", 1, {c.inp}, {zeros(B * T * 2 * C)}, {B * T * 2 * C}, {"gate|up"},
                         c.out, rand_buf(B * T * C, 1), B * T * C, swi_run, swi_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    {
        int *tokens = xmalloc(B * T * sizeof(int));
        for (int i = 0; i < B * T; i++) tokens[i] = (i * 7) % V;
        EncCtx c = {zeros(B * T * C), rand_buf(V * C, 1), NULL, tokens}; // Llama: no position embedding
        LayerCheck lc = {"encoder without wpe", 1, {c.wte}, {zeros(V * C)}, {V * C}, {"wte"},
                         c.out, rand_buf(B * T * C, 1), B * T * C, enc_run, enc_back, &c};
        run_check(&lc, 1e-2f, tol);
    }
    seed = seed_before_llama;
}

// ---- the losses: derivatives by finite differences in double, on both sides of every kink
static void loss_checks(void) {
    for (int li = 0; li < NUM_LOSSES; li++) {
        const LossKind *L = &LOSSES[li];
        LossParams h = L->defaults;
        if (h.beta == 0) h.beta = 1.7;
        h.gamma = 0.3; h.lambda = h.lambda ? h.lambda : 0.2; h.delta = 0.8; h.alpha = 0.05;
        int worst_ok = 1, n_points = 0;
        double worst = 0;
        for (int trial = 0; trial < 40; trial++) {
            PairStats p = {-(1 + 20 * (frand() + 1)), -(1 + 20 * (frand() + 1)), 1 + (trial * 7) % 13, 1 + (trial * 5) % 11,
                           -(1 + 20 * (frand() + 1)), -(1 + 20 * (frand() + 1))};
            // every other trial sits just beside a kink: M = gamma (+/-) 1e-4, h_c - h_r = gamma, or the SLiC hinge
            if (trial % 2) {
                double side = trial % 4 == 1 ? 1e-4 : -1e-4;
                if (!strcmp(L->name, "slic")) p.s_c = p.s_r + h.delta + side;
                else if (!strcmp(L->name, "dpo-repo")) p.s_c = p.ref_c + (p.s_r - p.ref_r) + h.gamma + side;
                else if (!strcmp(L->name, "dpo-repo++")) p.s_c = p.ref_c + (p.s_r - p.ref_r) + h.gamma / h.beta + side;
                else p.s_c = p.n_c * (p.s_r / p.n_r + h.gamma + side);
            }
            PairLoss g = L->fn(p, h);
            double e = 1e-6;
            PairStats a = p, b = p;
            a.s_c += e; b.s_c -= e;
            double num_c = (L->fn(a, h).loss - L->fn(b, h).loss) / (2 * e);
            a = p; b = p; a.s_r += e; b.s_r -= e;
            double num_r = (L->fn(a, h).loss - L->fn(b, h).loss) / (2 * e);
            double err = fabs(num_c - g.d_sc) + fabs(num_r - g.d_sr);
            double scale = fabs(num_c) + fabs(num_r) + 1e-3;
            if (err / scale > worst) worst = err / scale;
            worst_ok &= err / scale < 1e-5;
            n_points++;
        }
        char name[96];
        snprintf(name, sizeof name, "loss %s gradient vs finite differences (%d points)", L->name, n_points);
        report(worst_ok, name, "worst relative error %.2g (tolerance %.0e)", worst, 1e-5);
    }
    // ORPO at a chosen response the model is certain of (l_c rounds to 0): finite, and the limit
    // of the gradient as l_c -> 0 from below
    {
        const LossKind *orpo = find_loss("orpo");
        LossParams h = orpo->defaults;
        PairLoss at0 = orpo->fn((PairStats){0.0, -2.0, 1, 1, 0, 0}, h);
        PairLoss near = orpo->fn((PairStats){-1e-9, -2.0, 1, 1, 0, 0}, h);
        report(is_finite(at0.loss) && is_finite(at0.d_sc) && fabs(at0.d_sc - near.d_sc) < 1e-6,
               "orpo: l_c = 0 gives a finite loss and gradient", "d_sc %.9g (limit %.9g)", at0.d_sc, near.d_sc);
    }
    // RePO's filter: at and beyond M = gamma nothing flows back
    const LossKind *repo = find_loss("repo");
    LossParams h = {0.5, 0, 0, 0, 0};
    PairStats at = {-1.0, -3.0, 4, 4, 0, 0}; // M = -0.25 + 0.75 = 0.5 exactly in binary
    PairLoss g = repo->fn(at, h);
    report(g.loss == 0 && g.d_sc == 0 && g.d_sr == 0, "repo: a pair with M == gamma is filtered", "loss %g, d_sc %g", g.loss, g.d_sc);
}

// ---- Lemma: as beta grows, SimPO's gradient over a batch, normalized, tends to RePO's
static void lemma_check(void) {
    enum { N = 64 };
    PairStats p[N];
    for (int i = 0; i < N; i++) {
        p[i] = (PairStats){-(1 + 10 * (frand() + 1)), -(1 + 10 * (frand() + 1)), 1 + i % 9, 1 + i % 7, 0, 0};
        double M = p[i].s_c / p[i].n_c - p[i].s_r / p[i].n_r;
        if (fabs(M - 0.5) < 0.05) p[i].s_c += 0.2 * p[i].n_c; // keep pairs off the kink, as the Lemma requires
    }
    const LossKind *simpo = find_loss("simpo"), *repo = find_loss("repo");
    double prev = 1e9;
    int monotone = 1;
    double dist = 0;
    for (double beta = 1; beta <= 1e4; beta *= 10) {
        double gs[2 * N], gr[2 * N], ns = 0, nr = 0;
        for (int i = 0; i < N; i++) {
            PairLoss a = simpo->fn(p[i], (LossParams){0.5, beta, 0, 0, 0}), b = repo->fn(p[i], (LossParams){0.5, 0, 0, 0, 0});
            gs[2 * i] = a.d_sc; gs[2 * i + 1] = a.d_sr; gr[2 * i] = b.d_sc; gr[2 * i + 1] = b.d_sr;
        }
        for (int i = 0; i < 2 * N; i++) { ns += gs[i] * gs[i]; nr += gr[i] * gr[i]; }
        dist = 0;
        for (int i = 0; i < 2 * N; i++) { double d = gs[i] / sqrt(ns) - gr[i] / sqrt(nr); dist += d * d; }
        dist = sqrt(dist);
        if (!only || strstr("lemma", only)) printf("  lemma: beta %-6g |simpo_grad/|simpo_grad| - repo_grad/|repo_grad|| = %.3e\n", beta, dist);
        monotone &= dist <= prev || dist < 1e-12; // once converged, rounding (1e-16) may wobble
        prev = dist;
    }
    report(monotone && dist < 1e-6, "lemma: normalized SimPO gradient -> RePO gradient as beta grows",
           "distance at beta 1e4 %.3g, monotone %g", dist, (double)monotone);
}

// ---- NaN detection survives -ffast-math
static void nan_check(void) {
    volatile double zero = 0;
    double nan = zero / zero, inf = 1 / zero;
    report(!is_finite(nan) && !is_finite(inf) && is_finite(1.0), "is_finite under -ffast-math", "nan->%g inf->%g",
           (double)is_finite(nan), (double)is_finite(inf));
}

int main(int argc, char **argv) {
    if (argc > 1) only = argv[1];
    layer_checks();
    kernel_checks();
    loss_checks();
    lemma_check();
    nan_check();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
