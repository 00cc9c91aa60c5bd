#!/usr/bin/env bash
# Profile the compiled server under `cadence-fast bench` with py-spy (a tool of this
# analysis only, not a project dependency: pip install py-spy into the bench venv).
#
#   benchmarks/profile_server.sh OUT_DIR [cadence-fast bench flags, e.g. -w 2000 -a 1]
# Writes OUT_DIR/server.raw (py-spy collapsed stacks), OUT_DIR/bench.json, and prints the
# per-layer summary (benchmarks/profile_summary.py). PYSPY_EXTRA adds py-spy flags (--idle, --gil).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${BENCH_SERVER_VENV:-/work/bench-venv}
out=${1:?usage: profile_server.sh OUT_DIR [bench flags]}; shift
mkdir -p "$out"
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -f "$out/profile.db"*
"$venv/bin/cadence-fast" server start --port "$port" --db "$out/profile.db" >"$out/server.log" 2>&1 &
server=$!
spy=
cleanup() { [[ -n $spy ]] && kill -INT "$spy" 2>/dev/null; kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 120); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.5; done
# shellcheck disable=SC2086
"$venv/bin/py-spy" record --format raw --threads --nonblocking --rate 250 ${PYSPY_EXTRA:-} \
  -o "$out/server.raw" --pid "$server" >"$out/py-spy.log" 2>&1 &
spy=$!
sleep 1
echo "load: $(uptime)"
"$venv/bin/cadence-fast" bench --address "127.0.0.1:$port" --json "$@" | tee "$out/bench.json"
kill -INT "$spy"; wait "$spy" || true; spy=
"$venv/bin/python" "$here/profile_summary.py" "$out/server.raw"
