"""Where the server's time goes: py-spy's raw (collapsed) stacks summed by layer.

    py-spy record --format raw -o server.txt --pid PID --duration 30 [--threads]
    python benchmarks/profile_summary.py server.txt

Each sample is given to the layer of its innermost recognised frame (walking from the
leaf up), so protobuf encoding called by the engine counts as protobuf, and an SQLite
statement run by the writer thread counts as SQLite. Compiled `_core` functions have no
Python frame: their time shows under the engine/matching function that called them.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

#: (layer, pattern on one frame "function (file:line)"), first match from the leaf wins
LAYERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("sqlite (statements, commit, fsync)", r"sqlite3|persistence/sqlite/|persistence/sqlcommon"),
        ("protobuf (encode/decode/build)", r"google/protobuf|_upb|SerializeToString|FromString|MergeFromString"),
        ("grpc (transport, aio server/channel)", r"grpc/|grpc\._cython"),
        ("matching", r"cadence_fast/matching/|_core/dispatcher"),
        ("history engine (transitions, queues)", r"cadence_fast/history/|_core/mutable_state"),
        ("frontend API handlers", r"cadence_fast/api/"),
        ("other cadence_fast", r"cadence_fast/"),
        ("event loop (asyncio/uvloop)", r"asyncio/|uvloop|selectors\.py"),
        ("threading / executor", r"threading\.py|concurrent/futures"),
    )
)


def classify(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, pattern in LAYERS:
            if pattern.search(frame):
                return name
    return "other (interpreter, unresolved)"


def summarize(lines: list[str]) -> tuple[Counter[str], Counter[str], int]:
    layers: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        # py-spy --threads prefixes the thread as the first frame; keep it out of the leaf
        layers[classify(stack)] += count
        leaves[stack.split(";")[-1]] += count
        total += count
    return layers, leaves, total


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: profile_summary.py PY_SPY_RAW_FILE", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        layers, leaves, total = summarize(f.readlines())
    print(f"{total} samples\n")
    print("| layer | share of samples |")
    print("|---|---:|")
    for name, n in layers.most_common():
        print(f"| {name} | {100 * n / total:.1f} % |")
    print("\nhottest leaf frames:\n")
    print("| frame | share |")
    print("|---|---:|")
    for frame, n in leaves.most_common(20):
        print(f"| `{frame}` | {100 * n / total:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
