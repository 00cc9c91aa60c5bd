"""Build hook: compile the `_core` hot path with Cython.

Everything else is declared in pyproject.toml. The `_core` sources are plain Python
(Cython's pure-Python mode), so the very same files run uncompiled when
CADENCE_FAST_PURE=1 is set; `pip install .` always compiles them.
"""

from __future__ import annotations

import glob
import os

from Cython.Build import cythonize
from setuptools import setup

CORE_SOURCES = sorted(
    p for p in glob.glob(os.path.join("src", "cadence_fast", "_core", "*.py")) if not p.endswith("__init__.py")
)

setup(
    ext_modules=cythonize(
        CORE_SOURCES,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        quiet=True,
    ),
)
