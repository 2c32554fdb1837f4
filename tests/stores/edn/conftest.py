"""Fixtures of the EDN codec tests."""

from __future__ import annotations
