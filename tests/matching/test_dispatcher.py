"""The `_core` matching dispatcher, as loaded by the package (compiled in an installed
build) and straight from its .py source (uncompiled): both must behave the same."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import cadence_fast._core as core


def _source_module() -> ModuleType:
    path = Path(core.__file__).parent / "dispatcher.py"
    spec = importlib.util.spec_from_file_location("_dispatcher_uncompiled", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["package", "source"])
def dispatcher_cls(request: pytest.FixtureRequest) -> type:
    module = core.dispatcher if request.param == "package" else _source_module()  # type: ignore[attr-defined]
    return module.Dispatcher  # type: ignore[no-any-return]


async def test_offer_goes_to_oldest_live_poller(dispatcher_cls: type) -> None:
    loop = asyncio.get_running_loop()
    d = dispatcher_cls()
    assert d.offer("t0") is False
    gone, first, second = loop.create_future(), loop.create_future(), loop.create_future()
    for fut in (gone, first, second):
        d.wait(fut)
    gone.cancel()  # a poll that timed out or was cancelled is skipped
    assert d.poller_count() == 2
    assert d.offer("t1") is True and d.offer("t2") is True
    assert first.result() == "t1" and second.result() == "t2"
    assert d.offer("t3") is False and d.poller_count() == 0


async def test_buffer_keeps_order_and_requeued_tasks_go_first(dispatcher_cls: type) -> None:
    loop = asyncio.get_running_loop()
    d = dispatcher_cls()
    assert d.put("a") is False and d.put("b") is False
    assert d.put_front("z") is False
    assert d.ready_count() == 3
    assert [d.take(), d.take(), d.take(), d.take()] == ["z", "a", "b", None]
    fut = loop.create_future()
    d.wait(fut)
    assert d.put("c") is True and fut.result() == "c"
    assert d.ready_count() == 0


async def test_query_offers_come_before_the_buffer(dispatcher_cls: type) -> None:
    loop = asyncio.get_running_loop()
    d = dispatcher_cls()
    d.put("backlog")
    expired, pending = loop.create_future(), loop.create_future()
    d.offer_wait("old-query", expired)
    d.offer_wait("query", pending)
    expired.set_result(False)  # its sender gave up
    assert d.offer_count() == 1
    assert d.take() == "query" and pending.result() is True
    assert d.take() == "backlog"
    # With a poller waiting, an offer is taken at once.
    poll, taken = loop.create_future(), loop.create_future()
    d.wait(poll)
    d.offer_wait("q2", taken)
    assert poll.result() == "q2" and taken.result() is True


async def test_close_answers_everyone(dispatcher_cls: type) -> None:
    loop = asyncio.get_running_loop()
    d = dispatcher_cls()
    offer = loop.create_future()
    d.offer_wait("q", offer)  # queued: nobody polls yet
    polls = [loop.create_future() for _ in range(3)]
    for fut in polls:
        d.wait(fut)
    d.put("x")  # a poller takes it before close
    d.close()
    assert [f.result() for f in polls] == ["x", None, None]
    assert offer.result() is False
    assert d.is_closed()
    late = loop.create_future()
    d.wait(late)
    assert late.result() is None
    d.put("kept")
    assert d.drain_ready() == ["kept"] and d.ready_count() == 0
