"""``python -m garrison.cli``: the same as the ``garrison`` command."""

from __future__ import annotations

import sys

from garrison.cli import main

sys.exit(main())
