#!/usr/bin/env bash
# ../shared/bench/compare-temporal against the COMPILED server of a `pip install .` venv,
# with the machine's load (uptime) printed before and after, as docs/performance.md records it.
#
#   benchmarks/compare_temporal.sh [-w W] [-a A] [-r ROUNDS] [-i IN_FLIGHT]
# BENCH_SERVER_VENV: the venv holding the compiled build (default /work/bench-venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${BENCH_SERVER_VENV:-/work/bench-venv}
compare=${COMPARE_TEMPORAL:-$here/../../shared/bench/compare-temporal}
"$venv/bin/python" -c 'import cadence_fast._core as c; assert c.is_compiled()' \
  || { echo "$venv has no compiled cadence-fast (pip install . into it)" >&2; exit 2; }
echo "load before: $(uptime)"
SERVER_CMD="$venv/bin/cadence-fast server start --port {port} --db {db}" "$compare" "$@"
echo "load after:  $(uptime)"
