#!/usr/bin/env bash
# Runs goro_bench and its Go twin alternately and prints a comparison table.
#
#   bench/run.sh BIN PROCS [name...]     e.g. bench/run.sh build/release/bench/goro_bench 2
#
# BIN is goro_bench; go_bench is built next to it from bench/go if missing or stale. Each
# round runs every benchmark once in goro and once in Go (alternating, one process per
# benchmark so a hang or crash loses one measurement only). Writes, next to BIN:
#   results-procsN.tsv   raw lines: round impl benchmark ns_per_op extra status
#   results-procsN.md    the table (also printed)
#   ratios.dat           goro/Go ratio per benchmark for every results-procs*.tsv present
#   bench-ratios.png     the plot of ratios.dat (when gnuplot is installed)
# Environment: GORO_BENCH_ROUNDS (default 3), GORO_BENCH_TIMEOUT seconds per run (180).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BIN PROCS [name...]" >&2
  exit 2
fi
bin=$1
procs=$2
shift 2
rounds=${GORO_BENCH_ROUNDS:-3}
limit=${GORO_BENCH_TIMEOUT:-180}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ ! -x "$bin" ]; then
  echo "run.sh: $bin is not an executable (build the release preset first)" >&2
  exit 2
fi
if ! [[ $procs =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: PROCS must be a positive integer, not '$procs'" >&2
  exit 2
fi
out=$(cd "$(dirname "$bin")" && pwd)
bin=$out/$(basename "$bin")
gobin=$out/go_bench

# ---- the Go twin: stdlib only, no network ----
if [ ! -x "$gobin" ] || [ "$here/go/main.go" -nt "$gobin" ] || [ "$here/go/go.mod" -nt "$gobin" ]; then
  echo "run.sh: building $gobin" >&2
  if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then export GOCACHE=$out/go-cache; fi
  (cd "$here/go" && GOFLAGS=-mod=mod GOPROXY=off GO111MODULE=on go build -o "$gobin" .)
fi

if [ $# -gt 0 ]; then
  names=("$@")
else
  mapfile -t names < <("$bin" --list)
fi

tsv=$out/results-procs$procs.tsv
md=$out/results-procs$procs.md
logs=$out/logs-procs$procs
rm -rf "$logs"
mkdir -p "$logs"
printf 'round\timpl\tbenchmark\tns_per_op\textra\tstatus\n' >"$tsv"

# run_one ROUND IMPL EXE NAME: one process, one benchmark; appends a line to the TSV.
run_one() {
  local round=$1 impl=$2 exe=$3 name=$4 rc=0 line status ns extra
  local log=$logs/$impl-$name-round$round
  timeout -k 10 "$limit" "$exe" --procs "$procs" "$name" >"$log.out" 2>"$log.err" || rc=$?
  line=$(awk -F'\t' -v n="$name" '$1 == n' "$log.out" | tail -n 1)
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status=timeout
  elif [ "$rc" -ne 0 ]; then
    status="crash($rc)"
  elif [ -z "$line" ]; then
    status=no-output
  else
    status=ok
  fi
  if [ "$status" = ok ]; then
    ns=$(cut -f2 <<<"$line")
    extra=$(cut -f3 <<<"$line")
    rm -f "$log.out" "$log.err"
  else
    ns=$status
    extra=-
    echo "run.sh: $impl $name round $round: $status (see $log.err)" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$impl" "$name" "$ns" "$extra" "$status" >>"$tsv"
  printf '  %-5s %-17s %s\t%s\n' "$impl" "$name" "$ns" "$extra" >&2
}

for ((r = 1; r <= rounds; r++)); do
  echo "run.sh: round $r/$rounds, procs=$procs" >&2
  for name in "${names[@]}"; do
    run_one "$r" goro "$bin" "$name"
    run_one "$r" go "$gobin" "$name"
  done
done
rmdir "$logs" 2>/dev/null || true

# ---- the table, and the ratios of every procs count measured so far ----
python3 - "$tsv" "$md" "$out" "$procs" <<'PY'
import csv, glob, os, re, statistics, sys

tsv, md, out, procs = sys.argv[1:5]
units = {"park_1m": "B/goroutine", "idle_cpu": "CPU s"}


def load(path):
    rows, order = {}, []
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = row["benchmark"]
            if name not in order:
                order.append(name)
            rows.setdefault((name, row["impl"]), []).append(row)
    return rows, order


def summary(rows):
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r["status"] for r in rows if r["status"] != "ok"]
    ns = [float(r["ns_per_op"]) for r in ok]
    extras = [float(r["extra"]) for r in ok if r["extra"] not in ("-", "")]
    return {
        "median": statistics.median(ns) if ns else None,
        "min": min(ns) if ns else None,
        "max": max(ns) if ns else None,
        "extra": statistics.median(extras) if extras else None,
        "bad": bad,
    }


def fmt(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.1f}"


def fmt_extra(name, x):
    if x is None:
        return "-"
    if name == "idle_cpu":
        return f"{x:.3f}"
    return f"{x:,.0f}"


def ratio(g, o):
    if g["median"] is None or o["median"] is None or o["median"] == 0:
        return None
    return g["median"] / o["median"]


rows, order = load(tsv)
lines = [
    f"procs={procs}",
    "",
    "| benchmark | goro median ns/op | Go median ns/op | ratio goro/Go | goro min–max | Go min–max | extras |",
    "|---|---:|---:|---:|---:|---:|---|",
]
for name in order:
    g = summary(rows.get((name, "goro"), []))
    o = summary(rows.get((name, "go"), []))
    cells = []
    for s in (g, o):
        if s["median"] is None:
            cells.append("**" + (s["bad"][0] if s["bad"] else "missing") + "**")
        else:
            cells.append(fmt(s["median"]))
    r = ratio(g, o)
    rng = [f"{fmt(s['min'])}–{fmt(s['max'])}" if s["median"] is not None else "-" for s in (g, o)]
    extras = []
    if name in units:
        extras.append(f"{units[name]}: goro {fmt_extra(name, g['extra'])}, Go {fmt_extra(name, o['extra'])}")
    for impl, s in (("goro", g), ("Go", o)):
        if s["bad"]:
            extras.append(f"{impl}: {', '.join(sorted(set(s['bad'])))} in {len(s['bad'])} run(s)")
    lines.append(
        f"| {name} | {cells[0]} | {cells[1]} | {'-' if r is None else f'{r:.2f}'} | {rng[0]} | {rng[1]} | {'; '.join(extras) or '-'} |"
    )
text = "\n".join(lines) + "\n"
with open(md, "w") as f:
    f.write(text)
print(text)

# ratios.dat: one column per procs count measured so far (gnuplot reads "NaN" as missing).
tables = {}
for path in glob.glob(os.path.join(out, "results-procs*.tsv")):
    m = re.search(r"results-procs(\d+)\.tsv$", path)
    if m:
        tables[int(m.group(1))] = load(path)
names = []
for p in sorted(tables):
    names += [n for n in tables[p][1] if n not in names]
with open(os.path.join(out, "ratios.dat"), "w") as f:
    f.write("benchmark " + " ".join(f'"procs={p}"' for p in sorted(tables)) + "\n")
    for name in names:
        vals = []
        for p in sorted(tables):
            t = tables[p][0]
            r = ratio(summary(t.get((name, "goro"), [])), summary(t.get((name, "go"), [])))
            vals.append("NaN" if r is None else f"{r:.4f}")
        f.write(name + " " + " ".join(vals) + "\n")
PY

echo "run.sh: wrote $tsv and $md" >&2
if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "datafile='$out/ratios.dat'; outfile='$out/bench-ratios.png'" "$here/plot.gp" &&
    echo "run.sh: wrote $out/bench-ratios.png" >&2
else
  echo "run.sh: gnuplot not installed; no plot" >&2
fi
