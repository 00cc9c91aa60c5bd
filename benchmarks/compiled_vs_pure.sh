#!/usr/bin/env bash
# End to end, what the compiled _core buys: `cadence-fast bench` against the same installed
# server run compiled and with CADENCE_FAST_PURE=1, alternating, ROUNDS times each, with
# the server's CPU seconds per workflow (from /proc) next to the throughput.
#
#   benchmarks/compiled_vs_pure.sh [ROUNDS] [cadence-fast bench flags, default -w 1000 -a 1]
set -euo pipefail
venv=${BENCH_SERVER_VENV:-/work/bench-venv}
rounds=${1:-2}; shift || true
flags=("$@"); [[ ${#flags[@]} -gt 0 ]] || flags=(-w 1000 -a 1)
tmp=$(mktemp -d)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "load before: $(uptime)"
for r in $(seq 1 "$rounds"); do
  for build in compiled pure; do
    port=$(free_port); rm -f "$tmp"/db*
    pure=0; [[ $build == pure ]] && pure=1
    CADENCE_FAST_PURE=$pure "$venv/bin/cadence-fast" server start --port "$port" --db "$tmp/db" >"$tmp/log" 2>&1 &
    server=$!
    for _ in $(seq 1 120); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.5; done
    before=$(awk '{print $14 + $15}' "/proc/$server/stat")
    out=$("$venv/bin/cadence-fast" bench --address "127.0.0.1:$port" --json "${flags[@]}")
    after=$(awk '{print $14 + $15}' "/proc/$server/stat")
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    "$venv/bin/python" - "$out" "$before" "$after" "$(getconf CLK_TCK)" "$r" "$build" <<'PY'
import json, sys
b = json.loads(sys.argv[1]); cpu = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4])
per = 1000 * cpu / max(1, b["completed"])
print(f"round {sys.argv[5]} {sys.argv[6]:8s} {b['workflows_per_second']:7.1f} wf/s  p50 {b['p50_ms']:8.1f} ms  "
      f"server CPU {per:.2f} ms/workflow")
PY
  done
done
echo "load after:  $(uptime)"
