#!/bin/sh
# Writes preference pairs for two-digit addition as byte-level token ids (id = byte, 256 = EOS):
#   prompt "23+48=", chosen "71<EOS>", rejected a plausible wrong answer (carry dropped,
#   off by one or ten, digits swapped). Deterministic: make_pairs.sh N SEED > FILE
n=${1:-1000}; seed=${2:-1}
awk -v n="$n" -v seed="$seed" '
function ids(s,   out, i) { out = ""; for (i = 1; i <= length(s); i++) out = out (i > 1 ? "," : "") ord[substr(s, i, 1)]; return out }
BEGIN {
    srand(seed);
    for (i = 32; i < 127; i++) ord[sprintf("%c", i)] = i;
    for (k = 0; k < n; k++) {
        a = int(rand() * 90) + 10; b = int(rand() * 90) + 10; c = a + b;
        kind = int(rand() * 4);
        if (kind == 0) w = (a % 10 + b % 10 >= 10) ? c - 10 : c + 10;      # carry dropped / added
        else if (kind == 1) w = c + (rand() < 0.5 ? -1 : 1);                  # off by one
        else if (kind == 2) w = c + (rand() < 0.5 ? -10 : 10);                # off by ten
        else { s = c ""; w = substr(s, length(s), 1) substr(s, 2, length(s) - 2) substr(s, 1, 1) + 0; if (w == c) w = c + 1 }
        printf "{\"prompt_ids\": [%s], \"chosen_ids\": [%s,256], \"rejected_ids\": [%s,256]}\n", ids(a "+" b "="), ids(c ""), ids(w "")
    }
}'
