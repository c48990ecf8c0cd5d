// formats_driver: what repo's readers make of a file, for tests/test_formats.py, which asks the
// reference libraries (safetensors, tokenizers, Python's json) the same question.
//
//   formats_driver st FILE                 safetensors: one JSON line per tensor (float values read)
//   formats_driver config FILE KEY...      config.json: KEY as an int (int:KEY), number (num:KEY), string
//   formats_driver index DIR               sharded model: the tensors ts_open finds, with their values
//   formats_driver pairs FILE VOCAB [TOK]  JSONL / REPOPAIR pairs: one JSON line [prompt, chosen, rejected]
//   formats_driver tok PATH TEXT...        tokenizer.json / vocab.json: the ids of each TEXT, one line each
//
// A refusal is repo's one error line on stderr and exit status 1.
#include "../io.h"
#include "../data.h"
#include "../tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_tensor(SafeTensors *st, StTensor *t) {
    printf("{\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": [", t->name, t->dtype_name);
    for (int d = 0; d < t->ndim; d++) printf(d ? ", %lld" : "%lld", (long long)t->shape[d]);
    printf("]");
    if (t->dtype != ST_OTHER) {
        int64_t n = st_numel(t);
        float *x = xmalloc((size_t)n * sizeof(float));
        st_read_f32(st, t, x);
        printf(", \"values\": [");
        for (int64_t i = 0; i < n; i++) printf(i ? ", %.9g" : "%.9g", x[i]);
        printf("]");
        free(x);
    }
    printf("}\n");
}

static void print_ids(const int *ids, int n) {
    printf("[");
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    printf("]");
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see formats_driver.c\n"); return 2; }
    const char *cmd = argv[1], *path = argv[2];
    if (!strcmp(cmd, "st")) {
        SafeTensors st;
        st_open(&st, path);
        for (int i = 0; i < st.n_tensors; i++) print_tensor(&st, &st.tensors[i]);
        st_close(&st);
    } else if (!strcmp(cmd, "config")) {
        JsonConfig *c = config_load(path);
        printf("{");
        for (int i = 3; i < argc; i++) {
            const char *k = argv[i];
            printf(i > 3 ? ", " : "");
            if (!strncmp(k, "int:", 4)) printf("\"%s\": %ld", k + 4, config_int(c, k + 4, 1, 0));
            else if (!strncmp(k, "num:", 4)) printf("\"%s\": %.17g", k + 4, config_num(c, k + 4, 1, 0));
            else printf("\"%s\": \"%s\"", k, config_str(c, k, 1, NULL));
        }
        printf("}\n");
        config_free(c);
    } else if (!strcmp(cmd, "index")) {
        TensorSource ts;
        ts_open(&ts, path);
        for (int f = 0; f < ts.n_files; f++)
            for (int i = 0; i < ts.files[f].n_tensors; i++) print_tensor(&ts.files[f], &ts.files[f].tensors[i]);
        ts_close(&ts);
    } else if (!strcmp(cmd, "pairs") && argc >= 4) {
        DataOptions o = {0};
        o.tokenizer = argc > 4 ? argv[4] : NULL;
        PairSet ps;
        data_load_pairs(&ps, path, atoi(argv[3]), &o);
        for (int i = 0; i < ps.n_pairs; i++) {
            Pair *p = &ps.pairs[i];
            printf("[");
            print_ids(p->prompt, p->n_prompt); printf(", ");
            print_ids(p->chosen, p->n_chosen); printf(", ");
            print_ids(p->rejected, p->n_rejected); printf("]\n");
        }
        pairs_free(&ps);
    } else if (!strcmp(cmd, "tok")) {
        char err[1024];
        Tokenizer *t = tokenizer_load(path, err, sizeof err);
        if (!t) die("%s", err);
        for (int i = 3; i < argc; i++) {
            int *ids = NULL, n = tokenizer_encode(t, argv[i], strlen(argv[i]), &ids);
            print_ids(ids, n);
            printf("\n");
            free(ids);
        }
        tokenizer_free(t);
    } else {
        fprintf(stderr, "unknown command %s\n", cmd);
        return 2;
    }
    return 0;
}
