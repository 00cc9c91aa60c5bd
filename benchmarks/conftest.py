"""Shared machinery of the micro-benchmarks (pytest-benchmark).

Run them from a compiled install (`pip install .`, see docs/performance.md) so every
hot-path benchmark measures BOTH builds of `_core` in one run:

- ``compiled``: the normal import, i.e. the Cython extension modules;
- ``pure``: `cadence_fast._core.load_pure(name)`, a second, uncompiled instance of the
  very same source file.

From the editable development install (CADENCE_FAST_PURE=1) the ``compiled`` cases skip
with a reason: there is nothing compiled to measure there.

Benchmarks are synchronous functions; async code (stores, the engine) runs on one uvloop
loop per module (`loop` fixture), as it does in the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from support import IMPLS


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
