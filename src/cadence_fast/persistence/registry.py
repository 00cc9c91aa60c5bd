"""The adapter registry: store URL scheme -> Store class, filled through pluggy hooks."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

import pluggy

from cadence_fast.persistence import hookspecs
from cadence_fast.persistence.store import Store


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs.StorageSpec)
    from cadence_fast.persistence.sqlite import plugin as sqlite_plugin

    pm.register(sqlite_plugin, name="cadence_fast.sqlite")
    pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    return pm


def adapters() -> dict[str, type[Store]]:
    """Every registered adapter by URL scheme."""
    found: dict[str, type[Store]] = {}
    for classes in plugin_manager().hook.cadence_fast_storage_adapters():
        for cls in classes:
            for scheme in cls.schemes:
                found.setdefault(scheme, cls)
    return found


def scheme_of(url: str) -> str:
    return urlsplit(url).scheme.split("+", 1)[0].lower()


def create_store(url: str) -> Store:
    """A Store for `url` (not yet opened). ValueError names the scheme if no adapter serves it."""
    scheme = scheme_of(url)
    known = adapters()
    if not scheme or scheme not in known:
        names = ", ".join(sorted(known)) or "none"
        hint = ""
        if scheme in ("postgresql", "postgres", "mysql", "cassandra"):
            hint = f" (install the cadence-fast-{'postgres' if scheme.startswith('postgres') else scheme} plugin)"
        raise ValueError(f"no storage adapter for store URL scheme {scheme!r}{hint}; known schemes: {names}")
    return known[scheme](url)
