#!/usr/bin/env bash
# HTTP hello world, goro::http against Go's net/http, measured with wrk (keep-alive).
#
#   bench/http.sh GORO_SERVER GO_BENCH PROCS
#
# Starts each server on a loopback port with PROCS workers (GOMAXPROCS for Go), runs
# `wrk -t2 -c100 -d${GORO_HTTP_SECONDS:-10}s --latency` against it, alternating goro and Go
# for GORO_BENCH_ROUNDS rounds (default 3), and prints requests/s and p99 latency (medians)
# with the ratio goro/Go. Writes results-http-procsN.md next to GORO_SERVER.
# wrk runs on the same machine: both servers share the cores with it alike.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 GORO_SERVER GO_BENCH PROCS" >&2
  exit 2
fi
goro_server=$1
go_bench=$2
procs=$3
rounds=${GORO_BENCH_ROUNDS:-3}
seconds=${GORO_HTTP_SECONDS:-10}
for exe in "$goro_server" "$go_bench"; do
  if [ ! -x "$exe" ]; then
    echo "http.sh: $exe is not an executable" >&2
    exit 2
  fi
done
if ! command -v wrk >/dev/null; then
  echo "http.sh: wrk is not installed (scripts/install-deps.sh bench)" >&2
  exit 2
fi
out=$(cd "$(dirname "$goro_server")" && pwd)
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_server IMPL: starts it, sets server_pid and addr (from its "listening on" line).
start_server() {
  local impl=$1 log=$tmp/$1.out
  : >"$log"
  if [ "$impl" = goro ]; then
    "$goro_server" --procs "$procs" --addr 127.0.0.1:0 >"$log" 2>"$tmp/$impl.err" &
  else
    "$go_bench" --procs "$procs" --serve-http 127.0.0.1:0 >"$log" 2>"$tmp/$impl.err" &
  fi
  server_pid=$!
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$log")
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "http.sh: the $impl server did not start:" >&2
  cat "$tmp/$impl.err" >&2
  exit 1
}

printf 'round\timpl\trequests_per_s\tp99_ms\n' >"$tmp/results.tsv"
for ((r = 1; r <= rounds; r++)); do
  for impl in goro go; do
    start_server "$impl"
    wrk -t2 -c100 -d"${seconds}s" --latency "http://$addr/" >"$tmp/wrk.out" 2>&1 || true
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.out")
    p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000}
                             else if (v ~ /ms$/) {sub(/ms$/, "", v)}
                             else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' \
          "$tmp/wrk.out")
    errors=$(grep -E 'Socket errors|Non-2xx' "$tmp/wrk.out" || true)
    if [ -z "$rps" ]; then
      echo "http.sh: wrk failed against $impl:" >&2
      cat "$tmp/wrk.out" >&2
      rps=NaN
      p99=NaN
    fi
    [ -n "$errors" ] && echo "http.sh: $impl round $r: $errors" >&2
    printf '%s\t%s\t%s\t%s\n' "$r" "$impl" "$rps" "$p99" >>"$tmp/results.tsv"
    printf '  %-5s http_hello  %s req/s  p99 %s ms\n' "$impl" "$rps" "$p99" >&2
  done
done

python3 - "$tmp/results.tsv" "$out/results-http-procs$procs.md" "$procs" "$seconds" <<'PY'
import csv, math, statistics, sys

tsv, md, procs, seconds = sys.argv[1:5]
vals = {}
with open(tsv) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        for key in ("requests_per_s", "p99_ms"):
            v = float(row[key])
            if not math.isnan(v):
                vals.setdefault((row["impl"], key), []).append(v)


def med(impl, key):
    v = vals.get((impl, key))
    return statistics.median(v) if v else None


def fmt(x, digits):
    return "-" if x is None else f"{x:,.{digits}f}"


g_rps, o_rps = med("goro", "requests_per_s"), med("go", "requests_per_s")
g_p99, o_p99 = med("goro", "p99_ms"), med("go", "p99_ms")
ratio = None if not (g_rps and o_rps) else g_rps / o_rps
text = "\n".join([
    f"procs={procs}, wrk -t2 -c100 -d{seconds}s --latency, medians",
    "",
    "| benchmark | goro req/s | Go req/s | goro/Go req/s | goro p99 ms | Go p99 ms |",
    "|---|---:|---:|---:|---:|---:|",
    f"| http_hello | {fmt(g_rps, 0)} | {fmt(o_rps, 0)} | {fmt(ratio, 2)} | {fmt(g_p99, 2)} | {fmt(o_p99, 2)} |",
]) + "\n"
with open(md, "w") as f:
    f.write(text)
print(text)
PY
