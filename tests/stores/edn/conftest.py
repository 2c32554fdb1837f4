"""Fixtures of the EDN codec tests."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/ holds helpers shared across test folders (``_clojure``); make them
# importable however pytest was invoked.
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
