#!/usr/bin/env bash
# Profile the compiled server under `cadence-fast bench` with py-spy (a tool of this
# analysis only, not a project dependency: pip install py-spy into the bench venv).
#
#   benchmarks/profile_server.sh OUT_DIR [cadence-fast bench flags, e.g. -w 2000 -a 1]
# Writes OUT_DIR/server.raw (py-spy collapsed stacks), OUT_DIR/bench.json, and prints the
# per-layer summary (benchmarks/profile_summary.py). PYSPY_FLAGS replaces the sampling flags
# (default --nonblocking; e.g. PYSPY_FLAGS=--native to see C frames: grpc, upb, uvloop, sqlite).
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
cleanup() {
  kill "$server" 2>/dev/null || true
  if [[ -n $spy ]]; then kill -INT "$spy" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 120); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.5; done
# shellcheck disable=SC2086
"$venv/bin/py-spy" record --format raw --threads --rate 250 ${PYSPY_FLAGS---nonblocking} \
  -o "$out/server.raw" --pid "$server" >"$out/py-spy.log" 2>&1 &
spy=$!
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }  # utime + stime, clock ticks
echo "load: $(uptime)"
before=$(cpu)
"$venv/bin/cadence-fast" bench --address "127.0.0.1:$port" --json "$@" | tee "$out/bench.json"
after=$(cpu)
kill -INT "$spy" 2>/dev/null || echo "py-spy ended early: $(tail -1 "$out/py-spy.log")" >&2
wait "$spy" || true; spy=
"$venv/bin/python" - "$out/bench.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); ticks = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print(f"server CPU: {ticks:.1f} s over {b['seconds']} s wall ({100 * ticks / b['seconds']:.0f} % of one core), "
      f"{1000 * ticks / max(1, b['completed']):.2f} ms CPU per workflow (py-spy sampling included)")
PY
"$venv/bin/python" "$here/profile_summary.py" "$out/server.raw"
