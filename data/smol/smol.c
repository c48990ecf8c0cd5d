// smol: the task of `make smol`. SmolLM2-135M-Instruct is asked everyday questions with a word
// limit, "What does a panda eat? Answer in at most 4 words.", and a verifier checks the limit
// (IFEval's "at most N words" instruction). The model tends to answer in a full sentence or more,
// so it follows the limit on about a quarter of unseen questions; the rest is what preference
// pairs from its own samples can teach.
//
//   smol prompts --split train|test [--n N] --seed S   N distinct prompts (JSONL "prompt" text) of a split,
//                                                    shuffled by the seed (without --n: all of them)
//   smol score --samples FILE --model M              how often `repo sample` output follows the limit
//                                                    (the first sample: greedy, when sampled at T 0)
//   smol pairs --samples FILE --model M --out FILE   per prompt, a sample that follows the limit (chosen)
//                                                    against one that does not (rejected); prompts whose
//                                                    samples all do, or all do not, are dropped and counted
//
// M is the model (a .gguf or a directory) whose tokenizer decodes the ids; `--tokenizer PATH` too.
// A problem is a question with a limit. The questions are templates x fillers; a fixed fifth of the
// questions (by a hash of their text) is held out: no training prompt contains them under any limit,
// and the held-out prompts contain nothing else.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../data.h"
#include "../../tokenizer.h"

static const char *animals[] = {"cat", "dog", "cow", "duck", "sheep", "lion", "horse", "owl", "frog", "bee", "panda",
                                "rabbit", "shark", "koala", "goat", "pig", "wolf", "bear", "mouse", "eagle", "camel",
                                "penguin", "dolphin", "fox", "zebra", "tiger", "parrot", "snake", NULL};
static const char *countries[] = {"France", "Japan", "Italy", "Spain", "Germany", "Egypt", "Canada", "Brazil", "China",
                                  "India", "Russia", "Mexico", "Kenya", "Peru", "Greece", "Norway", "Sweden", "Ireland",
                                  "Portugal", "Turkey", "Australia", "Argentina", "Poland", "Chile", NULL};
static const char *things[] = {"a banana", "grass", "the sky", "snow", "a tomato", "coal", "an orange", "milk",
                               "a lemon", "the sun", "a strawberry", "chocolate", "an apple", "the ocean", "a carrot",
                               "a cloud", "blood", "a lime", "a pumpkin", "an egg", "the moon", "sand", NULL};
static const char *adjectives[] = {"hot", "big", "fast", "happy", "light", "old", "up", "wet", "tall", "hard", "early",
                                   "loud", "rich", "full", "strong", "clean", "open", "young", "thick", "sweet", "near",
                                   "bright", "quiet", "heavy", NULL};
static const char *activities[] = {"sleep", "cook", "read books", "travel", "exercise", "sing", "laugh", "save money",
                                   "drink coffee", "plant trees", "go to school", "keep pets", "play games", "dance",
                                   "write letters", "learn languages", "wear hats", "take photos", "go fishing",
                                   "paint houses", NULL};
static const char *objects[] = {"a hammer", "a spoon", "a key", "a ladder", "a pencil", "a towel", "a clock", "a map",
                                "a rope", "a candle", "a broom", "a bucket", "a needle", "a shovel", "an umbrella",
                                "a mirror", "a wallet", "a kettle", "a blanket", "a compass", "a saw", "a magnet", NULL};
static const char *materials_of[] = {"a window", "a shoe", "a book", "a coin", "a chair", "a bottle", "a tire", "a shirt",
                                     "a brick", "a pillow", "a cup", "a fork", "a bridge", "a boat", "a basket", "a tent",
                                     "a guitar", "a kite", NULL};
static const char *tasks[] = {"boil an egg", "tie a shoe", "make tea", "plant a seed", "wash your hands", "fly a kite",
                              "brush your teeth", "make toast", "ride a bike", "fold a shirt", "light a candle",
                              "bake bread", "catch a fish", "build a fire", "send a letter", "cross a street", NULL};
static const char *categories[] = {"fruit", "color", "vegetable", "sport", "flower", "bird", "tree", "planet", "metal",
                                   "musical instrument", "drink", "vehicle", "language", "month", "dessert", "tool",
                                   "insect", "game", "mountain", "river", NULL};
static const char *events[] = {"ice melts", "water boils", "it rains", "the sun sets", "a seed grows", "milk goes bad",
                               "a balloon pops", "bread is toasted", "iron rusts", "leaves fall", "a candle burns",
                               "snow falls", "a volcano erupts", "the wind blows", NULL};

typedef struct { const char *form; const char **fillers; } Template;
static const Template templates[] = {
    {"What is the capital of %s?", countries},   {"What color is %s?", things},
    {"What sound does a %s make?", animals},     {"What is the opposite of %s?", adjectives},
    {"What does a %s eat?", animals},            {"Where does a %s live?", animals},
    {"Why do people %s?", activities},           {"What is %s used for?", objects},
    {"What is %s made of?", materials_of},       {"How do you %s?", tasks},
    {"Name a %s.", categories},                  {"What is your favorite %s?", categories},
    {"What happens when %s?", events},           {"Describe %s.", things},
    {"What is a %s like?", animals},             {"Which languages are spoken in %s?", countries},
};
enum { N_TEMPLATES = sizeof templates / sizeof templates[0], MIN_LIMIT = 4, MAX_LIMIT = 8 };
static const char *INSTRUCTION = " Answer in at most %d words.";

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
static int held_out(const char *question) { return fnv1a(question) % 5 == 0; }

static uint64_t rng_state;
static uint32_t rnd(void) { // xorshift64*
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

// every prompt of a split (each question under each limit), shuffled by seed; prints the first n
static void print_prompts(int test_split, int n, int seed) {
    int cap = 0, count = 0;
    for (int t = 0; t < N_TEMPLATES; t++) for (int f = 0; templates[t].fillers[f]; f++) cap += MAX_LIMIT - MIN_LIMIT + 1;
    char **all = malloc(cap * sizeof(char *));
    if (!all) die("out of memory");
    for (int t = 0; t < N_TEMPLATES; t++)
        for (int f = 0; templates[t].fillers[f]; f++) {
            char question[160];
            snprintf(question, sizeof question, templates[t].form, templates[t].fillers[f]);
            if (held_out(question) != test_split) continue;
            for (int limit = MIN_LIMIT; limit <= MAX_LIMIT; limit++) {
                all[count] = malloc(sizeof question + 40);
                if (!all[count]) die("out of memory");
                snprintf(all[count], sizeof question + 40, "%s", question);
                snprintf(all[count] + strlen(question), 40, INSTRUCTION, limit);
                count++;
            }
        }
    if (n < 0) n = count;
    if (n > count) die("smol prompts: the %s split has only %d prompts", test_split ? "test" : "train", count);
    rng_state = 0x9E3779B97F4A7C15ULL * (uint64_t)(seed + 1);
    for (int i = count - 1; i > 0; i--) { // Fisher-Yates
        int j = (int)(rnd() % (uint32_t)(i + 1));
        char *s = all[i]; all[i] = all[j]; all[j] = s;
    }
    for (int i = 0; i < n; i++) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "prompt", all[i]);
        char *text = cJSON_PrintUnformatted(line);
        printf("%s\n", text);
        free(text); cJSON_Delete(line);
    }
    for (int i = 0; i < count; i++) free(all[i]);
    free(all);
}

// ----------------------------------------------------------------------------
// the verifier

typedef struct { Tokenizer *tok; int end_of_turn; const char *path; } Verifier;

static int *ids_of(cJSON *arr, int *n, const char *path, int line_no) {
    *n = cJSON_GetArraySize(arr);
    int *ids = xmalloc((*n + 1) * sizeof(int)), i = 0;
    for (cJSON *v = arr->child; v; v = v->next) {
        if (!cJSON_IsNumber(v)) die("%s:%d: token ids must be numbers", path, line_no);
        ids[i++] = v->valueint;
    }
    return ids;
}

// words: runs of non-space characters holding at least one letter or digit ("--" and "**" are not words)
static int count_words(const char *s) {
    int words = 0;
    while (*s) {
        while (*s && isspace((unsigned char)*s)) s++;
        int alnum = 0;
        while (*s && !isspace((unsigned char)*s)) alnum |= isalnum((unsigned char)*s++) != 0;
        words += alnum;
    }
    return words;
}

// 1 if the answer ended (the template's end of turn as its last token) within the sample and has
// 1..limit words, else 0. *words gets the word count of the answer (complete or not).
static int follows(const Verifier *v, const int *ids, int n, int limit, int *words) {
    int complete = n > 0 && ids[n - 1] == v->end_of_turn;
    char *text = tokenizer_decode(v->tok, ids, complete ? n - 1 : n, NULL);
    if (!text) die("out of memory");
    *words = count_words(text);
    free(text);
    return complete && *words >= 1 && *words <= limit;
}

// the limit N, read back from the decoded prompt's "Answer in at most N words."
static int prompt_limit(const Verifier *v, cJSON *prompt_ids, int line_no, char **prompt_text) {
    if (!cJSON_IsArray(prompt_ids)) die("%s:%d: expected {\"prompt_ids\": [...], \"samples\": [...]}", v->path, line_no);
    int n, *ids = ids_of(prompt_ids, &n, v->path, line_no);
    char *text = tokenizer_decode(v->tok, ids, n, NULL);
    free(ids);
    if (!text) die("out of memory");
    const char *at = strstr(text, "Answer in at most ");
    int limit;
    if (!at || sscanf(at, "Answer in at most %d words.", &limit) != 1 || limit < 1)
        die("%s:%d: the prompt has no \"Answer in at most N words.\"", v->path, line_no);
    if (prompt_text) *prompt_text = text;
    else free(text);
    return limit;
}

typedef struct {
    Verifier v;
    int prompts, greedy_ok, samples, samples_ok, complete;
    long words;
    int by_limit[MAX_LIMIT + 1][2]; // greedy followed, prompts
    AtomicFile *out;
    int pairs, ties;
} Ctx;

static void each_line(void *obj, int line_no, void *vctx) {
    Ctx *c = vctx;
    cJSON *line = obj, *samples = cJSON_GetObjectItem(line, "samples");
    if (!cJSON_IsArray(samples) || cJSON_GetArraySize(samples) == 0)
        die("%s:%d: expected {\"prompt_ids\": [...], \"samples\": [...]}", c->v.path, line_no);
    char *prompt_text = NULL;
    int limit = prompt_limit(&c->v, cJSON_GetObjectItem(line, "prompt_ids"), line_no, c->out ? &prompt_text : NULL);
    cJSON *chosen = NULL, *rejected = NULL;
    int j = 0;
    for (cJSON *s = samples->child; s; s = s->next, j++) {
        if (!cJSON_IsArray(s)) die("%s:%d: each sample must be a list of token ids", c->v.path, line_no);
        int n, words, *ids = ids_of(s, &n, c->v.path, line_no);
        int ok = follows(&c->v, ids, n, limit, &words);
        if (j == 0) {
            c->greedy_ok += ok;
            if (limit <= MAX_LIMIT) { c->by_limit[limit][0] += ok; c->by_limit[limit][1]++; }
        }
        c->samples++; c->samples_ok += ok;
        int complete = n > 0 && ids[n - 1] == c->v.end_of_turn;
        c->complete += complete;
        if (complete) c->words += words;
        if (ok && !chosen) chosen = s;
        if (!ok && !rejected) rejected = s;
        free(ids);
    }
    c->prompts++;
    if (!c->out) return;
    if (!chosen || !rejected) { c->ties++; free(prompt_text); return; }
    // one pair: the first sample that follows the limit against the first that does not
    cJSON *pair = cJSON_CreateObject();
    cJSON_AddNumberToObject(pair, "id", line_no);
    cJSON_AddItemToObject(pair, "prompt_ids", cJSON_Duplicate(cJSON_GetObjectItem(line, "prompt_ids"), 1));
    cJSON_AddItemToObject(pair, "chosen_ids", cJSON_Duplicate(chosen, 1));
    cJSON_AddItemToObject(pair, "rejected_ids", cJSON_Duplicate(rejected, 1));
    cJSON_AddNumberToObject(pair, "limit", limit);
    cJSON_AddStringToObject(pair, "prompt_text", prompt_text);
    cJSON *sides[2] = {chosen, rejected};
    const char *keys[2] = {"chosen_text", "rejected_text"};
    for (int k = 0; k < 2; k++) {
        int n, *ids = ids_of(sides[k], &n, c->v.path, line_no);
        char *text = tokenizer_decode(c->v.tok, ids, n, NULL);
        if (!text) die("out of memory");
        cJSON_AddStringToObject(pair, keys[k], text);
        free(text); free(ids);
    }
    char *json = cJSON_PrintUnformatted(pair);
    fprintf(c->out->f, "%s\n", json);
    free(json); cJSON_Delete(pair); free(prompt_text);
    c->pairs++;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: smol prompts|score|pairs [options] (see data/smol/smol.c)");
    const char *cmd = argv[1], *samples = NULL, *out = NULL;
    DataOptions dopt = {0};
    int n = -1, seed = 1, test_split = -1;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) die("smol: %s needs a value", argv[i]);
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "--n")) { n = atoi(v); if (n < 1) die("smol: --n must be at least 1"); }
        else if (!strcmp(f, "--seed")) seed = atoi(v);
        else if (!strcmp(f, "--samples")) samples = v;
        else if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--model")) dopt.model = v;
        else if (!strcmp(f, "--tokenizer")) dopt.tokenizer = v;
        else if (!strcmp(f, "--split")) {
            if (strcmp(v, "train") && strcmp(v, "test")) die("smol: --split train|test");
            test_split = !strcmp(v, "test");
        } else die("smol: unknown option %s", f);
    }
    if (!strcmp(cmd, "prompts")) {
        if (test_split < 0) die("smol prompts: --split train|test is required");
        print_prompts(test_split, n, seed);
        return 0;
    }
    if (strcmp(cmd, "score") && strcmp(cmd, "pairs")) die("smol: unknown command %s", cmd);
    if (!samples) die("smol %s: --samples FILE is required", cmd);
    if (!dopt.model && !dopt.tokenizer) die("smol %s: --model M (or --tokenizer PATH) is required to decode the ids", cmd);
    Ctx c = {0};
    c.v.path = samples;
    c.v.tok = data_tokenizer(&dopt);
    c.v.end_of_turn = tokenizer_token_id(c.v.tok, "<|im_end|>");
    if (c.v.end_of_turn < 0) die("smol: the tokenizer has no <|im_end|> (the task uses the chatml template)");
    AtomicFile af;
    if (!strcmp(cmd, "pairs")) {
        if (!out) die("smol pairs: --out FILE is required");
        af = atomic_open(out);
        c.out = &af;
    }
    jsonl_each(samples, each_line, &c);
    if (c.prompts == 0) die("%s: no samples", samples);
    if (c.out) {
        atomic_close(&af);
        printf("%d prompts -> %d pairs; %d dropped because every sample followed the limit or none did\n",
               c.prompts, c.pairs, c.ties);
    } else {
        printf("prompts %d | greedy (first sample) accuracy %.4f | all %d samples accuracy %.4f | complete %.4f, mean words %.2f\n",
               c.prompts, (double)c.greedy_ok / c.prompts, c.samples, (double)c.samples_ok / c.samples,
               (double)c.complete / c.samples, c.complete ? (double)c.words / c.complete : 0.0);
        printf("first sample by limit:");
        for (int l = 1; l <= MAX_LIMIT; l++)
            if (c.by_limit[l][1]) printf(" %d words %.3f (%d)", l, (double)c.by_limit[l][0] / c.by_limit[l][1], c.by_limit[l][1]);
        printf("\n");
    }
    tokenizer_free(c.v.tok);
    return 0;
}
