# The latency model's plot (run.sh --latency with the pmem-perf scenario):
# latency per access and bandwidth per phase, the preset against dram, from
# the data files daxlab-collect wrote (numbers only). Run in the run
# directory with -e "preset='NAME'"; writes pmem-perf.svg.
set terminal svg size 1000,460 dynamic font "sans,11" background rgb "white"
set output "pmem-perf.svg"
set multiplot title "daxlab latency model: ".preset." vs dram, modelled (pmem-perf windows)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
set xtics rotate by -40 scale 0 nomirror
set grid ytics
set yrange [0:*]
set bmargin 7
set rmargin 5
set size 0.3, 0.92
set origin 0, 0
set title "latency per access (ns)"
plot "pmem-perf-latency.dat" using 2:xtic(1) title preset lc rgb "#c0504d", "" using 3 title "dram" lc rgb "#4f81bd"
set size 0.7, 0.92
set origin 0.3, 0
set title "bandwidth (GB/s)"
plot "pmem-perf-bandwidth.dat" using 2:xtic(1) title preset lc rgb "#c0504d", "" using 3 title "dram" lc rgb "#4f81bd"
unset multiplot
