#!/usr/bin/env bash
# plot_margins.sh [--over-steps] MARGINS.jsonl OUT.png [TITLE]   (MARGINS: ./repo train --margins)
# Default: histograms of the per-pair margins M over three windows of training (first, middle and
# last tenth of the steps), each window's gamma a dashed line of its colour: the paper's "emergent
# curriculum" in one picture. Also prints the same histograms as text.
# --over-steps: every step at once. Top, the density of the batch's margins at each step (a column
# per step) under the gamma of that step, so pairs above the line are filtered; bottom, the filtered
# fraction (M >= gamma) per step. Prints it per tenth of training as text.
set -euo pipefail
mode=windows; if [ "${1:-}" = --over-steps ]; then mode=steps; shift; fi
[ $# -ge 2 ] || { echo "usage: plot_margins.sh [--over-steps] MARGINS.jsonl OUT.png [TITLE]" >&2; exit 2; }
in=$1; png=$2; title=${3:-"margins M = l(chosen) - l(rejected) during RePO training"}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# one line per step: step, gamma, then every margin of the batch
awk '{
    match($0, /"step": *[0-9]+/); step = substr($0, RSTART, RLENGTH); sub(/.*: */, "", step)
    match($0, /"gamma": *[-0-9.eE+]+/); g = substr($0, RSTART, RLENGTH); sub(/.*: */, "", g)
    match($0, /\[.*\]/); list = substr($0, RSTART + 1, RLENGTH - 2); gsub(/, */, " ", list)
    print step, g, list
}' "$in" > "$tmp/steps.txt"
[ -s "$tmp/steps.txt" ] || { echo "repo: error: $in: no margins" >&2; exit 1; }

if [ $mode = windows ]; then
awk -v dir="$tmp" '
{ steps[NR] = $1; gam[NR] = $2; vals[NR] = $0; n = NR }
END {
    w = int(n / 10); if (w < 1) w = 1
    start[1] = 1; start[2] = int(n / 2) - int(w / 2) + 1; start[3] = n - w + 1
    lo = -4; hi = 6; nb = 40; bw = (hi - lo) / nb
    for (k = 1; k <= 3; k++) {
        for (b = 0; b < nb; b++) cnt[k, b] = 0
        tot = 0; gsum = 0; last = start[k] + w - 1 <= n ? start[k] + w - 1 : n
        for (r = start[k]; r <= last; r++) {
            m = split(vals[r], a, " ")
            for (i = 3; i <= m; i++) {
                b = int((a[i] - lo) / bw); if (b < 0) b = 0; if (b >= nb) b = nb - 1
                cnt[k, b]++; tot++
            }
            gsum += gam[r]
        }
        label[k] = sprintf("steps %d-%d (gamma %.2f)", steps[start[k]], steps[last], gsum / (last - start[k] + 1))
        printf "%.6g\n", gsum / (last - start[k] + 1) > (dir "/gamma" k)
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
}' "$tmp/steps.txt"
gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,11" noenhanced
set output "$png"
set title "$title"
set xlabel "margin M (nats per token); dashed: each window's gamma, pairs right of it are filtered"
set ylabel "density"
set style fill transparent solid 0.35 noborder
set key top left
set arrow from $(cat "$tmp/gamma1"), graph 0 to $(cat "$tmp/gamma1"), graph 1 nohead lt 1 lw 2 dt 2
set arrow from $(cat "$tmp/gamma2"), graph 0 to $(cat "$tmp/gamma2"), graph 1 nohead lt 2 lw 2 dt 2
set arrow from $(cat "$tmp/gamma3"), graph 0 to $(cat "$tmp/gamma3"), graph 1 nohead lt 3 lw 2 dt 2
plot "$tmp/h1.dat" using 1:2 with boxes lt 1 title "$(cat "$tmp/label1")", \
     "$tmp/h2.dat" using 1:2 with boxes lt 2 title "$(cat "$tmp/label2")", \
     "$tmp/h3.dat" using 1:2 with boxes lt 3 title "$(cat "$tmp/label3")"
GP
exit 0
fi

# --over-steps: the margin axis spans the 1st to 99th percentile of all margins (outliers clipped
# into the end bins), widened to hold every gamma, in 60 bins
sort -g <(awk '{ for (i = 3; i <= NF; i++) print $i }' "$tmp/steps.txt") > "$tmp/all.txt"
awk -v dir="$tmp" -v nall="$(wc -l < "$tmp/all.txt")" '
FNR == NR { if (FNR == int(0.01 * (nall - 1)) + 1) lo = $1; if (FNR == int(0.99 * (nall - 1)) + 1) hi = $1; next }
{ steps[++n] = $0; if ($2 < gmin || n == 1) gmin = $2; if ($2 > gmax || n == 1) gmax = $2 }
END {
    if (gmin < lo) lo = gmin; if (gmax > hi) hi = gmax
    lo = int(lo * 2 - (lo < 0)) / 2 - 0.5; hi = int(hi * 2 + 1) / 2 + 0.5; nb = 60; bw = (hi - lo) / nb
    printf "  steps    | gamma | filtered | median M\n"
    w = int((n + 9) / 10); ws = 0; wf = 0; wg = 0; wk = 0; wm = ""
    for (r = 1; r <= n; r++) {
        m = split(steps[r], a, " "); step = a[1]; g = a[2]; k = m - 2
        for (b = 0; b < nb; b++) c[b] = 0
        f = 0
        for (i = 3; i <= m; i++) {
            b = int((a[i] - lo) / bw); if (b < 0) b = 0; if (b >= nb) b = nb - 1
            c[b]++; f += a[i] >= g; v[i - 2] = a[i]
        }
        for (b = 0; b < nb; b++) printf "%d %g %g\n", step, lo + (b + 0.5) * bw, c[b] / k >> (dir "/heat.dat")
        printf "\n" >> (dir "/heat.dat")
        printf "%d %g %g\n", step, g, f / k >> (dir "/line.dat")
        # the median margin of the batch (insertion sort: batches are small)
        for (i = 2; i <= k; i++) { x = v[i]; j = i - 1; while (j >= 1 && v[j] > x) { v[j + 1] = v[j]; j-- } v[j + 1] = x }
        med = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
        if (wk == 0) ws = step
        wf += f / k; wg += g; wm = wm " " med; wk++
        if (wk == w || r == n) {
            q = split(wm, mm, " "); for (i = 2; i <= q; i++) { x = mm[i]; j = i - 1; while (j >= 1 && mm[j] > x) { mm[j + 1] = mm[j]; j-- } mm[j + 1] = x }
            printf "  %4d-%-4d | %5.2f | %7.1f%% | %+.2f\n", ws, step, wg / wk, 100 * wf / wk, mm[int((q + 1) / 2)]
            wf = 0; wg = 0; wk = 0; wm = ""
        }
    }
    printf "%g %g %d\n", lo, hi, n > (dir "/range")
}' "$tmp/all.txt" "$tmp/steps.txt"
read -r lo hi n < "$tmp/range"
gnuplot <<GP
set terminal pngcairo size 1000,650 font "sans,11" noenhanced
set output "$png"
set multiplot title "$title"
set lmargin at screen 0.09; set rmargin at screen 0.86
set origin 0, 0.33; set size 1, 0.62; set tmargin 1; set bmargin 0
set xrange [0.5:$n + 0.5]; set yrange [$lo:$hi]; set format x ""
set ylabel "margin M (nats per token)"
set cblabel "fraction of the batch"; set palette defined (0 "white", 0.1 "#c6dbef", 0.4 "#4292c6", 1 "#08306b")
set cbrange [0:*]; set key top left opaque
plot "$tmp/heat.dat" using 1:2:3 with image notitle, "$tmp/line.dat" using 1:2 with lines lw 3 lc rgb "#d62728" title "gamma: pairs above it are filtered"
unset colorbox; set origin 0, 0.06; set size 1, 0.27; set tmargin 0.5; set bmargin 2.5
set format x "%g"; set xlabel "step"; set yrange [0:1.05]; set ylabel "filtered"; set ytics 0.5
plot "$tmp/line.dat" using 1:3 with lines lw 2 lc rgb "#d62728" notitle
unset multiplot
GP
