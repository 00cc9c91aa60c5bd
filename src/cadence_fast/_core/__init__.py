"""The compiled hot path (Cython, pure-Python mode).

Each module listed in `COMPILED` is a plain `.py` file that `setup.py` compiles into an
extension module. An installed package must use the compiled build: importing a
module that should be compiled but is not fails loudly, unless CADENCE_FAST_PURE=1,
which loads the very same sources uncompiled (for debugging, and for the benchmarks
that measure what compilation buys).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

#: Modules of this package that the build compiles.
COMPILED: tuple[str, ...] = tuple(
    sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem != "__init__")
)

PURE = os.environ.get("CADENCE_FAST_PURE", "") not in ("", "0", "false", "no")


class NotCompiledError(ImportError):
    pass


def _load(name: str) -> ModuleType:
    full = f"{__name__}.{name}"
    if PURE:
        # Load the .py source even when a compiled extension sits beside it.
        spec = importlib.util.spec_from_file_location(full, Path(__file__).parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        return module
    module = importlib.import_module(full)
    if not str(getattr(module, "__file__", "")).endswith((".so", ".pyd")):
        raise NotCompiledError(
            f"{full} is not compiled (loaded from {module.__file__}); build the package with "
            "`pip install .`, or set CADENCE_FAST_PURE=1 to run the pure-Python sources"
        )
    return module


def load_pure(name: str) -> ModuleType:
    """A separate, uncompiled instance of `_core.<name>` from its .py source.

    Lets one process compare the compiled and the pure build (the benchmarks do).
    """
    spec = importlib.util.spec_from_file_location(
        f"{__name__}._pure_{name}", Path(__file__).parent / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def is_compiled() -> bool:
    return not PURE


for _name in COMPILED:
    globals()[_name] = _load(_name)
