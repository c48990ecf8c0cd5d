// smol: the task of `make smol`. SmolLM2-135M-Instruct is asked short factual questions with a
// word limit, "What is the capital of Kenya? Answer in at most 3 words.", and a verifier checks
// both: the answer must hold an accepted answer ("nairobi") and have at most that many words.
// The model knows many of the facts but answers in a full sentence ("The capital of Kenya is
// Nairobi.", 6 words) or rambles, so it keeps to the limit with a right answer on about one
// held-out question in six; that is what preference pairs from its own samples can teach.
// Checking the answer too matters: with the limit alone, the model learned to answer one word,
// any word ("What is the capital of Germany?" -> "Bunker.").
//
//   smol prompts --split train|test [--n N] --seed S   N distinct prompts (JSONL "prompt" text) of a
//                                                    split, shuffled by the seed (without --n: all)
//   smol score --samples FILE --model M              how often `repo sample` output is right within
//                                                    the limit (the first sample: greedy at T 0)
//   smol pairs --samples FILE --model M --out FILE   per prompt, a sample that is right within the
//                                                    limit (chosen) against one that is not (rejected);
//                                                    prompts whose samples all agree are dropped, counted
//
// M is the model (a .gguf or a directory) whose tokenizer decodes the ids; `--tokenizer PATH` too.
// A problem is a question with a limit (3 to 7 words). A fixed fifth of the questions (by a hash of
// their text) is held out: no training prompt contains them under any limit, and the held-out
// prompts contain nothing else.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../data.h"
#include "../../tokenizer.h"

// The facts: a question form and, per subject, the accepted answers ("|" between them), written
// as normalized() writes text: lower case, letters and digits, one space apart ("Bogota" has no
// accent; "bras lia" is what normalized("Bras\u00edlia") gives).
typedef struct { const char *subject, *answers; } Fact;
static const Fact capitals[] = {
    {"France", "paris"}, {"Japan", "tokyo"}, {"Italy", "rome"}, {"Spain", "madrid"}, {"Germany", "berlin"},
    {"Egypt", "cairo"}, {"Canada", "ottawa"}, {"Russia", "moscow"}, {"China", "beijing|peking"},
    {"India", "new delhi|delhi"}, {"England", "london"}, {"Greece", "athens"}, {"Norway", "oslo"},
    {"Sweden", "stockholm"}, {"Ireland", "dublin"}, {"Portugal", "lisbon"}, {"Poland", "warsaw"},
    {"Austria", "vienna"}, {"Hungary", "budapest"}, {"the Czech Republic", "prague"}, {"Denmark", "copenhagen"},
    {"Finland", "helsinki"}, {"the Netherlands", "amsterdam"}, {"Belgium", "brussels"}, {"Switzerland", "bern|berne"},
    {"Turkey", "ankara"}, {"Mexico", "mexico city"}, {"Argentina", "buenos aires"}, {"Peru", "lima"},
    {"Chile", "santiago"}, {"Colombia", "bogota|bogot"}, {"Kenya", "nairobi"}, {"Thailand", "bangkok"},
    {"Vietnam", "hanoi"}, {"South Korea", "seoul"}, {"Indonesia", "jakarta"}, {"the Philippines", "manila"},
    {"Australia", "canberra"}, {"Cuba", "havana"}, {"Iran", "tehran"}, {"Iraq", "baghdad"}, {"Nigeria", "abuja"},
    {"Ethiopia", "addis ababa"}, {"Morocco", "rabat"}, {"Brazil", "brasilia|bras lia"},
    {"the United States", "washington"}, {"Ukraine", "kyiv|kiev"}, {"Romania", "bucharest"},
    {"Pakistan", "islamabad"}, {"Saudi Arabia", "riyadh"}, {"Lebanon", "beirut"}, {"Syria", "damascus"},
    {"Nepal", "kathmandu"}, {"Bangladesh", "dhaka|dacca"}, {"Malaysia", "kuala lumpur"},
    {"New Zealand", "wellington"}, {"Iceland", "reykjavik|reykjav k"}, {"Scotland", "edinburgh"},
    {"Venezuela", "caracas"}, {"Afghanistan", "kabul"}, {"Bulgaria", "sofia"}, {"Serbia", "belgrade"},
    {"Croatia", "zagreb"}, {"Jamaica", "kingston"}, {"Ghana", "accra"}, {"Uganda", "kampala"}, {"Qatar", "doha"},
    {"Taiwan", "taipei"}, {"Mongolia", "ulaanbaatar|ulan bator"}, {"Estonia", "tallinn"}, {"Latvia", "riga"},
    {"Lithuania", "vilnius"}, {NULL, NULL}};
static const Fact opposites[] = {
    {"hot", "cold"}, {"big", "small|little|tiny"}, {"fast", "slow"}, {"happy", "sad|unhappy"}, {"old", "young|new"},
    {"up", "down"}, {"wet", "dry"}, {"tall", "short"}, {"early", "late"}, {"rich", "poor"}, {"full", "empty"},
    {"strong", "weak"}, {"clean", "dirty"}, {"open", "closed|shut"}, {"thick", "thin"}, {"near", "far"},
    {"heavy", "light"}, {"day", "night"}, {"black", "white"}, {"left", "right"}, {"good", "bad|evil"},
    {"high", "low"}, {"long", "short"}, {"in", "out"}, {"on", "off"}, {"yes", "no"}, {"win", "lose"},
    {"push", "pull"}, {"true", "false"}, {"love", "hate"}, {"alive", "dead"}, {"inside", "outside"},
    {"above", "below|beneath|under"}, {"first", "last"}, {"give", "take|receive"}, {"laugh", "cry"},
    {"buy", "sell"}, {"north", "south"}, {"east", "west"}, {"summer", "winter"}, {"boy", "girl"},
    {"man", "woman"}, {"king", "queen"}, {"brother", "sister"}, {"question", "answer"}, {"friend", "enemy|foe"},
    {"war", "peace"}, {"top", "bottom"}, {"front", "back|rear"}, {"wide", "narrow"}, {"deep", "shallow"},
    {"smooth", "rough"}, {"cheap", "expensive|costly"}, {"safe", "dangerous|unsafe"}, {"start", "finish|end|stop"},
    {"light", "dark|heavy"}, {"hard", "soft|easy"}, {"loud", "quiet|soft|silent"}, {"sweet", "sour|bitter|salty"},
    {"bright", "dark|dim"}, {"cold", "hot|warm"}, {"small", "big|large"}, {"sad", "happy|glad"}, {"dark", "light|bright"},
    {"empty", "full"}, {NULL, NULL}};
static const Fact colors[] = {
    {"grass", "green"}, {"the sky", "blue"}, {"snow", "white"}, {"a banana", "yellow"}, {"a tomato", "red"},
    {"coal", "black"}, {"milk", "white"}, {"a lemon", "yellow"}, {"a strawberry", "red"}, {"chocolate", "brown"},
    {"a carrot", "orange"}, {"blood", "red"}, {"a lime", "green"}, {"a pumpkin", "orange"}, {"a crow", "black"},
    {"a flamingo", "pink"}, {"an emerald", "green"}, {"a ruby", "red"}, {"a sapphire", "blue"}, {"a cherry", "red"},
    {"a polar bear", "white"}, {"an eggplant", "purple"}, {"a plum", "purple"}, {"a fire truck", "red"},
    {"a school bus", "yellow"}, {"the ocean", "blue"}, {"an elephant", "gray|grey"}, {"salt", "white"},
    {"ash", "gray|grey"}, {"a raven", "black"}, {"a canary", "yellow"}, {"a frog", "green"}, {"a leaf", "green"},
    {"charcoal", "black"}, {"gold", "gold|golden|yellow"}, {"a cucumber", "green"}, {"a sunflower", "yellow"},
    {"an orange", "orange"}, {NULL, NULL}};
static const Fact sounds[] = {
    {"dog", "bark|barks|woof|barking"}, {"cat", "meow|meows|purr|purrs|miaow"}, {"cow", "moo|moos"},
    {"duck", "quack|quacks"}, {"sheep", "baa|bleat|bleats"}, {"lion", "roar|roars"},
    {"horse", "neigh|neighs|whinny"}, {"owl", "hoot|hoots"}, {"pig", "oink|oinks|grunt|grunts"},
    {"frog", "croak|croaks|ribbit"}, {"snake", "hiss|hisses"}, {"bee", "buzz|buzzes|hum"}, {"wolf", "howl|howls"},
    {"mouse", "squeak|squeaks"}, {"rooster", "cock a doodle doo|crow|crows"}, {"donkey", "bray|brays|hee haw"},
    {"chicken", "cluck|clucks"}, {"goat", "baa|bleat|bleats|maa"}, {"elephant", "trumpet|trumpets"},
    {"crow", "caw|caws"}, {"turkey", "gobble|gobbles"}, {"dove", "coo|coos"}, {"bear", "growl|growls|roar"},
    {NULL, NULL}};
static const Fact counts[] = {
    {"legs does a spider have", "8|eight"}, {"days are in a week", "7|seven"}, {"months are in a year", "12|twelve"},
    {"hours are in a day", "24|twenty four"}, {"minutes are in an hour", "60|sixty"},
    {"seconds are in a minute", "60|sixty"}, {"legs does a dog have", "4|four"}, {"wheels does a bicycle have", "2|two"},
    {"sides does a triangle have", "3|three"}, {"sides does a square have", "4|four"}, {"legs does a bird have", "2|two"},
    {"legs does an insect have", "6|six"}, {"days are in a year", "365"}, {"continents are there", "7|seven"},
    {"planets are in the solar system", "8|eight"}, {"players are on a soccer team", "11|eleven"},
    {"strings does a guitar have", "6|six"}, {"arms does an octopus have", "8|eight"}, {"eyes does a person have", "2|two"},
    {"fingers are on one hand", "5|five"}, {"letters are in the English alphabet", "26|twenty six"},
    {"colors are in a rainbow", "7|seven"}, {"wheels does a car have", "4|four"}, {"hearts does an octopus have", "3|three"},
    {"sides does a hexagon have", "6|six"}, {"sides does an octagon have", "8|eight"}, {"weeks are in a year", "52"},
    {"years are in a century", "100|hundred"}, {"legs does a horse have", "4|four"}, {"wheels does a tricycle have", "3|three"},
    {NULL, NULL}};
static const Fact babies[] = {
    {"dog", "puppy|pup|puppies|pups"}, {"cat", "kitten|kittens|kitty"}, {"cow", "calf|calves"}, {"sheep", "lamb|lambs"},
    {"horse", "foal|colt|filly"}, {"duck", "duckling|ducklings"}, {"frog", "tadpole|tadpoles|froglet"},
    {"bear", "cub|cubs"}, {"lion", "cub|cubs"}, {"goat", "kid|kids"}, {"pig", "piglet|piglets"},
    {"kangaroo", "joey|joeys"}, {"swan", "cygnet|cygnets"}, {"deer", "fawn|fawns"}, {"hen", "chick|chicks"},
    {"goose", "gosling|goslings"}, {"owl", "owlet|owlets"}, {"tiger", "cub|cubs"}, {"eagle", "eaglet|eaglets"},
    {"whale", "calf|calves"}, {"elephant", "calf|calves"}, {"butterfly", "caterpillar|larva"}, {NULL, NULL}};
static const Fact past_tenses[] = {
    {"go", "went"}, {"eat", "ate"}, {"see", "saw"}, {"run", "ran"}, {"swim", "swam"}, {"write", "wrote"},
    {"buy", "bought"}, {"think", "thought"}, {"bring", "brought"}, {"catch", "caught"}, {"teach", "taught"},
    {"drink", "drank"}, {"sing", "sang"}, {"speak", "spoke"}, {"take", "took"}, {"give", "gave"}, {"come", "came"},
    {"fly", "flew"}, {"drive", "drove"}, {"break", "broke"}, {"choose", "chose"}, {"forget", "forgot"},
    {"sleep", "slept"}, {"feel", "felt"}, {"keep", "kept"}, {"leave", "left"}, {"meet", "met"}, {"sit", "sat"},
    {"stand", "stood"}, {"win", "won"}, {"tell", "told"}, {"sell", "sold"}, {"find", "found"}, {"make", "made"},
    {"know", "knew"}, {"grow", "grew"}, {"throw", "threw"}, {"draw", "drew"}, {"fall", "fell"}, {"hold", "held"},
    {NULL, NULL}};
static const Fact plurals[] = {
    {"mouse", "mice"}, {"child", "children"}, {"foot", "feet"}, {"tooth", "teeth"}, {"man", "men"},
    {"woman", "women"}, {"goose", "geese"}, {"person", "people|persons"}, {"ox", "oxen"}, {"cactus", "cacti|cactuses"},
    {"knife", "knives"}, {"leaf", "leaves"}, {"wolf", "wolves"}, {"life", "lives"}, {"box", "boxes"},
    {"city", "cities"}, {"baby", "babies"}, {"bus", "buses|busses"}, {"potato", "potatoes"}, {"wife", "wives"},
    {NULL, NULL}};

typedef struct { const char *form; const Fact *facts; } Category;
static const Category categories[] = {
    {"What is the capital of %s?", capitals}, {"What is the opposite of %s?", opposites},
    {"What color is %s?", colors},            {"What sound does a %s make?", sounds},
    {"How many %s?", counts},                 {"What is a baby %s called?", babies},
    {"What is the past tense of %s?", past_tenses}, {"What is the plural of %s?", plurals},
};
enum { N_CATEGORIES = sizeof categories / sizeof categories[0], MIN_LIMIT = 3, MAX_LIMIT = 7, QUESTION_MAX = 160 };
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

// every prompt of a split (each question under each limit), shuffled by seed; prints the first n,
// each with its accepted answers (other keys than "prompt" are ignored by `repo sample`)
typedef struct { char text[QUESTION_MAX + 40]; const char *answers; } Problem;
static void print_prompts(int test_split, int n, int seed) {
    int cap = 0, count = 0;
    for (int c = 0; c < N_CATEGORIES; c++) for (int f = 0; categories[c].facts[f].subject; f++) cap += MAX_LIMIT - MIN_LIMIT + 1;
    Problem *all = xmalloc(cap * sizeof(Problem));
    for (int c = 0; c < N_CATEGORIES; c++)
        for (int f = 0; categories[c].facts[f].subject; f++) {
            char question[QUESTION_MAX];
            snprintf(question, sizeof question, categories[c].form, categories[c].facts[f].subject);
            if (held_out(question) != test_split) continue;
            for (int limit = MIN_LIMIT; limit <= MAX_LIMIT; limit++, count++) {
                int k = snprintf(all[count].text, sizeof all[count].text, "%s", question);
                snprintf(all[count].text + k, sizeof all[count].text - k, INSTRUCTION, limit);
                all[count].answers = categories[c].facts[f].answers;
            }
        }
    if (n < 0) n = count;
    if (n > count) die("smol prompts: the %s split has only %d prompts", test_split ? "test" : "train", count);
    rng_state = 0x9E3779B97F4A7C15ULL * (uint64_t)(seed + 1);
    for (int i = count - 1; i > 0; i--) { // Fisher-Yates
        int j = (int)(rnd() % (uint32_t)(i + 1));
        Problem t = all[i]; all[i] = all[j]; all[j] = t;
    }
    for (int i = 0; i < n; i++) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "prompt", all[i].text);
        cJSON_AddStringToObject(line, "answers", all[i].answers);
        char *text = cJSON_PrintUnformatted(line);
        printf("%s\n", text);
        free(text); cJSON_Delete(line);
    }
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

// for the pairs' text fields (JSON wants UTF-8): a sample may end inside a multi-byte character,
// so each byte that does not start a valid sequence becomes U+FFFD, as Hugging Face's decode does
static char *valid_utf8(const char *s) {
    size_t n = strlen(s), k = 0;
    char *out = xmalloc(3 * n + 1);
    for (size_t i = 0; i < n;) {
        const unsigned char *c = (const unsigned char *)s + i;
        int len = c[0] < 0x80 ? 1 : (c[0] >> 5) == 6 ? 2 : (c[0] >> 4) == 14 ? 3 : (c[0] >> 3) == 30 ? 4 : 0;
        for (int j = 1; j < len; j++) if (i + j >= n || (c[j] & 0xC0) != 0x80) len = 0;
        if (len == 2 && c[0] < 0xC2) len = 0;                                    // overlong
        if (len == 3 && ((c[0] == 0xE0 && c[1] < 0xA0) || (c[0] == 0xED && c[1] >= 0xA0))) len = 0; // overlong, surrogate
        if (len == 4 && ((c[0] == 0xF0 && c[1] < 0x90) || c[0] > 0xF4 || (c[0] == 0xF4 && c[1] >= 0x90))) len = 0;
        if (len) { memcpy(out + k, c, len); k += len; i += len; }
        else { memcpy(out + k, "\xEF\xBF\xBD", 3); k += 3; i++; }
    }
    out[k] = 0;
    return out;
}

// the words of a text, lower-cased, letters and digits only, one space apart: "Why do people
// sing?" -> "why do people sing"
static char *normalized(const char *s) {
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (isalnum((unsigned char)*s)) *o++ = (char)tolower((unsigned char)*s);
        else if (o > out && o[-1] != ' ') *o++ = ' ';
    }
    if (o > out && o[-1] == ' ') o--;
    *o = 0;
    return out;
}

// the fact a question asks for: its accepted answers, NULL if the question is not one of the bank's
static const char *answers_of(const char *question) {
    for (int c = 0; c < N_CATEGORIES; c++)
        for (int f = 0; categories[c].facts[f].subject; f++) {
            char q[QUESTION_MAX];
            snprintf(q, sizeof q, categories[c].form, categories[c].facts[f].subject);
            if (!strcmp(q, question)) return categories[c].facts[f].answers;
        }
    return NULL;
}

// what the verifier needs of a prompt, read back from its decoded text "...\n{question} Answer in
// at most {limit} words.": the limit and the question's accepted answers
typedef struct { int limit; const char *answers; char *text; } Prompt;
static Prompt parse_prompt(const Verifier *v, cJSON *prompt_ids, int line_no) {
    if (!cJSON_IsArray(prompt_ids)) die("%s:%d: expected {\"prompt_ids\": [...], \"samples\": [...]}", v->path, line_no);
    int n, *ids = ids_of(prompt_ids, &n, v->path, line_no);
    Prompt p;
    p.text = tokenizer_decode(v->tok, ids, n, NULL);
    free(ids);
    if (!p.text) die("out of memory");
    char *at = strstr(p.text, " Answer in at most ");
    if (!at || sscanf(at, " Answer in at most %d words.", &p.limit) != 1 || p.limit < 1)
        die("%s:%d: the prompt has no \"Answer in at most N words.\"", v->path, line_no);
    char *start = at;
    while (start > p.text && start[-1] != '\n') start--; // the question starts the user's line
    *at = 0;
    p.answers = answers_of(start);
    if (!p.answers) die("%s:%d: \"%s\" is not one of the task's questions (data/smol/smol.c)", v->path, line_no, start);
    *at = ' ';
    return p;
}

// does the normalized text hold one of the answers ("a|b c") as whole words?
static int has_answer(const char *text, const char *answers) {
    size_t n = strlen(text);
    char *padded = xmalloc(n + 3);
    snprintf(padded, n + 3, " %s ", text);
    int found = 0;
    for (const char *a = answers; *a && !found;) {
        size_t k = strcspn(a, "|");
        char want[QUESTION_MAX];
        snprintf(want, sizeof want, " %.*s ", (int)k, a);
        found = strstr(padded, want) != NULL;
        a += k + (a[k] == '|');
    }
    free(padded);
    return found;
}

// 1 if the answer ended (the template's end of turn as its last token) within the sample, has
// 1..limit words and holds an accepted answer; else 0. *words gets its word count.
static int follows(const Verifier *v, const Prompt *p, const int *ids, int n, int *words) {
    int complete = n > 0 && ids[n - 1] == v->end_of_turn;
    char *text = tokenizer_decode(v->tok, ids, complete ? n - 1 : n, NULL);
    if (!text) die("out of memory");
    *words = count_words(text);
    char *answer = normalized(text);
    int right = has_answer(answer, p->answers);
    free(answer); free(text);
    return complete && *words >= 1 && *words <= p->limit && right;
}

typedef struct {
    Verifier v;
    int prompts, greedy_ok, samples, samples_ok, complete;
    long words;
    int by_limit[MAX_LIMIT + 1][2]; // greedy followed, prompts
    AtomicFile *out;
    int pairs, ties;
} Ctx;

// one pair: the first sample that follows the limit against the first that does not; none when
// every sample agrees
static void write_pair(Ctx *c, cJSON *line, int line_no, const Prompt *p, cJSON *chosen, cJSON *rejected) {
    if (!chosen || !rejected) { c->ties++; return; }
    cJSON *pair = cJSON_CreateObject();
    cJSON_AddNumberToObject(pair, "id", line_no);
    cJSON_AddItemToObject(pair, "prompt_ids", cJSON_Duplicate(cJSON_GetObjectItem(line, "prompt_ids"), 1));
    cJSON_AddItemToObject(pair, "chosen_ids", cJSON_Duplicate(chosen, 1));
    cJSON_AddItemToObject(pair, "rejected_ids", cJSON_Duplicate(rejected, 1));
    cJSON_AddNumberToObject(pair, "limit", p->limit);
    cJSON_AddStringToObject(pair, "answers", p->answers);
    char *shown = valid_utf8(p->text);
    cJSON_AddStringToObject(pair, "prompt_text", shown);
    free(shown);
    cJSON *sides[2] = {chosen, rejected};
    const char *keys[2] = {"chosen_text", "rejected_text"};
    for (int k = 0; k < 2; k++) {
        int n, *ids = ids_of(sides[k], &n, c->v.path, line_no);
        char *text = tokenizer_decode(c->v.tok, ids, n, NULL);
        if (!text) die("out of memory");
        shown = valid_utf8(text);
        cJSON_AddStringToObject(pair, keys[k], shown);
        free(shown); free(text); free(ids);
    }
    char *json = cJSON_PrintUnformatted(pair);
    fprintf(c->out->f, "%s\n", json);
    free(json); cJSON_Delete(pair);
    c->pairs++;
}

static void each_line(void *obj, int line_no, void *vctx) {
    Ctx *c = vctx;
    cJSON *line = obj, *samples = cJSON_GetObjectItem(line, "samples");
    if (!cJSON_IsArray(samples) || cJSON_GetArraySize(samples) == 0)
        die("%s:%d: expected {\"prompt_ids\": [...], \"samples\": [...]}", c->v.path, line_no);
    Prompt p = parse_prompt(&c->v, cJSON_GetObjectItem(line, "prompt_ids"), line_no);
    int limit = p.limit;
    cJSON *chosen = NULL, *rejected = NULL;
    int j = 0;
    for (cJSON *s = samples->child; s; s = s->next, j++) {
        if (!cJSON_IsArray(s)) die("%s:%d: each sample must be a list of token ids", c->v.path, line_no);
        int n, words, *ids = ids_of(s, &n, c->v.path, line_no);
        int ok = follows(&c->v, &p, ids, n, &words);
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
    if (c->out) write_pair(c, line, line_no, &p, chosen, rejected);
    free(p.text);
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
