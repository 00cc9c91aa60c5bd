"""pytest plugin of the conformance kit (registered through the `pytest11` entry point).

An adapter's test module pulls the kit's test classes in and defines ONE fixture,
`store_url`, that yields the URL of a fresh, empty database (or schema)::

    from cadence_fast.persistence.testing.suite import *  # noqa: F403

    @pytest.fixture
    def store_url(tmp_path):
        yield f"sqlite:///{tmp_path}/kit.db"

This plugin provides `store`: that URL opened (create_schema=True) on an event loop
of its own, closed after the test. The kit's tests are `async def`; they run on that
same loop, because drivers such as psycopg's async pool belong to the loop that
opened them. No other async test machinery is needed in the adapter's repository.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from cadence_fast.persistence.registry import create_store
from cadence_fast.persistence.store import Store

#: The fixture holding the loop the store was opened on (a name nobody else uses).
LOOP_FIXTURE = "cadence_store_loop"


@pytest.fixture
def cadence_store_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The event loop `store` is opened on; the kit's async tests run on it."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def store(store_url: str, cadence_store_loop: asyncio.AbstractEventLoop) -> Iterator[Store]:
    """The adapter under test, opened with create_schema=True on a fresh database."""
    s = create_store(store_url)
    cadence_store_loop.run_until_complete(s.open(create_schema=True))
    try:
        yield s
    finally:
        cadence_store_loop.run_until_complete(s.close())


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Run `async def` tests that use `store` on the loop the store was opened on.

    A wrapper swaps the coroutine function for a synchronous one before any other
    implementation looks at it, so a repository's own async runner (which would start
    a new loop) leaves these tests alone.
    """
    loop = pyfuncitem.funcargs.get(LOOP_FIXTURE)
    original = pyfuncitem.obj
    if not isinstance(loop, asyncio.AbstractEventLoop) or not inspect.iscoroutinefunction(original):
        return (yield)

    def run_on_store_loop(**kwargs: Any) -> None:
        loop.run_until_complete(original(**kwargs))

    pyfuncitem.obj = run_on_store_loop
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original
