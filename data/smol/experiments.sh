#!/usr/bin/env bash
# make smol-experiments: RePO against SimPO, DPO, IPO and SFT on the chosen answers, on the same
# SmolLM2 pairs and settings as make smol (data/smol/config.sh), 3 seeds each (the seed orders the
# batches). Each run is scored by the held-out greedy accuracy on data/smol/test_prompts.jsonl.
# Writes out/smol-experiments/ (logs, results.tsv, summary.md) and docs/figures/smol_*.png.
# Resumable: a run whose score.txt exists is skipped. Long (24 SmolLM2 trainings): see
# data/smol/README.md for the measured time.
#   SEEDS="1 2 3"   seeds; PROMPTS=FILE held-out prompts; PAIRS=FILE pairs; STEPS=N (a short trial run)
#   CONFIGS="repo_1.0to0.2 dpo ..."   a subset of the configurations (default all; see config() below)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=data/smol; E=${OUT:-out/smol-experiments}; FIG=${FIG:-docs/figures}
source $S/config.sh
SEEDS=${SEEDS:-"1 2 3"}; PROMPTS=${PROMPTS:-$S/test_prompts.jsonl}; PAIRS=${PAIRS:-$S/pairs.jsonl}
[ -n "${STEPS:-}" ] && TRAIN="$TRAIN --steps $STEPS"
mkdir -p "$E" "$FIG"
t0=$(date +%s)
acc() { sed -n 's/.*greedy (first sample) accuracy \([0-9.]*\).*/\1/p' "$1"; }

# run NAME SEED FLAGS...: train, score greedy answers, append a row to results.tsv
run() {
    local name=$1 seed=$2; shift 2
    local d=$E/runs/$name/seed$seed
    if [ -f "$d/score.txt" ]; then return; fi # resumable
    rm -rf "$d"; mkdir -p "$d"
    local t=$(date +%s)
    ./repo train --model $MODEL --data "$PAIRS" --out "$d/model" --seed "$seed" $TRAIN $THREADS --no-progress "$@" \
        --log "$d/log.jsonl" > "$d/train.out"
    ./repo sample --model "$d/model" --prompts "$PROMPTS" --temperature 0 --max-new $MAX_NEW $THREADS --out "$d/greedy.jsonl"
    $S/smol score --samples "$d/greedy.jsonl" --model "$d/model" > "$d/score.tmp"
    rm -rf "$d/model"
    mv "$d/score.tmp" "$d/score.txt"
    printf "%s\t%s\t%s\t%s\n" "$name" "$seed" "$(acc "$d/score.txt")" "$*" >> "$E/results.tsv"
    echo "$name seed $seed: $(head -n 1 "$d/score.txt") ($(( $(date +%s) - t )) s)"
}

[ -f "$E/results.tsv" ] || printf "name\tseed\taccuracy\tflags\n" > "$E/results.tsv"
if [ ! -f "$E/before_score.txt" ]; then
    ./repo sample --model $MODEL --prompts "$PROMPTS" --temperature 0 --max-new $MAX_NEW $THREADS --out "$E/before_greedy.jsonl"
    $S/smol score --samples "$E/before_greedy.jsonl" --model $MODEL > "$E/before_score.tmp"
    mv "$E/before_score.tmp" "$E/before_score.txt"
fi
before=$(acc "$E/before_score.txt")
echo "before training: $(head -n 1 "$E/before_score.txt")"

# the configurations: name and flags
config() {
    case $1 in
        repo_g*) echo "--loss repo --gamma ${1#repo_g}" ;;
        repo_1.0to0.2) echo "--loss repo --gamma 1.0 --gamma-end 0.2" ;;
        simpo) echo "--loss simpo --gamma 0.5 --beta 2.5" ;;
        dpo) echo "--loss dpo --beta 0.1" ;;
        ipo) echo "--loss ipo --beta 0.1" ;;
        sft_chosen) echo "--loss sft" ;;
        *) echo "repo: error: CONFIGS: unknown configuration $1" >&2; exit 1 ;;
    esac
}
ALL="repo_g0.2 repo_g0.5 repo_g1.0 repo_1.0to0.2 simpo dpo ipo sft_chosen"
CONFIGS=${CONFIGS:-$ALL}
for c in $CONFIGS; do config "$c" > /dev/null; done
for s in $SEEDS; do
    for c in $CONFIGS; do run "$c" "$s" $(config "$c"); done
done

# ---- summary: held-out accuracy and filtered fraction (first and last sixth of the steps), mean ± std over seeds
field() { sed -n "s/.*\"$1\": *\([-0-9.eE+naif]*\).*/\1/p" "$2"; } # field KEY LOG: one value per step
{
    for d in "$E"/runs/*/seed*; do
        [ -f "$d/score.txt" ] || continue
        n=$(wc -l < "$d/log.jsonl"); w=$(( n / 6 > 0 ? n / 6 : 1 ))
        first=$(field filtered_frac "$d/log.jsonl" | head -n $w | awk '{ s += $1 } END { print s / NR }')
        last=$(field filtered_frac "$d/log.jsonl" | tail -n $w | awk '{ s += $1 } END { print s / NR }')
        printf "%s\t%s\t%s\t%s\n" "$(basename "$(dirname "$d")")" "$(acc "$d/score.txt")" "$first" "$last"
    done
} > "$E/per_run.tsv"
for c in $ALL; do
    awk -F'\t' -v c="$c" '$1 == c { n++; for (k = 2; k <= 4; k++) { s[k] += $k; q[k] += $k * $k } }
        END { if (!n) exit; printf "%s\t%d", c, n
              for (k = 2; k <= 4; k++) { m = s[k] / n; v = (q[k] - n * m * m) / (n > 1 ? n - 1 : 1); printf "\t%.4f\t%.4f", m, (v > 0 ? sqrt(v) : 0) }
              printf "\n" }' "$E/per_run.tsv"
done > "$E/summary.tsv"
{
    echo "held-out greedy accuracy before training: $before ($(wc -l < "$PROMPTS") prompts)"
    echo
    echo "| configuration | held-out greedy accuracy | filtered fraction, first sixth of steps | last sixth | seeds |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '{ printf "| `%s` | %.3f ± %.3f | %.2f ± %.2f | %.2f ± %.2f | %d |\n", $1, $3, $4, $5, $6, $7, $8, $2 }' "$E/summary.tsv"
} > "$E/summary.md"
cat "$E/summary.md"

# ---- figures
awk -F'\t' '{ printf "%d \"%s\" %s %s\n", NR, $1, $3, $4 }' "$E/summary.tsv" > "$E/fig_acc.dat"
gnuplot <<GP
set terminal pngcairo size 900,450 font "sans,11" noenhanced; set output "$FIG/smol_accuracy.png"
set title "SmolLM2-135M: held-out greedy accuracy (word limit kept) after one epoch, mean ± std over seeds"
set ylabel "accuracy"; set yrange [0:1]; set style fill solid 0.5; set boxwidth 0.6; set xtics rotate by -20
set key top left
plot "$E/fig_acc.dat" using 1:3:xtic(2) with boxes notitle, "" using 1:3:4 with yerrorbars lc rgb "black" pt 0 notitle, \
     $before with lines dt 2 lw 2 lc rgb "gray" title "before training"
GP
seed1=$(echo $SEEDS | cut -d' ' -f1)
plot_lines=""
for c in repo_g0.2 repo_g0.5 repo_g1.0 repo_1.0to0.2; do
    log=$E/runs/$c/seed$seed1/log.jsonl; [ -f "$log" ] || continue
    field filtered_frac "$log" | awk '{ s[NR % 4] = $1; n = NR < 4 ? NR : 4; t = 0; for (i in s) t += s[i]; print NR, t / n }' > "$E/fig_filtered_$c.dat"
    plot_lines="$plot_lines \"$E/fig_filtered_$c.dat\" using 1:2 with lines lw 2 title \"$c\","
done
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,11" noenhanced; set output "$FIG/smol_filtered.png"
set title "SmolLM2-135M, RePO: filtered pairs (M >= gamma) per batch, moving average of 4 steps, seed $seed1"
set xlabel "step"; set ylabel "filtered fraction"; set yrange [0:1.05]; set key top left
plot ${plot_lines%,}
GP
plot_lines=""; color=0
for c in repo_1.0to0.2 simpo dpo ipo sft_chosen; do
    log=$E/runs/$c/seed$seed1/log.jsonl; [ -f "$log" ] || continue; color=$((color + 1))
    paste <(field chosen_logp "$log") <(field rejected_logp "$log") | awk '{ print NR, $1, $2 }' > "$E/fig_disp_$c.dat"
    plot_lines="$plot_lines \"$E/fig_disp_$c.dat\" using 1:2 with lines lw 2 lc $color title \"$c chosen\", \"$E/fig_disp_$c.dat\" using 1:3 with lines dt 2 lw 2 lc $color title \"$c rejected\","
done
gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,10" noenhanced; set output "$FIG/smol_likelihood.png"
set title "SmolLM2-135M: mean log-prob per token of chosen (solid) and rejected (dashed) answers per batch, seed $seed1"
set xlabel "step"; set ylabel "mean log-prob per token"; set key outside right
plot ${plot_lines%,}
GP
echo "experiments took $(( $(date +%s) - t0 )) s; figures $FIG/smol_*.png, table $E/summary.md"
