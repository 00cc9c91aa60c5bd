"""Shared machinery of the micro-benchmarks (pytest-benchmark).

Run them from a compiled install (`pip install .`, see docs/performance.md) so every
hot-path benchmark measures BOTH builds of `_core` in one run:

- ``compiled``: the normal import, i.e. the Cython extension modules;
- ``pure``: `cadence_fast._core.load_pure(name)`, a second, uncompiled instance of the
  very same source file.

From the editable development install (nothing compiled) the suite switches itself to
CADENCE_FAST_PURE=1 and the ``compiled`` cases skip with a reason.

Benchmarks are synchronous functions; async code (stores, the engine) runs on one uvloop
loop per module (`loop` fixture), as it does in the server.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator

import pytest

try:
    import cadence_fast._core  # noqa: F401
except ImportError:  # NotCompiledError: the editable install; only the pure build can be measured
    os.environ["CADENCE_FAST_PURE"] = "1"
    for _name in [m for m in sys.modules if m.startswith("cadence_fast._core")]:
        del sys.modules[_name]

from support import IMPLS  # noqa: E402


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    """The `_core` build a hot-path benchmark runs on."""
    return str(request.param)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    try:
        import uvloop

        lp: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        lp = asyncio.new_event_loop()
    asyncio.set_event_loop(lp)
    yield lp
    lp.run_until_complete(lp.shutdown_asyncgens())
    lp.close()
    asyncio.set_event_loop(None)
