// safetensors: st_open on arbitrary bytes; what it accepts must read back in bounds (ASan checks),
// with every F32/F16/BF16 tensor converted (NaN refused naming the tensor)
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.safetensors", data, size);
    fuzz_begin();
    if (setjmp(repo_die_jump)) { fuzz_check_message(repo_die_msg, path); fuzz_end(1); return 0; }
    SafeTensors st;
    st_open(&st, path);
    for (int i = 0; i < st.n_tensors; i++) {
        StTensor *t = &st.tensors[i];
        if (st_find(&st, t->name) != t) abort(); // names are unique after st_open
        if (t->end > st.size - st.data_start || t->end < t->begin) abort();
        if (t->dtype == ST_OTHER) continue;
        float *x = xmalloc((size_t)st_numel(t) * sizeof(float));
        st_read_f32(&st, t, x);
        free(x);
    }
    st_close(&st);
    fuzz_end(0);
    return 0;
}
