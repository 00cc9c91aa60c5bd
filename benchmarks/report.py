"""Markdown tables from a pytest-benchmark JSON file, with the compiled-vs-pure gain of each pair.

    pytest benchmarks --benchmark-json=bench.json
    python benchmarks/report.py bench.json

Times are medians (the machine is shared: the median is the figure least moved by other
processes); `gain` = pure median / compiled median of the same benchmark and parameters.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict

_IMPL = re.compile(r"\b(compiled|pure)\b-?")


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _case(name: str) -> tuple[str, str | None]:
    """('test_x[pending=1]', 'compiled') from 'test_x[compiled-pending=1]'."""
    m = _IMPL.search(name)
    if not m:
        return name, None
    stripped = (name[: m.start()] + name[m.end() :]).replace("[]", "").replace("-]", "]")
    return stripped, m.group(1)


def render(data: dict) -> str:
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b.get("group") or b["name"]].append(b)
    out = []
    machine = data.get("machine_info", {})
    out.append(
        f"Python {machine.get('python_version', '?')} on {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"{data.get('datetime', '')}\n"
    )
    for group, items in groups.items():
        out.append(f"#### {group}\n")
        out.append("| benchmark | build | median | min | rounds | gain (pure/compiled) |")
        out.append("|---|---|---:|---:|---:|---:|")
        medians: dict[tuple[str, str | None], float] = {}
        for b in items:
            case, impl = _case(b["name"])
            medians[(case, impl)] = b["stats"]["median"]
        for b in sorted(items, key=lambda b: _case(b["name"])):
            case, impl = _case(b["name"])
            gain = ""
            if impl == "compiled" and (case, "pure") in medians:
                gain = f"{medians[(case, 'pure')] / b['stats']['median']:.2f}x"
            s = b["stats"]
            out.append(f"| {case} | {impl or '-'} | {_fmt(s['median'])} | {_fmt(s['min'])} | {s['rounds']} | {gain} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: report.py BENCHMARK_JSON", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        print(render(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
