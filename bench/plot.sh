#!/usr/bin/env bash
# PNG plots of the benchmark CSVs, written beside them in bench/results/:
#   pause_vs_threads.png     apply pause p50/p99 by thread count (pause_summary.csv, grid set)
#   pause_vs_patchsize.png   apply/revert pause and total p50 by changed functions (patchsize_summary.csv)
#   checkpoints.png          apply total ms p50, --checkpoints dynamic vs poll (checkpoints_summary.csv)
#
#   bench/plot.sh            (needs gnuplot: apt-get install -y gnuplot-nox)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=$here/results
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed (apt-get install -y gnuplot-nox)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -f "$R/pause_summary.csv" ]; then
  for f in 1 10 100; do
    awk -F, -v f=$f 'NR>1 && $1=="grid" && $4==f {print $2, $7, $8, $11}' "$R/pause_summary.csv" >"$tmp/threads_$f.dat"
  done
  gnuplot <<EOF
set terminal pngcairo size 900,600 font ",11"
set output "$R/pause_vs_threads.png"
set title "graft apply: longest all-threads pause vs thread count (256-function target)"
set xlabel "threads"; set ylabel "ms"
set logscale xy; set grid; set key left top
set xtics (1,4,16,64,256,1024)
plot "$tmp/threads_1.dat" u 1:2 w lp lw 2 pt 7 t "pause p50, 1 fn", \
     "$tmp/threads_1.dat" u 1:3 w lp dt 2 pt 6 t "pause p99, 1 fn", \
     "$tmp/threads_10.dat" u 1:2 w lp lw 2 pt 5 t "pause p50, 10 fn", \
     "$tmp/threads_100.dat" u 1:2 w lp lw 2 pt 9 t "pause p50, 100 fn", \
     "$tmp/threads_100.dat" u 1:3 w lp dt 2 pt 8 t "pause p99, 100 fn", \
     "$tmp/threads_1.dat" u 1:4 w lp lw 1 pt 1 t "total p50, 1 fn"
EOF
  echo "wrote $R/pause_vs_threads.png"
fi

if [ -f "$R/patchsize_summary.csv" ]; then
  awk -F, 'NR>1 {print $1, $5, $6, $7, $8, $9, $11}' "$R/patchsize_summary.csv" >"$tmp/size.dat"
  gnuplot <<EOF
set terminal pngcairo size 900,600 font ",11"
set output "$R/pause_vs_patchsize.png"
set title "graft apply/revert vs patch size (1000-function target, 4 threads)"
set xlabel "changed functions in the patch"; set ylabel "ms"
set logscale xy; set grid; set key left top
set xtics (1,10,100,1000)
plot "$tmp/size.dat" u 1:2 w lp lw 2 pt 7 t "apply pause p50", \
     "$tmp/size.dat" u 1:3 w lp dt 2 pt 6 t "apply pause p99", \
     "$tmp/size.dat" u 1:4 w lp lw 2 pt 5 t "apply total p50", \
     "$tmp/size.dat" u 1:6 w lp lw 2 pt 9 t "revert pause p50", \
     "$tmp/size.dat" u 1:7 w lp lw 2 pt 11 t "revert total p50"
EOF
  echo "wrote $R/pause_vs_patchsize.png"
fi

if [ -f "$R/checkpoints_summary.csv" ]; then
  # one row per cell: label, dynamic total p50, poll total p50 (apply; "-" when no apply succeeded)
  awk -F, 'NR>1 && $4=="apply" {
      k=$1" "$2; if (!(k in seen)) {seen[k]=1; order[++n]=k}
      v[k,$3]=($7=="" ? "-" : $7); ok[k,$3]=$5"/"$6 }
    END { for (i=1;i<=n;i++) { k=order[i]; lab=k" (ok "ok[k,"dynamic"]", "ok[k,"poll"]")"; gsub(/ /,"\\n",lab);
          printf "\"%s\" %s %s\n", lab, v[k,"dynamic"], v[k,"poll"] } }' "$R/checkpoints_summary.csv" >"$tmp/cp.dat"
  gnuplot <<EOF
set terminal pngcairo size 1200,650 font ",10"
set output "$R/checkpoints.png"
set title "graft apply: time to a safe moment + commit (total ms p50), --checkpoints dynamic vs poll; missing bar = no apply succeeded (timeout 3000 ms)"
set ylabel "ms (log)"; set logscale y; set grid ytics
set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1
set datafile missing "-"
set key left top
set yrange [0.5:*]
set bmargin 7
plot "$tmp/cp.dat" u 2:xtic(1) t "dynamic", "" u 3 t "poll"
EOF
  echo "wrote $R/checkpoints.png"
fi
