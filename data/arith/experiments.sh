#!/usr/bin/env bash
# make experiments: the paper's claims tested on the main job's policy and pairs, from the gentle
# training budget where every loss works to the one where most of them over-optimize.
#   1. a budget grid: learning rate (2e-5, 6e-5, 2e-4, cosine) x epochs (1, 3) for every loss below
#      (the second beta of DPO and IPO at 1 epoch only)
#   2. RePO's gamma sweep at four budgets (the inverted U), schedules against fixed gamma
#   3. held-out accuracy every SNAP steps of the 3-epoch runs at lr >= 6e-5 (when over-optimization sets in)
# Every run is repeated with 3 seeds (the seed orders the batches) and scored by the greedy answers
# to the 500 held-out problems. Runs are independent one-thread jobs, JOBS at a time; a finished run
# is kept and skipped, so an interrupted `make experiments` resumes. Writes out/experiments/
# (runs/, results.tsv, summary.tsv, summary.md) and the figures in docs/figures/.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=data/arith; E=${OUT:-out/experiments}; FIG=${FIG:-docs/figures}; REPO=${REPO:-./repo}
SEEDS=${SEEDS:-"1 2 3"}; NSEEDS=$(wc -w <<< "$SEEDS"); JOBS=${JOBS:-$(nproc)}; SNAP=${SNAP:-9}
export REPO
mkdir -p "$E/runs" "$FIG"
t0=$(date +%s)
if ! "$REPO" train --help 2>&1 | grep -q -- --snapshot-every; then
    echo "repo: error: $REPO train has no --snapshot-every (needed for the accuracy-over-steps curves); rebuild it from main" >&2
    exit 1
fi

# The budgets, from least to most training (lr x epochs = 2, 6, 6, 18, 20, 60 in units of 1e-5)
# BUDGETS and SWEEP_BUDGETS can be narrowed from the environment (a shorter run on a busy machine)
BUDGETS=${BUDGETS:-"lr2e-5_e1 lr2e-5_e3 lr6e-5_e1 lr6e-5_e3 lr2e-4_e1 lr2e-4_e3"}
# The losses of the grid: NAME FLAGS (gamma in mean log-prob per token; DPO/IPO beta on summed log-probs)
GRID="repo_g0:--loss repo --gamma 0
repo_g0.2:--loss repo --gamma 0.2
repo_g0.6:--loss repo --gamma 0.6
repo_g1.0:--loss repo --gamma 1.0
repo_1.0to0.2:--loss repo --gamma 1.0 --gamma-end 0.2 --gamma-schedule linear
repo_0.2to1.0:--loss repo --gamma 0.2 --gamma-end 1.0 --gamma-schedule linear
simpo_b2.5_g0.6:--loss simpo --gamma 0.6 --beta 2.5
simpo_b10_g0.6:--loss simpo --gamma 0.6 --beta 10
dpo_b0.1:--loss dpo --beta 0.1
dpo_b0.5:--loss dpo --beta 0.5
ipo_b0.1:--loss ipo --beta 0.1
ipo_b0.5:--loss ipo --beta 0.5
sft_chosen:--loss sft"
# the second beta of DPO and IPO runs at the 1-epoch budgets only: the whole grid at 3 epochs too
# takes over 45 minutes on a shared 2-core machine; the verdicts use beta 0.1 for both
E1_ONLY="dpo_b0.5 ipo_b0.5"
# more gamma for the inverted U, at the low end and wherever over-optimization can happen
SWEEP_EXTRA="repo_g0.1:--loss repo --gamma 0.1
repo_g0.4:--loss repo --gamma 0.4
repo_g1.5:--loss repo --gamma 1.5"
SWEEP_BUDGETS=${SWEEP_BUDGETS:-"lr2e-5_e1 lr6e-5_e1 lr6e-5_e3 lr2e-4_e3"}
SWEEP_GAMMAS="0 0.1 0.2 0.4 0.6 1.0 1.5"
# SimPO's beta towards RePO's limit, at the low budget only
LOW_EXTRA="simpo_b1_g0.6:--loss simpo --gamma 0.6 --beta 1
simpo_b50_g0.6:--loss simpo --gamma 0.6 --beta 50"

budget_flags() { # lr2e-5_e3 -> training flags
    local lr=${1#lr}; lr=${lr%_e*}
    echo "--lr $lr --epochs ${1#*_e} --batch-pairs 32 --warmup-steps 10"
}
# one job line per run: DIR SNAPSHOT_EVERY FLAGS...; the long runs first, so the jobs pack well
job_list() {
    local s b snap
    for s in $SEEDS; do
        for b in lr2e-4_e3 lr6e-5_e3 lr2e-5_e3 lr2e-4_e1 lr6e-5_e1 lr2e-5_e1; do
            [[ " $BUDGETS " == *" $b "* ]] || continue
            snap=0; case $b in lr2e-5_*|*_e1) ;; *) snap=$SNAP ;; esac
            { echo "$GRID"; if [[ " $SWEEP_BUDGETS " == *" $b "* ]]; then echo "$SWEEP_EXTRA"; fi
              if [ $b = lr2e-5_e1 ]; then echo "$LOW_EXTRA"; fi; } |
            while IFS=: read -r name flags; do
                if [[ $b == *_e3 && " $E1_ONLY " == *" $name "* ]]; then continue; fi
                echo "$E/runs/$b/$name/seed$s $snap $(budget_flags $b) --seed $s $flags"
            done
        done
    done
}
job_list > "$E/jobs.txt"
todo=0; while read -r d _; do [ -d "$d" ] || todo=$((todo + 1)); done < "$E/jobs.txt"
echo "$(wc -l < "$E/jobs.txt") runs, $todo to do, $JOBS at a time"
"$REPO" sample --model $A/policy --prompts $A/test_prompts.jsonl --temperature 0 --max-new 6 --out "$E/policy_greedy.jsonl" > /dev/null
$A/arith score --samples "$E/policy_greedy.jsonl" > "$E/policy_score.txt"
xargs -P "$JOBS" -L 1 bash $A/train_and_score.sh < "$E/jobs.txt"
t_runs=$(( $(date +%s) - t0 ))

# ---- tables: every run, then mean and sample std over seeds per budget and loss
{
    printf "budget\tloss\tseed\texact\texact_carry\texact_no_carry\tno_carry_plus10\n"
    while read -r d _; do
        s=${d##*/seed}; c=${d%/seed*}; c=${c##*/}; b=${d%/*/seed*}; b=${b##*/}
        printf "%s\t%s\t%s\t%s\n" "$b" "$c" "$s" "$(cat "$d/score.tsv")"
    done < "$E/jobs.txt"
} > "$E/results.tsv"
awk -F'\t' 'NR > 1 { k = $1 "\t" $2; if (!(k in n)) order[++K] = k; n[k]++; s[k] += $4; q[k] += $4 * $4; p[k] += $7 }
    END { for (i = 1; i <= K; i++) { k = order[i]; m = s[k] / n[k]; v = n[k] > 1 ? (q[k] - n[k] * m * m) / (n[k] - 1) : 0
          printf "%s\t%.4f\t%.4f\t%d\t%.4f\n", k, m, sqrt(v > 0 ? v : 0), n[k], p[k] / n[k] } }' "$E/results.tsv" > "$E/summary.tsv"
before=$(sed 's/.*greedy (first sample) exact \([0-9.]*\).*/\1/' "$E/policy_score.txt")

# ---- summary.md: the grid, the gamma sweep, and a verdict per claim. Two means are told apart
# when they differ by more than 2 sqrt(sA^2 + sB^2), twice the std of the difference of two single
# runs; with 3 seeds a side that is 3.5 standard errors of the difference of the means, about the
# two-sided 95% point of Welch's t at 2 to 4 degrees of freedom.
awk -F'\t' -v nseeds=$NSEEDS -v budgets="$BUDGETS" -v sweep_budgets="$SWEEP_BUDGETS" -v gammas="$SWEEP_GAMMAS" -v before="$before" \
    -v grid="$(echo "$GRID" | cut -d: -f1 | tr '\n' ' ')" '
function label(b,   lr, ep) { lr = b; sub(/^lr/, "", lr); sub(/_e.*/, "", lr); ep = b; sub(/.*_e/, "", ep)
    return "lr " lr " × " ep (ep == 1 ? " epoch" : " epochs") }
function cell(b, c) { return ((b, c) in m) ? sprintf("%.3f ± %.3f", m[b, c], sd[b, c]) : "" }
function apart(b1, c1, b2, c2) { return (m[b1, c1] - m[b2, c2]) ^ 2 > 4 * (sd[b1, c1] ^ 2 + sd[b2, c2] ^ 2) }
function cmp(b1, c1, b2, c2) { # "above/below/not distinguishable from"
    if (!apart(b1, c1, b2, c2)) return "not distinguishable from"
    return m[b1, c1] > m[b2, c2] ? "above" : "below" }
function short(b) { b = label(b); sub(/^lr /, "", b); sub(/ epochs?/, "", b); return b }
function lr_of(b,   x) { x = b; sub(/^lr/, "", x); sub(/_e.*/, "", x); return x + 0 }
function ep_of(b,   x) { x = b; sub(/.*_e/, "", x); return x + 0 }
function less(b1, b2) { return b1 != b2 && lr_of(b1) <= lr_of(b2) && ep_of(b1) <= ep_of(b2) } # b1 trains less than b2
function q(b, c) { return sprintf("%s %.3f ± %.3f", c, m[b, c], sd[b, c]) }
{ m[$1, $2] = $3; sd[$1, $2] = $4; p10[$1, $2] = $6 }
END {
    nb = split(budgets, B, " "); nc = split(grid, C, " "); ng = split(gammas, G, " "); ns = split(sweep_budgets, SB, " ")
    printf "Policy before training: %.3f held-out greedy accuracy (500 problems never seen in training).\n", before
    printf "Every cell: mean ± sample std over %d seeds (the seed orders the batches); cosine lr, 32 pairs per step, 51 steps per epoch.\n\n", nseeds
    printf "## Held-out greedy accuracy over the budget grid\n\n| loss |"; for (i = 1; i <= nb; i++) printf " %s |", label(B[i])
    printf "\n|---|"; for (i = 1; i <= nb; i++) printf "---|"; printf "\n"
    for (j = 1; j <= nc; j++) { printf "| `%s` |", C[j]; for (i = 1; i <= nb; i++) printf " %s |", cell(B[i], C[j]); printf "\n" }
    printf "\n## No-carry problems answered 10 too large (the over-optimized habit), mean over seeds\n\n| loss |"
    for (i = 1; i <= nb; i++) printf " %s |", label(B[i]); printf "\n|---|"; for (i = 1; i <= nb; i++) printf "---|"; printf "\n"
    for (j = 1; j <= nc; j++) { printf "| `%s` |", C[j]; for (i = 1; i <= nb; i++) printf((B[i], C[j]) in m ? " %.3f |" : " |", p10[B[i], C[j]]); printf "\n" }
    printf "\n## RePO, constant gamma\n\n| gamma |"; for (i = 1; i <= ns; i++) printf " %s |", label(SB[i])
    printf "\n|---|"; for (i = 1; i <= ns; i++) printf "---|"; printf "\n"
    for (k = 1; k <= ng; k++) { printf "| %s |", G[k]; for (i = 1; i <= ns; i++) printf " %s |", cell(SB[i], "repo_g" G[k]); printf "\n" }
    printf "\nLow budget only: SimPO gamma 0.6 at beta 1 / 2.5 / 10 / 50: %s / %s / %s / %s (RePO gamma 0.6: %s).\n",
        cell(B[1], "simpo_b1_g0.6"), cell(B[1], "simpo_b2.5_g0.6"), cell(B[1], "simpo_b10_g0.6"), cell(B[1], "simpo_b50_g0.6"), cell(B[1], "repo_g0.6")

    printf "\n## Verdicts\n\nTwo means are told apart when they differ by more than 2·sqrt(sA² + sB²).\n\n"
    printf "**Which losses over-optimize**: a budget with more training (higher lr, more epochs, or both) whose mean is told apart below that of a smaller budget (the best smaller one is named); * marks a mean below the policy before training (%.3f).\n\n", before
    for (j = 1; j <= nc; j++) {
        c = C[j]; lost = ""; ran = 0; for (i = 1; i <= nb; i++) ran += (B[i], c) in m
        for (i = 2; i <= nb; i++) {
            if (!((B[i], c) in m)) continue
            bb = 0; for (k = 1; k <= nb; k++) if (k != i && less(B[k], B[i]) && ((B[k], c) in m) && (!bb || m[B[k], c] > m[B[bb], c])) bb = k
            if (bb && m[B[bb], c] > m[B[i], c] && apart(B[bb], c, B[i], c))
                lost = lost sprintf("%s %.3f%s (< %.3f at %s), ", short(B[i]), m[B[i], c], m[B[i], c] < before ? "*" : "", m[B[bb], c], short(B[bb]))
        }
        printf "- `%s`: %s%s\n", c, lost == "" ? "**does not over-optimize** in this grid" : "**over-optimizes** at " substr(lost, 1, length(lost) - 2),
            ran < nb ? sprintf(" (run at %d of the %d budgets)", ran, nb) : ""
    }
    printf "\n**Inverted U in gamma** (gamma 0 and the largest gamma both below an interior best):\n\n"
    for (i = 1; i <= ns; i++) {
        b = SB[i]; bk = 1; for (k = 2; k <= ng; k++) if (m[b, "repo_g" G[k]] > m[b, "repo_g" G[bk]]) bk = k
        best = "repo_g" G[bk]; g0 = "repo_g" G[1]; gmax = "repo_g" G[ng]
        if (bk == 1 || bk == ng) {
            inner = 0; for (k = 2; k < ng; k++) if (!inner || m[b, "repo_g" G[k]] > m[b, "repo_g" G[inner]]) inner = k
            v = apart(b, best, b, "repo_g" G[inner]) ? "**not reproduced**" : "**not distinguishable**"
            printf "- %s: %s. The best gamma is the end point %s (%.3f ± %.3f); the best interior one, %s (%.3f ± %.3f), is %s it.\n",
                label(b), v, G[bk], m[b, best], sd[b, best], G[inner], m[b, "repo_g" G[inner]], sd[b, "repo_g" G[inner]], cmp(b, "repo_g" G[inner], b, best)
        } else {
            v = apart(b, best, b, g0) && apart(b, best, b, gmax) ? "**reproduced**" : "**not distinguishable**"
            printf "- %s: %s. Best gamma %s (%.3f ± %.3f): %s gamma 0 (%.3f ± %.3f) and %s gamma %s (%.3f ± %.3f).\n",
                label(b), v, G[bk], m[b, best], sd[b, best], cmp(b, best, b, g0), m[b, g0], sd[b, g0], cmp(b, best, b, gmax), G[ng], m[b, gmax], sd[b, gmax]
        }
    }
    printf "\n**Large-to-small schedule (gamma 1.0 -> 0.2) beats a fixed gamma** (against the best fixed gamma of the grid, 0 / 0.2 / 0.6 / 1.0):\n\n"
    for (i = 1; i <= nb; i++) {
        b = B[i]; s = "repo_1.0to0.2"; bf = ""
        for (j = 1; j <= nc; j++) if (C[j] ~ /^repo_g/ && (bf == "" || m[b, C[j]] > m[b, bf])) bf = C[j]
        r = cmp(b, s, b, bf); v = r == "above" ? "**reproduced**" : r == "below" ? "**not reproduced**" : "**not distinguishable**"
        printf "- %s: %s. %s is %s the best fixed, %s; against its end points: %s 1.0, %s 0.2; the reverse schedule 0.2 -> 1.0: %.3f ± %.3f.\n",
            label(b), v, q(b, s), r, q(b, bf), cmp(b, s, b, "repo_g1.0"), cmp(b, s, b, "repo_g0.2"), m[b, "repo_0.2to1.0"], sd[b, "repo_0.2to1.0"]
    }
    printf "\n**Filtering prevents over-optimization**: RePO at gamma 0.2 (most pairs filtered once ordered) against RePO at gamma 1.0 (few filtered) and the preference losses that never filter exactly, their weights only shrink (SimPO beta 2.5, DPO beta 0.1, IPO beta 0.1), at the same budget; reproduced where it is above all four; SFT for reference:\n\n"
    for (i = 1; i <= nb; i++) {
        b = B[i]; v = "reproduced"
        split("repo_g1.0 simpo_b2.5_g0.6 dpo_b0.1 ipo_b0.1", O, " ")
        for (k = 1; k <= 4; k++) { # one comparison below makes it "not reproduced", one too close "not distinguishable"
            r = cmp(b, "repo_g0.2", b, O[k])
            if (r == "below") v = "not reproduced"; else if (r != "above" && v == "reproduced") v = "not distinguishable"
        }
        printf "- %s: **%s**. Gamma 0.2 (%.3f ± %.3f) is %s gamma 1.0 (%.3f), %s SimPO (%.3f), %s DPO (%.3f), %s IPO (%.3f); %s SFT (%.3f).\n",
            label(b), v, m[b, "repo_g0.2"], sd[b, "repo_g0.2"], cmp(b, "repo_g0.2", b, "repo_g1.0"), m[b, "repo_g1.0"], cmp(b, "repo_g0.2", b, "simpo_b2.5_g0.6"), m[b, "simpo_b2.5_g0.6"],
            cmp(b, "repo_g0.2", b, "dpo_b0.1"), m[b, "dpo_b0.1"], cmp(b, "repo_g0.2", b, "ipo_b0.1"), m[b, "ipo_b0.1"], cmp(b, "repo_g0.2", b, "sft_chosen"), m[b, "sft_chosen"]
    }
}' "$E/summary.tsv" > "$E/summary.md"
cat "$E/summary.md"

# ---- figures
field() { sed -n "s/.*\"$1\": *\([-0-9.eE+naif]*\).*/\1/p" "$2"; } # field KEY LOG: the values of KEY, one per line
mean_of() { grep -P "^$1\t$2\t" "$E/summary.tsv" | cut -f3,4; }  # mean_of BUDGET LOSS: "mean<TAB>std"
REPO_LINES="repo_g0 repo_g0.2 repo_g0.6 repo_g1.0 repo_1.0to0.2 repo_0.2to1.0"
BASE_LINES="simpo_b2.5_g0.6 simpo_b10_g0.6 dpo_b0.1 dpo_b0.5 ipo_b0.1 ipo_b0.5 sft_chosen"
BASE_LINES_E3=$(for c in $BASE_LINES; do [[ " $E1_ONLY " == *" $c "* ]] || echo -n "$c "; done)
# 1. held-out accuracy against the learning rate, for 1 and for 3 epochs, one line per loss
for c in $REPO_LINES $BASE_LINES; do
    for ep in 1 3; do
        for lr in 2e-5 6e-5 2e-4; do echo "$lr $(mean_of lr${lr}_e$ep $c)"; done > "$E/fig_budget_e${ep}_$c.dat"
    done
done
lines() { local ep=$1 out="" c; shift; for c in "$@"; do out="$out \"$E/fig_budget_e${ep}_$c.dat\" using 1:2:3 with yerrorlines lw 2 title \"$c\","; done; echo "${out%,}"; }
gnuplot <<GP
set terminal pngcairo size 1200,900 font "sans,10" noenhanced; set output "$FIG/budget.png"
set multiplot layout 2,2 title "held-out greedy accuracy against the training budget (peak lr, cosine; mean ± std over $NSEEDS seeds)"
set logscale x; set xrange [1.6e-5:2.5e-4]; set xtics ("2e-5" 2e-5, "6e-5" 6e-5, "2e-4" 2e-4); set yrange [0:1.02]
set xlabel "peak learning rate"; set ylabel "held-out greedy accuracy"; set key outside right top font ",9"
set title "RePO, 1 epoch"; plot $(lines 1 $REPO_LINES), $before with lines dt 2 lc rgb "gray" title "policy before"
set title "RePO, 3 epochs"; plot $(lines 3 $REPO_LINES), $before with lines dt 2 lc rgb "gray" title "policy before"
set title "baselines, 1 epoch"; plot $(lines 1 $BASE_LINES), $before with lines dt 2 lc rgb "gray" title "policy before"
set title "baselines, 3 epochs"; plot $(lines 3 $BASE_LINES_E3), $before with lines dt 2 lc rgb "gray" title "policy before"
unset multiplot
GP
# 2. held-out accuracy over the steps of the over-trained runs (mean over seeds at each snapshot)
for b in lr6e-5_e3 lr2e-4_e3; do
    for c in $REPO_LINES $BASE_LINES_E3; do
        { echo "0 $before"; cat "$E"/runs/$b/$c/seed*/curve.tsv | awk -F'\t' '{ s[$1] += $2; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' | sort -n; } > "$E/fig_steps_${b}_$c.dat"
    done
done
# the collapse in numbers, appended to summary.md: the lowest point of the mean curve, and the end
{
    printf "\n## During the 3-epoch runs: the lowest held-out accuracy (mean over seeds at each snapshot, every %d steps) and the end\n\n" "$SNAP"
    printf "| loss | lr 6e-5: lowest (step) | lr 6e-5: end | lr 2e-4: lowest (step) | lr 2e-4: end |\n|---|---|---|---|---|\n"
    for c in $REPO_LINES $BASE_LINES_E3; do
        printf "| \`%s\` |" "$c"
        for b in lr6e-5_e3 lr2e-4_e3; do
            awk 'NR > 1 { if (!lo || $2 < lo) { lo = $2; at = $1 } end = $2 } END { printf " %.3f (%d) | %.3f |", lo, at, end }' "$E/fig_steps_${b}_$c.dat"
        done
        echo
    done
} | tee -a "$E/summary.md"
# the emergent curriculum in numbers: per run, the mean filtered fraction (M >= gamma) over the
# first and over the last tenth of the steps; per budget and RePO loss, mean ± std over seeds
while read -r d _; do
    c=${d%/seed*}; c=${c##*/}; b=${d%/*/seed*}; b=${b##*/}
    [[ " $REPO_LINES " == *" $c "* ]] || continue
    field filtered_frac "$d/log.jsonl" | awk -v b=$b -v c=$c '{ v[NR] = $1 }
        END { w = int(NR / 10); if (w < 1) w = 1; for (i = 1; i <= w; i++) { f += v[i]; l += v[NR - w + i] }
              printf "%s\t%s\t%.4f\t%.4f\n", b, c, f / w, l / w }'
done < "$E/jobs.txt" > "$E/filtered.tsv"
awk -F'\t' -v budgets="$BUDGETS" -v lines="$REPO_LINES" '
    { k = $1 SUBSEP $2; n[k]++; f[k] += $3; ff[k] += $3 * $3; l[k] += $4; ll[k] += $4 * $4 }
    function sd(s, q, n,   v) { v = n > 1 ? (q - s * s / n) / (n - 1) : 0; return sqrt(v > 0 ? v : 0) }
    END {
        nb = split(budgets, B, " "); nc = split(lines, C, " ")
        printf "\n## The emergent curriculum: filtered fraction over the first -> the last tenth of the steps (mean ± std over seeds)\n\n"
        printf "Up / down: the last is told apart above / below the first (the rule above); = : not distinguishable.\n\n| loss |"
        for (i = 1; i <= nb; i++) { x = B[i]; sub(/^lr/, "", x); sub(/_e/, " × ", x); printf " %s |", x }
        printf "\n|---|"; for (i = 1; i <= nb; i++) printf "---|"; printf "\n"
        for (j = 1; j <= nc; j++) {
            printf "| `%s` |", C[j]
            for (i = 1; i <= nb; i++) {
                k = B[i] SUBSEP C[j]; if (!(k in n)) { printf " |"; continue }
                mf = f[k] / n[k]; ml = l[k] / n[k]; sf = sd(f[k], ff[k], n[k]); sl = sd(l[k], ll[k], n[k])
                v = (ml - mf) ^ 2 > 4 * (sf ^ 2 + sl ^ 2) ? (ml > mf ? "up" : "down") : "="
                printf " %.3f ± %.3f -> %.3f ± %.3f %s |", mf, sf, ml, sl, v
            }
            printf "\n"
        }
    }' "$E/filtered.tsv" | tee -a "$E/summary.md"
steplines() { local b=$1 out="" c; shift; for c in "$@"; do out="$out \"$E/fig_steps_${b}_$c.dat\" using 1:2 with linespoints lw 2 pt 7 ps 0.5 title \"$c\","; done; echo "${out%,}"; }
gnuplot <<GP
set terminal pngcairo size 1200,900 font "sans,10" noenhanced; set output "$FIG/steps.png"
set multiplot layout 2,2 title "held-out greedy accuracy during the 3-epoch runs (mean over $NSEEDS seeds at each step; 51 steps per epoch, warmup 10)"
set yrange [0:1.02]; set xlabel "step"; set ylabel "held-out greedy accuracy"; set key outside right top; set xtics 17
set title "RePO, lr 6e-5"; plot $(steplines lr6e-5_e3 $REPO_LINES)
set title "baselines, lr 6e-5"; plot $(steplines lr6e-5_e3 $BASE_LINES_E3)
set title "RePO, lr 2e-4"; plot $(steplines lr2e-4_e3 $REPO_LINES)
set title "baselines, lr 2e-4"; plot $(steplines lr2e-4_e3 $BASE_LINES_E3)
unset multiplot
GP
# 3. the gamma sweep at each of its budgets
plot_lines=""
for b in $SWEEP_BUDGETS; do
    for g in $SWEEP_GAMMAS; do echo "$g $(mean_of $b repo_g$g)"; done > "$E/fig_gamma_$b.dat"
    l=${b#lr}; plot_lines="$plot_lines \"$E/fig_gamma_$b.dat\" using 1:2:3 with yerrorlines lw 2 pt 7 title \"lr ${l%_e*} x ${b#*_e} epochs\","
done
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/gamma_sweep.png"
set title "RePO: held-out greedy accuracy against constant gamma (mean ± std, $NSEEDS seeds)"
set xlabel "gamma"; set ylabel "held-out greedy accuracy"; set yrange [0:1.02]; set key bottom left
plot ${plot_lines%,}, $before with lines dt 2 lc rgb "gray" title "policy before"
GP
# 4. schedules against their fixed end points, per budget
for b in $BUDGETS; do
    l=${b#lr}; printf '"%s x%s"' "${l%_e*}" "${b#*_e}"
    for c in repo_g0.2 repo_g1.0 repo_1.0to0.2 repo_0.2to1.0; do printf " %s" "$(mean_of $b $c | tr '\t' ' ')"; done; echo
done > "$E/fig_sched.dat"
gnuplot <<GP
set terminal pngcairo size 1000,450 font "sans,11" noenhanced; set output "$FIG/schedules.png"
set title "gamma schedules against fixed gamma (mean ± std, $NSEEDS seeds)"; set ylabel "held-out greedy accuracy"; set xlabel "peak lr x epochs"
set yrange [0:1.15]; set style data histograms; set style histogram errorbars gap 2 lw 1; set style fill solid 0.6 border -1
set key top right horizontal
plot "$E/fig_sched.dat" using 2:3:xtic(1) title "gamma 0.2", "" using 4:5 title "gamma 1.0", "" using 6:7 title "1.0 -> 0.2", "" using 8:9 title "0.2 -> 1.0"
GP
# 5. SimPO's beta at the low budget; RePO is the limit beta -> infinity
for b in 1 2.5 10 50; do echo "$b $(mean_of lr2e-5_e1 simpo_b${b}_g0.6)"; done > "$E/fig_beta.dat"
repo06=$(mean_of lr2e-5_e1 repo_g0.6 | cut -f1)
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/simpo_beta.png"
set title "SimPO at gamma 0.6 as beta grows, lr 2e-5 x 1 epoch; RePO is the limit beta -> infinity"
set logscale x; set xlabel "beta"; set ylabel "held-out greedy accuracy"; set yrange [0:1.02]; set key bottom right
plot "$E/fig_beta.dat" using 1:2:3 with yerrorlines lw 2 pt 7 title "SimPO", $repo06 with lines lw 2 title "RePO (gamma 0.6)"
GP
# 6. filtered fraction per step, seed 1, at the low budget and an over-optimizing one
fig_filtered() { # BUDGET PNG
    local plot_lines="" c
    for c in repo_g0.2 repo_g0.6 repo_g1.0 repo_1.0to0.2; do
        field filtered_frac "$E/runs/$1/$c/seed1/log.jsonl" | awk '{ s[NR % 8] = $1; n = NR < 8 ? NR : 8; t = 0; for (i in s) t += s[i]; print NR, t / n }' > "$E/fig_filtered_$1_$c.dat"
        plot_lines="$plot_lines \"$E/fig_filtered_$1_$c.dat\" using 1:2 with lines lw 2 title \"$c\","
    done
    gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$2"
set title "fraction of filtered pairs (M >= gamma) per batch, moving average of 8 steps, $1, seed 1"
set xlabel "step"; set ylabel "filtered fraction"; set yrange [0:1.05]; set key bottom right
plot ${plot_lines%,}
GP
}
fig_filtered lr2e-5_e1 "$FIG/filtered_fraction.png"
fig_filtered lr6e-5_e3 "$FIG/filtered_fraction_lr6e-5_e3.png"
# 7. likelihood displacement: chosen and rejected mean log-probs per loss, seed 1
fig_likelihood() { # BUDGET PNG
    local plot_lines="" color=0 c log
    for c in repo_1.0to0.2 repo_g0.2 simpo_b2.5_g0.6 dpo_b0.1 ipo_b0.1 sft_chosen; do
        log=$E/runs/$1/$c/seed1/log.jsonl; color=$((color + 1))
        paste <(field chosen_logp "$log") <(field rejected_logp "$log") | awk '{ print NR, $1, $2 }' > "$E/fig_disp_$1_$c.dat"
        plot_lines="$plot_lines \"$E/fig_disp_$1_$c.dat\" using 1:2 with lines lw 2 lc $color title \"$c chosen\", \"$E/fig_disp_$1_$c.dat\" using 1:3 with lines dt 2 lw 2 lc $color title \"$c rejected\","
    done
    gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,10" noenhanced; set output "$2"
set title "mean log-prob of chosen (solid) and rejected (dashed) responses per batch, $1, seed 1"
set xlabel "step"; set ylabel "mean log-prob per token"; set key outside right
plot ${plot_lines%,}
GP
}
fig_likelihood lr2e-5_e1 "$FIG/likelihood.png"
fig_likelihood lr6e-5_e3 "$FIG/likelihood_lr6e-5_e3.png"
# 8. SimPO's gradient weight against RePO's step (analytic: |dL/dM| / beta = sigmoid(-beta (M - gamma)))
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/gradient_weight.png"
set title "gradient weight |dL/dM| / beta at gamma = 0.6: SimPO for several beta, RePO's step"
set xlabel "margin M"; set ylabel "weight"; set yrange [-0.05:1.1]; set samples 1000
g = 0.6; s(x) = 1 / (1 + exp(-x))
plot for [b in "1 2.5 10 50"] s(-b * (x - g)) lw 2 title "SimPO beta ".b, (x < g ? 1 : 0) lw 3 lc rgb "black" title "RePO"
GP
# 9. margins against gamma: the main job's schedule at the low budget, and the best and the worst
# constant-gamma RePO at the most over-optimizing budget of the sweep (seed 1)
$A/plot_margins.sh "$E/runs/lr2e-5_e1/repo_1.0to0.2/seed1/margins.jsonl" "$FIG/margins.png" > /dev/null
$A/plot_margins.sh --over-steps "$E/runs/lr2e-5_e1/repo_1.0to0.2/seed1/margins.jsonl" "$FIG/margins_steps.png" \
    "RePO gamma 1.0 -> 0.2, lr 2e-5 x 1 epoch (make run), seed 1" > /dev/null
hb=lr2e-4_e3
ranked=$(for g in $SWEEP_GAMMAS; do printf "%s\t%s\n" "$g" "$(mean_of $hb repo_g$g | cut -f1)"; done | sort -t$'\t' -k2,2g)
for which in best worst; do
    g=$( [ $which = best ] && echo "$ranked" | tail -n 1 | cut -f1 || echo "$ranked" | head -n 1 | cut -f1 )
    run=$E/runs/$hb/repo_g$g/seed1
    acc=$(cut -f1 "$run/score.tsv")
    $A/plot_margins.sh "$run/margins.jsonl" "$FIG/margins_$which.png" "$which RePO of the sweep at $hb: gamma $g, seed 1 (held-out $acc)" > /dev/null
    $A/plot_margins.sh --over-steps "$run/margins.jsonl" "$FIG/margins_steps_$which.png" "$which RePO of the sweep at $hb: gamma $g, seed 1 (held-out $acc)" > /dev/null
    echo "margins of the $which RePO at $hb: gamma $g -> $FIG/margins_$which.png, $FIG/margins_steps_$which.png"
done
# 10. why: the margins of the two kinds of pair over the same two runs. 92% of the pairs are carry
# problems (chosen: the right sum, rejected mostly the dropped carry); the few no-carry pairs are the
# only ones saying "do not add 10". Each snapshot scores every pair (./repo eval); the run is the
# grid's seed-1 run again (same flags, one thread: the same numbers).
awk '{ match($0, /"prompt_ids": *\[[^]]*\]/); s = substr($0, RSTART, RLENGTH); sub(/.*\[/, "", s); sub(/\]/, "", s)
       n = split(s, id, /, */); for (i = 1; i <= n; i++) { if (id[i] == 43) pa = id[i - 1] - 48; if (id[i] == 61) pb = id[i - 1] - 48 }
       print (pa + pb >= 10 ? "carry" : "plain") }' $A/pairs.jsonl > "$E/pair_kinds.txt"
kind_stats() { # EVAL.jsonl GAMMA: per kind, the 10th/50th/90th percentile margin and the fraction with M >= gamma
    paste "$E/pair_kinds.txt" <(sed 's/.*"margin": *\([-0-9.eE+]*\).*/\1/' "$1") | sort -k1,1 -k2,2g | awk -v g="$2" '
        { k[$1]++; v[$1, k[$1]] = $2; f[$1] += $2 >= g }
        END { for (j = 1; j <= 2; j++) { t = j == 1 ? "carry" : "plain"; n = k[t]
              printf " %g %g %g %g", v[t, int(0.1 * (n - 1)) + 1], v[t, int(0.5 * (n - 1)) + 1], v[t, int(0.9 * (n - 1)) + 1], f[t] / n } }'
}
for which in best worst; do
    g=$( [ $which = best ] && echo "$ranked" | tail -n 1 | cut -f1 || echo "$ranked" | head -n 1 | cut -f1 )
    d=$E/runs/kinds/$hb/repo_g$g
    if [ ! -d "$d" ]; then
        rm -rf "$d.tmp"; mkdir -p "$d.tmp"
        "$REPO" train --model $A/policy --data $A/pairs.jsonl --out "$d.tmp/model" --threads 1 --no-progress --snapshot-every "$SNAP" \
            $(budget_flags $hb) --seed 1 --loss repo --gamma "$g" > "$d.tmp/train.out"
        steps=$(grep -c '^step' "$d.tmp/train.out")
        for ((s = 0; s < steps; s += SNAP)); do
            m=$d.tmp/model-step$s; [ $s = 0 ] && m=$A/policy
            "$REPO" eval --model "$m" --data $A/pairs.jsonl --out "$d.tmp/eval.jsonl" --threads 1 > /dev/null
            echo "$s$(kind_stats "$d.tmp/eval.jsonl" "$g")" >> "$d.tmp/kinds.dat"; rm -rf "$d.tmp/model-step$s"
        done
        "$REPO" eval --model "$d.tmp/model" --data $A/pairs.jsonl --out "$d.tmp/eval.jsonl" --threads 1 > /dev/null
        echo "$steps$(kind_stats "$d.tmp/eval.jsonl" "$g")" >> "$d.tmp/kinds.dat"
        rm -rf "$d.tmp/model" "$d.tmp/eval.jsonl"; mv "$d.tmp" "$d"
    fi
    { echo "0 $before 0"; cut -f1,2,5 "$E/runs/$hb/repo_g$g/seed1/curve.tsv"; } | tr '\t' ' ' > "$E/fig_kinds_acc_$which.dat"
    cp "$d/kinds.dat" "$E/fig_kinds_$which.dat"
    eval "g_$which=$g"
done
nc=$(grep -c carry "$E/pair_kinds.txt"); np=$(grep -c plain "$E/pair_kinds.txt")
gnuplot <<GP
set terminal pngcairo size 1200,600 font "sans,10" noenhanced; set output "$FIG/pair_kinds.png"
set multiplot layout 1,2 title "why: margins of the $nc carry pairs and the $np no-carry pairs (band: 10th-90th percentile, line: median), $hb, seed 1"
set xlabel "step"; set ylabel "margin M on the training pairs"; set y2label "held-out"; set y2range [0:1.02]; set y2tics 0.2; set ytics nomirror
set key below font ",9" maxrows 2; set style fill transparent solid 0.25 noborder
do for [w in "best worst"] {
    g = (w eq "best") ? $g_best : $g_worst
    set title sprintf("%s RePO of the sweep: gamma %g", w, g)
    plot "$E/fig_kinds_".w.".dat" using 1:2:4 with filledcurves lc rgb "#1f77b4" title "carry pairs", \
         "" using 1:3 with lines lw 2 lc rgb "#1f77b4" notitle, \
         "" using 1:6:8 with filledcurves lc rgb "#ff7f0e" title "no-carry pairs", \
         "" using 1:7 with lines lw 2 lc rgb "#ff7f0e" notitle, \
         g with lines lw 2 dt 2 lc rgb "#d62728" title "gamma", \
         "$E/fig_kinds_acc_".w.".dat" using 1:2 axes x1y2 with linespoints lw 2 pt 7 ps 0.5 lc rgb "black" title "held-out accuracy (right)", \
         "" using 1:3 axes x1y2 with lines lw 2 dt 2 lc rgb "gray40" title "held-out no-carry answers 10 too large (right)"
}
unset multiplot
GP
times > "$E/times.txt" # the builtin in this shell, not in a $( ) subshell, which has no children
echo "experiments took $(( $(date +%s) - t0 )) s ($t_runs s of runs, $JOBS at a time), CPU time of the runs (user, system) $(tail -n 1 "$E/times.txt")"
echo "figures in $FIG, tables in $E/summary.md"
