#!/usr/bin/env bash
# Concurrent registrar writers against the same runs one after another.
#
#   bench/registrar/writers.sh [REGISTRAR_BIN] [ROWS] [PROCS]
#       defaults: build/default/apps/registrar/registrar 300000 4
#
# PROCS rosters of ROWS rows (seeds 1..PROCS; the ids of roster i are prefixed with Pi so that
# the rosters register different students), one course of ample capacity. Sequential:
# a fresh database, the PROCS runs one after another. Concurrent: a fresh database, the
# PROCS runs at once (--busy-timeout 600000: they queue for the write lock). Prints the
# wall time of each and checks that both databases end with the same registrations.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/default/apps/registrar/registrar}
rows=${2:-300000}
procs=${3:-4}
work=$(mktemp -d "${TMPDIR:-/tmp}/registrar-writers-XXXXXX")
trap 'rm -rf "$work"' EXIT
for ((i = 1; i <= procs; i++)); do
  "$bin" gen-roster --count "$rows" --seed "$i" 2>/dev/null | sed "s/^S\([0-9]\)/P${i}S\1/" \
    >"$work/r$i.csv"
done
setup() { "$bin" --db "$1" course add Bench --capacity 100000000 >/dev/null; }
reg() {
  "$bin" --db "$1" --busy-timeout 600000 register --course Bench --no-progress --format csv \
    --out "$work/out-$2-$3.csv" "$work/r$3.csv" >/dev/null
}
now() { date +%s.%N; }

setup "$work/seq.db"
t0=$(now)
for ((i = 1; i <= procs; i++)); do reg "$work/seq.db" seq "$i"; done
t1=$(now)

setup "$work/par.db"
t2=$(now)
pids=()
for ((i = 1; i <= procs; i++)); do reg "$work/par.db" par "$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
t3=$(now)

count() { sqlite3 "$1" "SELECT count(*) || ' registrations, taken ' || (SELECT taken FROM courses) FROM registrations"; }
echo "sequential: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s ($(count "$work/seq.db"))"
echo "concurrent: $(awk -v a="$t2" -v b="$t3" 'BEGIN {printf "%.2f", b - a}') s ($(count "$work/par.db"))"
