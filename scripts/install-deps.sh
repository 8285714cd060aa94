#!/usr/bin/env bash
# The one list of goro's Debian dependencies. Installs only what is missing.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh bench    also the benchmark dependencies (Go, gnuplot)
set -euo pipefail
packages=(
  build-essential cmake pkg-config    # toolchain
  libboost-context-dev                # context switch (Boost.Context fcontext)
  libgtest-dev                        # GoogleTest
  libsqlite3-dev sqlite3              # registrar: the embedded database
  libcli11-dev                        # registrar: command line
  nlohmann-json3-dev                  # registrar: JSON rosters and output
  clang-format                        # style check in CI
  clang                               # CI's second compiler (make test-clang: -Wthread-safety)
  binutils                            # addr2line, used by the goroutine dump
  libhiredis-dev                      # examples/redis_clients: a C client on goro::net::wait_readable
)
if [ "${1:-}" = bench ]; then
  packages+=(golang-go gnuplot-nox)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
