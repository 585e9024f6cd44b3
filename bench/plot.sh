#!/usr/bin/env bash
# PNG plots of the benchmark CSVs, written beside them in bench/results/:
#   pause_vs_threads.png     apply pause p50/p99 by thread count (pause_summary.csv, grid set)
#   pause_vs_patchsize.png   apply/revert pause and total p50 by changed functions (patchsize_summary.csv)
#   checkpoints.png          apply total ms p50, --checkpoints dynamic vs poll (checkpoints_summary.csv)
#   cp_rate.png              time to checkpoint and pause p50 vs gap between calls, dynamic vs poll (cp_rate_summary.csv)
#   cp_threads.png           time to checkpoint, pause, stop/check µs per thread vs threads (cp_threads_summary.csv,
#                            cp_stopcost_summary.csv)
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

if [ -f "$R/cp_rate_summary.csv" ]; then
  # per (threads, inside, checkpoints): gap (0 drawn at 0.3), safe p50, pause p50; "-" = no apply succeeded
  ns=$(awk -F, 'NR>1 {print $2}' "$R/cp_rate_summary.csv" | sort -nu | tr '\n' ' ')
  ins=$(awk -F, 'NR>1 {print $4}' "$R/cp_rate_summary.csv" | sort -nu | tr '\n' ' ')
  for n in $ns; do for i in $ins; do for cp in dynamic poll; do
    awk -F, -v n=$n -v i=$i -v cp=$cp 'NR>1 && $2==n && $4==i && $6==cp && $7=="apply" {
        print ($3==0 ? 0.3 : $3), ($10=="" ? "-" : $10), ($14=="" ? "-" : $14) }' "$R/cp_rate_summary.csv" \
      | sort -g | sed "s/.* - .*//" >"$tmp/rate_${n}_${i}_${cp}.dat"
  done; done; done
  {
    echo 'set terminal pngcairo size 1300,900 font ",10"'
    echo "set output \"$R/cp_rate.png\""
    echo 'set multiplot layout 2,2 title "graft apply vs gap between calls into the changed function (p50; missing point = no apply succeeded within the timeout)"'
    echo 'set logscale xy; set grid; set key left top; set datafile missing "-"'
    echo 'set xtics ("0" 0.3, "1" 1, "10" 10, "100" 100, "1000" 1000); set xrange [0.2:1500]'
    echo 'set xlabel "gap outside the function, µs (0 = back to back)"'
    for n in $ns; do
      for col in 2 3; do
        [ $col = 2 ] && what="time to checkpoint (safe), ms" || what="longest all-threads pause, ms"
        echo "set title \"$n threads: $what\"; set ylabel \"ms\""
        plot="plot"; sep=""; pt=5
        for i in $ins; do
          plot="$plot$sep \"$tmp/rate_${n}_${i}_dynamic.dat\" u 1:(\$$col) w lp lw 2 pt $pt t \"dynamic, $i µs inside\""
          sep=","
          plot="$plot, \"$tmp/rate_${n}_${i}_poll.dat\" u 1:(\$$col) w lp dt 2 lw 2 pt $((pt+1)) t \"poll, $i µs inside\""
          pt=$((pt+2))
        done
        echo "$plot"
      done
    done
    echo 'unset multiplot'
  } >"$tmp/rate.gp"
  gnuplot "$tmp/rate.gp"
  echo "wrote $R/cp_rate.png"
fi

if [ -f "$R/cp_threads_summary.csv" ]; then
  loads=$(awk -F, 'NR>1 {print $4":"$5}' "$R/cp_threads_summary.csv" | sort -u | tr '\n' ' ')
  for l in $loads; do for cp in dynamic poll; do
    awk -F, -v l=$l -v cp=$cp 'NR>1 && $4":"$5==l && $6==cp && $7=="apply" {
        print $2, ($10=="" ? "-" : $10), ($14=="" ? "-" : $14) }' "$R/cp_threads_summary.csv" | sort -g | sed "s/.* - .*//" >"$tmp/thr_${l/:/_}_${cp}.dat"
  done; done
  if [ -f "$R/cp_stopcost_summary.csv" ]; then
    awk -F, 'NR>1 && $4=="all" {print $1, $11, $12}' "$R/cp_stopcost_summary.csv" | sort -g >"$tmp/cost.dat"
  fi
  {
    echo 'set terminal pngcairo size 1500,550 font ",10"'
    echo "set output \"$R/cp_threads.png\""
    echo 'set multiplot layout 1,3 title "graft apply vs threads calling the changed function (gap max(1, N/16) ms; p50 of the successful applies, see the tables for how many; missing point = none succeeded)"'
    echo 'set logscale xy; set grid; set key left top; set datafile missing "-"'
    echo 'set xtics (1,16,256,1024); set xrange [0.7:1500]; set xlabel "threads"'
    for col in 2 3; do
      [ $col = 2 ] && what="time to checkpoint (safe), ms" || what="longest all-threads pause, ms"
      echo "set title \"$what\"; set ylabel \"ms\""
      plot="plot"; sep=""; pt=5
      for l in $loads; do
        f=${l/:/_}
        plot="$plot$sep \"$tmp/thr_${f}_dynamic.dat\" u 1:(\$$col) w lp lw 2 pt $pt t \"dynamic, ${l/:/ µs }\""
        sep=","
        plot="$plot, \"$tmp/thr_${f}_poll.dat\" u 1:(\$$col) w lp dt 2 lw 2 pt $((pt+1)) t \"poll, ${l/:/ µs }\""
        pt=$((pt+2))
      done
      echo "$plot"
    done
    echo 'set title "per thread, all stops (p50), vs unwinders in DESIGN.md"; set ylabel "µs per thread"'
    echo 'set key right top; set yrange [*:3000]'
    if [ -f "$tmp/cost.dat" ]; then
      echo "plot \"$tmp/cost.dat\" u 1:2 w p pt 7 ps 1.2 t \"graft: stop\", \"$tmp/cost.dat\" u 1:3 w p pt 9 ps 1.2 t \"graft: check (stack scan)\", 400 w l dt 2 lw 2 t \"libunwind-ptrace 0.3-0.5 ms\", 1000 w l dt 3 lw 2 t \"libdwfl about 1 ms\""
    fi
    echo 'unset multiplot'
  } >"$tmp/thr.gp"
  gnuplot "$tmp/thr.gp"
  echo "wrote $R/cp_threads.png"
fi
