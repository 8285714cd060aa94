# goro/Go time ratio per benchmark, one bar per procs count (bench/run.sh writes the data).
#   gnuplot -e "datafile='ratios.dat'; outfile='bench-ratios.png'" bench/plot.gp
# ratios.dat: a header "benchmark procs=1 procs=2 ...", then "name ratio ratio ...".
# Bars are drawn on a log2 axis from parity (ratio 1): up = goro slower, down = goro faster.
if (!exists("datafile")) datafile = 'build/release/bench/ratios.dat'
if (!exists("outfile")) outfile = 'build/release/bench/bench-ratios.png'
ncols = int(system("head -n 1 '" . datafile . "' | wc -w"))

set terminal pngcairo size 1200,650 font ",10" noenhanced
set output outfile
set title "goro time / Go time per operation (bars up: goro slower; down: goro faster)"
set ylabel "ratio goro/Go (log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -35 left nomirror
set key top left
set grid ytics
set offsets 0, 0, graph 0.08, graph 0.08
set ytics ("1" 0)
set for [k=1:8] ytics add (sprintf("%d", 2**k) k)
set for [k=1:8] ytics add (sprintf("1/%d", 2**k) -k)
set xzeroaxis linetype -1 linewidth 2
plot for [i=2:ncols] datafile using (log(column(i))/log(2)):xtic(1) title columnheader(i)
