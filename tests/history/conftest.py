from __future__ import annotations

import os

os.environ.setdefault("CADENCE_FAST_PURE", "1")
