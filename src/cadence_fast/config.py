"""Server settings: one documented name each, from a TOML file, overridden by flags.

TOML keys (top level) are exactly the field names below; `[search_attributes]` maps a
custom search attribute name to its type (string, keyword, int, double, bool, datetime).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cadence_fast.persistence.visibility_query import SYSTEM_ATTRIBUTES

DEFAULT_PORT = 7833
DEFAULT_DB = "./cadence-fast.db"
TRANSPORTS = ("native", "grpcio")
SEARCH_ATTRIBUTE_TYPES = ("string", "keyword", "int", "double", "bool", "datetime")
SEARCH_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(ValueError):
    pass


@dataclass(slots=True)
class ServerConfig:
    #: Interface to listen on.
    host: str = "127.0.0.1"
    #: gRPC port (Cadence's frontend gRPC port is 7833).
    port: int = DEFAULT_PORT
    #: Store URL: sqlite:///PATH, sqlite://:memory:, postgresql://..., mysql://..., cassandra://...
    store: str = f"sqlite:///{DEFAULT_DB}"
    #: Number of history shards; fixed when a store is first used.
    shards: int = 4
    #: Logging level: debug, info, warning, error.
    log_level: str = "warning"
    #: Seconds in-flight calls get to finish on SIGINT/SIGTERM.
    shutdown_grace_seconds: float = 5.0
    #: Workflow payload limit in bytes (Cadence's blob size limit).
    blob_size_limit: int = 2 * 1024 * 1024
    #: Custom search attributes: name -> type.
    search_attributes: dict[str, str] = field(default_factory=dict)
    #: gRPC transport: "native" (cadence_fast._core.h2, the fast default) or "grpcio" (grpc.aio).
    transport: str = "native"

    @classmethod
    def from_toml(cls, path: str | Path) -> ServerConfig:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        return cls().merged(raw, source=str(path))

    def merged(self, values: dict[str, Any], source: str = "settings") -> ServerConfig:
        known = {f.name: f for f in fields(self)}
        out = ServerConfig(**{name: getattr(self, name) for name in known})
        for key, value in values.items():
            if value is None:
                continue
            if key not in known:
                raise ConfigError(f"{source}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
            setattr(out, key, value)
        out.validate(source)
        return out

    def validate(self, source: str = "settings") -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"{source}: port must be an integer 0..65535, got {self.port!r}")
        if not isinstance(self.shards, int) or not 1 <= self.shards <= 16384:
            raise ConfigError(f"{source}: shards must be an integer 1..16384, got {self.shards!r}")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"{source}: transport must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}")
        if not isinstance(self.store, str) or "://" not in self.store:
            raise ConfigError(f"{source}: store must be a URL like sqlite:///path.db, got {self.store!r}")
        for name, typ in self.search_attributes.items():
            # Names appear in SQL text (JSON paths) and in queries: identifiers only.
            if not isinstance(name, str) or not SEARCH_ATTRIBUTE_NAME.fullmatch(name):
                raise ConfigError(
                    f"{source}: search attribute name {name!r} must be letters, digits and _ (not first a digit)"
                )
            if name in SYSTEM_ATTRIBUTES:
                raise ConfigError(f"{source}: search attribute {name!r} is a Cadence system attribute")
            if typ not in SEARCH_ATTRIBUTE_TYPES:
                raise ConfigError(
                    f"{source}: search attribute {name!r} has unknown type {typ!r}; "
                    f"use one of {', '.join(SEARCH_ATTRIBUTE_TYPES)}"
                )
