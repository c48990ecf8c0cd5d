// model.safetensors.index.json: ts_open over a fuzzed index and two fixed shards (a.safetensors holds
// x and y, b.safetensors holds y and z: naming both makes y a tensor in two shards)
#include "fuzz.h"

static void shard(const char *name, const char *t1, const char *t2) {
    char header[256];
    int n = snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"%s\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}", t1, t2);
    unsigned char buf[512] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, (size_t)n);
    fuzz_write(name, buf, 8 + (size_t)n + 12);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) { shard("a.safetensors", "x", "y"); shard("b.safetensors", "y", "z"); ready = 1; }
    const char *path = fuzz_write("model.safetensors.index.json", data, size);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    fuzz_begin();
    if (setjmp(repo_die_jump)) { fuzz_check_message(repo_die_msg, dir); fuzz_end(1); return 0; }
    TensorSource ts;
    ts_open(&ts, dir);
    static const char *names[] = {"x", "y", "z", "w"};
    for (int i = 0; i < 4; i++) {
        SafeTensors *f;
        StTensor *t = ts_find(&ts, names[i], &f);
        if (t) { float v[2]; st_read_f32(f, t, v); }
    }
    ts_close(&ts);
    fuzz_end(0);
    return 0;
}
