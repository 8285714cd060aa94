#!/usr/bin/env bash
# registrar demo: 100 000 students (with invalid and duplicate rows) into a course of 90 000
# seats, then the same roster again to show that a re-run is idempotent.
#   bash apps/registrar/demo.sh build/default/apps/registrar/registrar
# Works in ./demo/ under the repository (gitignored), recreated on every run.
set -euo pipefail

bin="${1:?usage: demo.sh path/to/registrar}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$repo/demo"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
run() {
  local shown=() a
  for a in "$@"; do shown+=("$(printf '%q' "${a/#$bin/registrar}")"); done
  step "${shown[*]}"
  "$@" 2>&1
}

run "$bin" gen-roster --count 100000 --seed 42 --out roster.csv
run "$bin" --db registrar.db course add "Intro to Golang" --capacity 90000
run "$bin" --db registrar.db register --course "Intro to Golang" --out results-1.csv --format csv roster.csv
step "head -3 results-1.csv; grep -m1 <reason> results-1.csv ..."
head -3 results-1.csv
for reason in missing_id missing_name bad_email duplicate_id course_full; do
  grep -m1 ",$reason," results-1.csv
done
run "$bin" --db registrar.db register --course "Intro to Golang" --out results-2.csv --format csv roster.csv
run "$bin" --db registrar.db course list
step "sqlite3 registrar.db 'SELECT count(*), count(DISTINCT student_id) FROM registrations'"
sqlite3 registrar.db 'SELECT count(*), count(DISTINCT student_id) FROM registrations'
printf '\nfiles are in %s\n' "$work"
