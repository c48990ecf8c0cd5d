// arith: the default task. Prompts "a+b=" as byte tokens, answers the decimal sum then EOS (256).
// A verifier scores any response, so preference pairs can be built from the policy's own samples.
//
//   arith prompts --n N --seed S [--split S]     prompts (JSONL prompt_ids) from the train split, or
//                                                with --split test N distinct held-out problems
//   arith sft --n N --seed S --error-rate E      SFT data (train split): the right sum, except that when
//                                                the ones digits carry, the carry is dropped with probability E
//   arith score --samples FILE                   accuracy of `repo sample` output (first sample: greedy),
//                                                also split by carry / no carry, and how often a
//                                                no-carry answer is 10 too large (the over-trained habit)
//   arith pairs --samples FILE --out FILE        best vs worst sample per prompt; ties dropped, counted
//
// Operands are drawn uniformly from 10..99: sums have 2 or 3 digits and about half need a carry.
// There are only 8100 problems, so a fixed tenth of them (test_problem) is held out: SFT data and
// training prompts never contain them, and the held-out prompts contain nothing else.
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../io.h"

#define EOS 256
#define MAX_TOKENS 64

static uint64_t rng_state;
static uint32_t rnd(void) { // xorshift64*
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}
static int operand(void) { return 10 + (int)(rnd() % 90); }
static int test_problem(int a, int b) { return (a * 7919 + b * 104729) % 97 < 10; }

static void print_ids(FILE *f, const char *text, int eos) {
    fputc('[', f);
    for (const char *c = text; *c; c++) fprintf(f, c == text ? "%d" : ",%d", (unsigned char)*c);
    if (eos) fprintf(f, ",%d", EOS);
    fputc(']', f);
}

// the learner's bad habit: forgetting the carry out of the ones place (57+68 -> 115)
static int carry_dropped(int a, int b) { return a + b - 10; }
static int has_carry(int a, int b) { return a % 10 + b % 10 >= 10; }

// The verifier. 1 for the exact sum followed by EOS; otherwise half the fraction of the answer's
// digits that are right (aligned from the ones place), 0 for anything that is not digits then EOS.
static double score(int a, int b, const int *resp, int n) {
    char want[16], got[MAX_TOKENS + 1];
    snprintf(want, sizeof want, "%d", a + b);
    int k = 0;
    while (k < n && resp[k] >= '0' && resp[k] <= '9' && k < MAX_TOKENS) { got[k] = (char)resp[k]; k++; }
    got[k] = 0;
    if (k == 0 || k >= n || resp[k] != EOS) return 0;
    if (!strcmp(got, want)) return 1;
    int lw = (int)strlen(want), right = 0;
    for (int i = 1; i <= lw && i <= k; i++) right += want[lw - i] == got[k - i];
    return 0.5 * right / (lw > k ? lw : k);
}

// reads "a+b=" back from prompt ids
static int parse_prompt(cJSON *ids, int *a, int *b) {
    char text[64];
    int n = 0;
    for (cJSON *v = ids ? ids->child : NULL; v && n < 63; v = v->next) text[n++] = (char)v->valueint;
    text[n] = 0;
    return sscanf(text, "%d+%d=", a, b) == 2;
}

static int *ids_of(cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int *ids = xmalloc((*n + 1) * sizeof(int)), i = 0;
    for (cJSON *v = arr->child; v; v = v->next) ids[i++] = v->valueint;
    return ids;
}

// for each line of `repo sample` output: the prompt and its samples
typedef void (*SampleFn)(cJSON *line, int a, int b, void *ctx);
typedef struct { const char *path; SampleFn fn; void *ctx; } LineCtx;
static void sample_line(void *obj, int line_no, void *ctx) {
    LineCtx *lc = ctx;
    cJSON *line = obj;
    int a, b;
    if (!parse_prompt(cJSON_GetObjectItem(line, "prompt_ids"), &a, &b) || !cJSON_IsArray(cJSON_GetObjectItem(line, "samples")))
        die("%s:%d: expected {\"prompt_ids\": a+b=, \"samples\": [...]}", lc->path, line_no);
    lc->fn(line, a, b, lc->ctx);
}
static void for_each_line(const char *path, SampleFn fn, void *ctx) {
    LineCtx lc = {path, fn, ctx};
    jsonl_each(path, sample_line, &lc);
}

typedef struct {
    int n_prompts, greedy_right, n_samples, sample_right;
    double greedy_score, sample_score;
    int carry_prompts, carry_right, plain_right, plain_plus10; // greedy answers split by whether the ones carry
} Tally;
static int answer_value(const int *resp, int n) { // the decimal number of digits-then-EOS, or -1
    int v = 0, k = 0;
    for (; k < n && k < 9 && resp[k] >= '0' && resp[k] <= '9'; k++) v = 10 * v + resp[k] - '0';
    return k > 0 && k < n && resp[k] == EOS ? v : -1;
}
static void tally_line(cJSON *line, int a, int b, void *ctx) {
    Tally *t = ctx;
    int j = 0;
    for (cJSON *s = cJSON_GetObjectItem(line, "samples")->child; s; s = s->next, j++) {
        int n, *ids = ids_of(s, &n);
        double sc = score(a, b, ids, n);
        if (j == 0) {
            t->greedy_score += sc; t->greedy_right += sc == 1;
            if (has_carry(a, b)) { t->carry_prompts++; t->carry_right += sc == 1; }
            else { t->plain_right += sc == 1; t->plain_plus10 += answer_value(ids, n) == a + b + 10; }
        }
        t->sample_score += sc; t->sample_right += sc == 1; t->n_samples++;
        free(ids);
    }
    t->n_prompts++;
}

typedef struct { FILE *out; int pairs, ties, prompts; } PairCtx;
static void pair_line(cJSON *line, int a, int b, void *ctx) {
    PairCtx *pc = ctx;
    cJSON *best = NULL, *worst = NULL;
    double best_sc = -1, worst_sc = 2;
    for (cJSON *s = cJSON_GetObjectItem(line, "samples")->child; s; s = s->next) {
        int n, *ids = ids_of(s, &n);
        double sc = score(a, b, ids, n);
        if (sc > best_sc) { best_sc = sc; best = s; }
        if (sc < worst_sc) { worst_sc = sc; worst = s; }
        free(ids);
    }
    pc->prompts++;
    if (!best || best_sc == worst_sc || cJSON_GetArraySize(worst) == 0) { pc->ties++; return; }
    char *p = cJSON_PrintUnformatted(cJSON_GetObjectItem(line, "prompt_ids"));
    char *c = cJSON_PrintUnformatted(best), *r = cJSON_PrintUnformatted(worst);
    fprintf(pc->out, "{\"prompt_ids\": %s, \"chosen_ids\": %s, \"rejected_ids\": %s, \"chosen_score\": %g, \"rejected_score\": %g}\n",
            p, c, r, best_sc, worst_sc);
    free(p); free(c); free(r);
    pc->pairs++;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: arith prompts|sft|score|pairs [options] (see data/arith/arith.c)");
    const char *cmd = argv[1], *samples = NULL, *out = NULL;
    int n = 1000, seed = 1;
    double error_rate = 0.5;
    int test_split = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--error-rate")) error_rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples")) samples = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--split")) {
            if (strcmp(argv[i + 1], "train") && strcmp(argv[i + 1], "test")) die("arith: --split train|test");
            test_split = !strcmp(argv[i + 1], "test");
        }
        else die("arith: unknown option %s", argv[i]);
    }
    rng_state = 0x9E3779B97F4A7C15ULL * (uint64_t)(seed + 1);
    if (!strcmp(cmd, "prompts") || !strcmp(cmd, "sft")) {
        if (test_split && strcmp(cmd, "prompts")) die("arith sft: SFT data comes from the train split only");
        static char seen[100][100];
        int available = 0;
        for (int a = 10; a < 100; a++) for (int b = 10; b < 100; b++) available += test_problem(a, b);
        if (test_split && n > available) die("arith prompts --split test: only %d held-out problems", available);
        for (int k = 0; k < n; k++) {
            int a, b;
            do { a = operand(); b = operand(); } // held-out prompts are distinct problems
            while (test_problem(a, b) != test_split || (test_split && seen[a][b]));
            seen[a][b] = 1;
            char prompt[32], answer[16];
            snprintf(prompt, sizeof prompt, "%d+%d=", a, b);
            int wrong = !strcmp(cmd, "sft") && has_carry(a, b) && rnd() < error_rate * 4294967296.0;
            snprintf(answer, sizeof answer, "%d", wrong ? carry_dropped(a, b) : a + b);
            printf("{\"prompt_ids\": ");
            print_ids(stdout, prompt, 0);
            if (!strcmp(cmd, "sft")) {
                // SFT reads only the chosen response; the rejected one is a one-token placeholder
                printf(", \"chosen_ids\": ");
                print_ids(stdout, answer, 1);
                printf(", \"rejected_ids\": [%d]", EOS);
            }
            printf("}\n");
        }
        return 0;
    }
    if (!samples) die("arith %s: --samples FILE is required", cmd);
    if (!strcmp(cmd, "score")) {
        Tally t = {0};
        for_each_line(samples, tally_line, &t);
        int plain = t.n_prompts - t.carry_prompts;
        printf("prompts %d | greedy (first sample) exact %.4f score %.4f | all %d samples exact %.4f score %.4f"
               " | greedy exact with carry %.4f (%d), without %.4f (%d), without but 10 too many %.4f\n",
               t.n_prompts, (double)t.greedy_right / t.n_prompts, t.greedy_score / t.n_prompts,
               t.n_samples, (double)t.sample_right / t.n_samples, t.sample_score / t.n_samples,
               (double)t.carry_right / (t.carry_prompts ? t.carry_prompts : 1), t.carry_prompts,
               (double)t.plain_right / (plain ? plain : 1), plain, (double)t.plain_plus10 / (plain ? plain : 1));
        return 0;
    }
    if (!strcmp(cmd, "pairs")) {
        if (!out) die("arith pairs: --out FILE is required");
        AtomicFile af = atomic_open(out);
        PairCtx pc = {af.f, 0, 0, 0};
        for_each_line(samples, pair_line, &pc);
        atomic_close(&af);
        printf("%d prompts -> %d pairs; %d dropped because every sample scored the same\n", pc.prompts, pc.pairs, pc.ties);
        return 0;
    }
    die("arith: unknown command %s", cmd);
}
