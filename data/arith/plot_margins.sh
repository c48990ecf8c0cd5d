#!/usr/bin/env bash
# plot_margins.sh MARGINS.jsonl OUT.png [TITLE]
# Histograms of the per-pair margins M over three windows of training (first, middle and last
# tenth of the steps), with gamma marked: the paper's "emergent curriculum" in one picture.
# Also prints the same histograms as text.
set -euo pipefail
in=$1; png=$2; title=${3:-"margins M = l(chosen) - l(rejected) during RePO training"}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" '
{
    match($0, /"step": *[0-9]+/); step = substr($0, RSTART, RLENGTH); sub(/.*: */, "", step)
    match($0, /"gamma": *[-0-9.eE+]+/); g = substr($0, RSTART, RLENGTH); sub(/.*: */, "", g)
    match($0, /\[.*\]/); list = substr($0, RSTART + 1, RLENGTH - 2)
    steps[NR] = step + 0; gam[NR] = g; vals[NR] = list; n = NR
}
END {
    w = int(n / 10); if (w < 1) w = 1
    start[1] = 1; start[2] = int(n / 2) - int(w / 2) + 1; start[3] = n - w + 1
    lo = -4; hi = 6; nb = 40; bw = (hi - lo) / nb
    for (k = 1; k <= 3; k++) {
        for (b = 0; b < nb; b++) cnt[k, b] = 0
        tot = 0; gsum = 0
        for (r = start[k]; r < start[k] + w && r <= n; r++) {
            m = split(vals[r], a, /, */)
            for (i = 1; i <= m; i++) {
                b = int((a[i] - lo) / bw); if (b < 0) b = 0; if (b >= nb) b = nb - 1
                cnt[k, b]++; tot++
            }
            gsum += gam[r]
        }
        label[k] = sprintf("steps %d-%d (gamma %.2f)", steps[start[k]], steps[start[k] + w - 1 <= n ? start[k] + w - 1 : n], gsum / w)
        f = dir "/h" k ".dat"
        for (b = 0; b < nb; b++) printf "%g %g\n", lo + (b + 0.5) * bw, cnt[k, b] / (tot * bw) > f
        print label[k] > (dir "/label" k)
        printf "%s\n", label[k]
        for (b = 0; b < nb; b++) {
            bar = ""; len = int(cnt[k, b] / tot * 200 + 0.5)
            for (j = 0; j < len; j++) bar = bar "#"
            if (cnt[k, b] > 0) printf "  M %+5.2f | %s\n", lo + (b + 0.5) * bw, bar
        }
    }
}' "$in"
gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,11"
set output "$png"
set title "$title"
set xlabel "margin M (nats per token)"
set ylabel "density"
set style fill transparent solid 0.35 noborder
set key top left
plot "$tmp/h1.dat" using 1:2 with boxes title "$(cat "$tmp/label1")", \
     "$tmp/h2.dat" using 1:2 with boxes title "$(cat "$tmp/label2")", \
     "$tmp/h3.dat" using 1:2 with boxes title "$(cat "$tmp/label3")"
GP
