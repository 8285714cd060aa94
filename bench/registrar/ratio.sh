#!/usr/bin/env bash
# registrar's writer against the SQLite limit, on the same roster, schema and transactions.
#
#   bench/registrar/ratio.sh [REGISTRAR_BIN] [ROWS] [ROUNDS]
#       defaults: build/default/apps/registrar/registrar 1000000 3
#
# Generates a roster of ROWS valid, distinct students (registrar gen-roster, fixed seed),
# builds sqlite_limit (bench/registrar/sqlite_limit.c: the transactions alone, rows
# preloaded in memory), then alternates ROUNDS times: sqlite_limit into a fresh database,
# and `registrar register` (CSV in, CSV results to a file) into a fresh database. Prints
# each run's rows/s (registrar: its summary's throughput, i.e. the whole pipeline from the
# first read to the last result), each round's ratio, and the median ratio.
# Environment: TMPDIR (where the roster and databases go; ~0.5 GB for 1M rows).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/default/apps/registrar/registrar}
rows=${2:-1000000}
rounds=${3:-3}
if [ ! -x "$bin" ]; then
  echo "ratio.sh: $bin is not an executable (cmake --build --preset default --target registrar)" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/registrar-ratio-XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/sqlite_limit" "$here/sqlite_limit.c" -lsqlite3
"$bin" gen-roster --count "$rows" --seed 1 --invalid-permille 0 --duplicate-permille 0 \
  --out "$work/roster.csv" 2>/dev/null

lim=() reg=() ratio=()
for ((i = 1; i <= rounds; i++)); do
  l=$("$work/sqlite_limit" "$work/roster.csv" "$work/limit.db" | sed -E 's/.* ([0-9]+) rows\/s$/\1/')
  rm -f "$work"/limit.db*
  rm -f "$work"/reg.db*
  "$bin" --db "$work/reg.db" course add Bench --capacity 100000000 >/dev/null
  r=$("$bin" --db "$work/reg.db" register --course Bench --no-progress --format csv \
        --out "$work/results.csv" "$work/roster.csv" | awk '/throughput/ {print $2}')
  rm -f "$work"/reg.db*
  q=$(awk -v l="$l" -v r="$r" 'BEGIN {printf "%.2f", r / l}')
  echo "round $i: sqlite_limit $l rows/s, registrar $r rows/s, ratio $q"
  lim+=("$l") reg+=("$r") ratio+=("$q")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The ratio of each round (the two runs back to back, under the same load), then its median:
# steadier on a shared machine than the ratio of the medians.
echo "$rows rows: median registrar $(median "${reg[@]}") rows/s, median SQLite limit" \
  "$(median "${lim[@]}") rows/s, median ratio $(median "${ratio[@]}") (per round: ${ratio[*]})"
