# Shared by the CPU benchmarks (sourced, not run): the two model shapes, random pairs, medians.

# bench_model gpt2|smollm2 DIR: a randomly initialized GPT-2 124M or SmolLM2-135M shape in DIR/model
bench_model() {
    if [ "$1" = gpt2 ]; then
        printf '{"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}\n' > "$2/config.json"
    elif [ "$1" = smollm2 ]; then
        printf '{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 100000, "hidden_act": "silu", "tie_word_embeddings": true}\n' > "$2/config.json"
    else
        echo "unknown shape '$1' (gpt2 or smollm2)" >&2; return 2
    fi
    rm -rf "$2/model"
    ./repo init --config "$2/config.json" --out "$2/model" --seed 1 > /dev/null
}

# bench_pairs DIR N P R FILE: N pairs of random token ids, prompts of P, responses of R tokens
bench_pairs() {
    local V; V=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$1/config.json")
    awk -v n="$2" -v P="$3" -v R="$4" -v V="$V" 'function ids(k,   s, i) { s = ""; for (i = 0; i < k; i++) s = s (i ? "," : "") int(rand() * V); return "[" s "]" }
        BEGIN { srand(1); for (j = 0; j < n; j++) printf "{\"prompt_ids\": %s, \"chosen_ids\": %s, \"rejected_ids\": %s}\n", ids(P), ids(R), ids(R) }' > "$5"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# the tokens/s of a --log's steps after the first (the first also pays for page faults): their median
# (a run of one step: that step's)
log_tokens_per_s() {
    local v; v=$(sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p' "$1")
    if [ "$(echo "$v" | wc -l)" -gt 1 ]; then echo "$v" | tail -n +2 | median; else echo "$v"; fi
}

machine_line() {
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || (grep -qw avx2 /proc/cpuinfo && echo 'AVX2+FMA' || echo portable)); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# OpenBLAS (and so PyTorch's Debian build) picks its best kernels only without core-type overrides
blas() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
