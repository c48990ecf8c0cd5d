#!/usr/bin/env bash
# make experiments: the paper's findings in miniature, on the main job's policy and pairs.
# Every configuration runs with 3 seeds (the seed orders the batches); the score is the held-out
# greedy accuracy on data/arith/test_prompts.jsonl. Writes out/experiments/ (logs, results.tsv,
# summary.md) and the figures in docs/figures/. About 60 runs; see README for the measured time.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=data/arith; E=${OUT:-out/experiments}; FIG=${FIG:-docs/figures}
SEEDS=${SEEDS:-"1 2 3"}
mkdir -p "$E" "$FIG"
COMMON="--lr 2e-5 --batch-pairs 32 --epochs 1 --warmup-steps 10 --no-progress"
t0=$(date +%s)

# run NAME SEED FLAGS...: train, score greedy answers, append a row to results.tsv
run() {
    local name=$1 seed=$2; shift 2
    local d=$E/runs/$name/seed$seed
    if [ -f "$d/score.txt" ]; then return; fi # resumable
    rm -rf "$d"; mkdir -p "$d"
    ./repo train --model $A/policy --data $A/pairs.jsonl --out "$d/model" --seed "$seed" $COMMON "$@" \
        --log "$d/log.jsonl" > "$d/train.out"
    ./repo sample --model "$d/model" --prompts $A/test_prompts.jsonl --temperature 0 --max-new 6 --out "$d/greedy.jsonl"
    $A/arith score --samples "$d/greedy.jsonl" > "$d/score.txt"
    rm -rf "$d/model"
    printf "%s\t%s\t%s\t%s\n" "$name" "$seed" "$(sed 's/.*greedy (first sample) exact \([0-9.]*\).*/\1/' "$d/score.txt")" "$*" >> "$E/results.tsv"
    echo "$name seed $seed: $(cat "$d/score.txt")"
}

[ -f "$E/results.tsv" ] || printf "name\tseed\taccuracy\tflags\n" > "$E/results.tsv"
./repo sample --model $A/policy --prompts $A/test_prompts.jsonl --temperature 0 --max-new 6 --out "$E/policy_greedy.jsonl"
$A/arith score --samples "$E/policy_greedy.jsonl" > "$E/policy_score.txt"

for s in $SEEDS; do
    # 1. gamma sweep, constant gamma
    for g in 0 0.1 0.2 0.4 0.6 0.8 1.0 1.5; do run "repo_g$g" "$s" --loss repo --gamma "$g"; done
    # 2. schedules
    run "repo_1.0to0.2" "$s" --loss repo --gamma 1.0 --gamma-end 0.2 --gamma-schedule linear
    run "repo_0.2to1.0" "$s" --loss repo --gamma 0.2 --gamma-end 1.0 --gamma-schedule linear
    # 3. SimPO's beta at RePO's gamma (RePO is beta -> infinity)
    for b in 1 2.5 10 50; do run "simpo_b${b}_g0.6" "$s" --loss simpo --gamma 0.6 --beta "$b"; done
    # 4. baselines, each with a small sweep
    for b in 0.1 0.5; do run "dpo_b$b" "$s" --loss dpo --beta "$b"; run "ipo_b$b" "$s" --loss ipo --beta "$b"; done
    run "sft_chosen" "$s" --loss sft
done

# ---- summary: mean and std over seeds for each configuration
awk -F'\t' 'NR > 1 { n[$1]++; s[$1] += $3; q[$1] += $3 * $3; if (!($1 in order)) order[$1] = ++k; name[k] = $1 }
    END { for (i = 1; i <= k; i++) { c = name[i]; m = s[c] / n[c]; v = q[c] / n[c] - m * m; if (v < 0) v = 0;
          printf "%s\t%.4f\t%.4f\t%d\n", c, m, sqrt(v * n[c] / (n[c] > 1 ? n[c] - 1 : 1)), n[c] } }' "$E/results.tsv" > "$E/summary.tsv"
before=$(sed 's/.*greedy (first sample) exact \([0-9.]*\).*/\1/' "$E/policy_score.txt")
{
    echo "policy before training: $before"
    echo
    echo "| configuration | held-out greedy accuracy, mean ± std | seeds |"
    echo "|---|---|---|"
    awk -F'\t' '{ printf "| `%s` | %.3f ± %.3f | %d |\n", $1, $2, $3, $4 }' "$E/summary.tsv"
} > "$E/summary.md"
cat "$E/summary.md"

# ---- figures
field() { # field KEY LOG: the values of KEY, one per line
    sed -n "s/.*\"$1\": *\([-0-9.eE+naif]*\).*/\1/p" "$2"
}
# accuracy vs gamma
grep '^repo_g' "$E/summary.tsv" | sed 's/^repo_g//' | sort -g > "$E/fig_gamma.dat"
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/gamma_sweep.png"
set title "RePO: held-out greedy accuracy vs gamma (mean ± std, 3 seeds)"
set xlabel "gamma (constant)"; set ylabel "accuracy"; set yrange [0:1]; set key bottom right
plot "$E/fig_gamma.dat" using 1:2:3 with yerrorlines lw 2 pt 7 title "RePO", $before with lines dt 2 lc rgb "gray" title "policy before"
GP
# schedules
{ for c in repo_g0.6 repo_g1.0 repo_g0.2 repo_1.0to0.2 repo_0.2to1.0; do grep -P "^$c\t" "$E/summary.tsv"; done; } \
    | awk -F'\t' '{ printf "%d \"%s\" %s %s\n", NR, $1, $2, $3 }' > "$E/fig_sched.dat"
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/schedules.png"
set title "gamma schedules (mean ± std, 3 seeds)"; set ylabel "held-out greedy accuracy"
set yrange [0:1]; set style fill solid 0.5; set boxwidth 0.6; set xtics rotate by -20
plot "$E/fig_sched.dat" using 1:3:xtic(2) with boxes notitle, "" using 1:3:4 with yerrorbars lc rgb "black" pt 0 notitle
GP
# SimPO beta vs RePO
{ for b in 1 2.5 10 50; do grep -P "^simpo_b${b}_g0.6\t" "$E/summary.tsv" | awk -F'\t' -v b="$b" '{ print b, $2, $3 }'; done; } > "$E/fig_beta.dat"
repo06=$(grep -P '^repo_g0.6\t' "$E/summary.tsv" | cut -f2)
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/simpo_beta.png"
set title "SimPO at gamma 0.6 as beta grows; RePO is the limit beta -> infinity"
set logscale x; set xlabel "beta"; set ylabel "held-out greedy accuracy"; set yrange [0:1]; set key bottom right
plot "$E/fig_beta.dat" using 1:2:3 with yerrorlines lw 2 pt 7 title "SimPO", $repo06 with lines lw 2 title "RePO (gamma 0.6)"
GP
# filtered fraction vs step, seed 1
plot_lines=""
for c in repo_g0.2 repo_g0.6 repo_g1.0 repo_1.0to0.2; do
    field filtered_frac "$E/runs/$c/seed1/log.jsonl" | awk '{ s[NR % 8] = $1; n = NR < 8 ? NR : 8; t = 0; for (i in s) t += s[i]; print NR, t / n }' > "$E/fig_filtered_$c.dat"
    plot_lines="$plot_lines \"$E/fig_filtered_$c.dat\" using 1:2 with lines lw 2 title \"$c\","
done
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/filtered_fraction.png"
set title "fraction of filtered pairs (M >= gamma) per batch, moving average of 8 steps, seed 1"
set xlabel "step"; set ylabel "filtered fraction"; set yrange [0:1.05]; set key bottom right
plot ${plot_lines%,}
GP
# likelihood displacement: chosen and rejected mean log-probs per loss, seed 1
plot_lines=""; color=0
for c in repo_1.0to0.2 simpo_b2.5_g0.6 dpo_b0.5 ipo_b0.5 sft_chosen; do
    log=$E/runs/$c/seed1/log.jsonl; color=$((color + 1))
    paste <(field chosen_logp "$log") <(field rejected_logp "$log") | awk '{ print NR, $1, $2 }' > "$E/fig_disp_$c.dat"
    plot_lines="$plot_lines \"$E/fig_disp_$c.dat\" using 1:2 with lines lw 2 lc $color title \"$c chosen\", \"$E/fig_disp_$c.dat\" using 1:3 with lines dt 2 lw 2 lc $color title \"$c rejected\","
done
gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,10" noenhanced; set output "$FIG/likelihood.png"
set title "mean log-prob of chosen (solid) and rejected (dashed) responses per batch, seed 1"
set xlabel "step"; set ylabel "mean log-prob per token"; set key outside right
plot ${plot_lines%,}
GP
# the gradient weight of SimPO vs M against RePO's step (analytic: dL/dM = -beta sigmoid(-beta(M - gamma)), over beta)
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/gradient_weight.png"
set title "gradient weight |dL/dM| / beta at gamma = 0.6: SimPO for several beta, RePO's step"
set xlabel "margin M"; set ylabel "weight"; set yrange [-0.05:1.1]; set samples 1000
g = 0.6; s(x) = 1 / (1 + exp(-x))
plot for [b in "1 2.5 10 50"] s(-b * (x - g)) lw 2 title "SimPO beta ".b, (x < g ? 1 : 0) lw 3 lc rgb "black" title "RePO"
GP
# the margin histograms of the main job's schedule, seed 1 (needs a margins log: rerun that one run)
d=$E/runs/hist; rm -rf "$d"; mkdir -p "$d"
./repo train --model $A/policy --data $A/pairs.jsonl --out "$d/model" --seed 1 $COMMON --loss repo --gamma 1.0 --gamma-end 0.2 \
    --margins "$d/margins.jsonl" > /dev/null
rm -rf "$d/model"
$A/plot_margins.sh "$d/margins.jsonl" "$FIG/margins.png" > /dev/null
echo "experiments took $(( $(date +%s) - t0 )) s; figures in $FIG, tables in $E/summary.md"
