"""The compiled hot path (`cadence_fast._core`) in both builds.

The suite runs against the installed package, whose `_core` modules are Cython extensions
(CI installs with `pip install .`); the same sources must also run uncompiled with
CADENCE_FAST_PURE=1. These tests prove both: the installed modules are the compiled ones,
and the engine-level suites pass again in a subprocess on the pure sources.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cadence_fast._core as core

ROOT = Path(__file__).resolve().parent.parent


def test_core_modules_are_the_build_the_environment_asks_for() -> None:
    assert set(core.COMPILED) >= {"mutable_state", "dispatcher"}
    for name in core.COMPILED:
        module_file = str(getattr(core, name).__file__)
        if core.PURE:
            assert module_file.endswith(".py"), module_file
        else:
            # An installed package runs the extensions; an uncompiled import would have
            # raised NotCompiledError at `import cadence_fast._core`.
            assert module_file.endswith((".so", ".pyd")), module_file


def test_pure_twin_loads_from_source() -> None:
    pure = core.load_pure("mutable_state")
    assert str(pure.__file__).endswith("mutable_state.py")


def test_engine_suites_pass_on_the_uncompiled_sources() -> None:
    env = {**os.environ, "CADENCE_FAST_PURE": "1"}
    suites = ["tests/history/test_basic.py", "tests/history/test_decisions.py", "tests/matching/test_dispatcher.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
