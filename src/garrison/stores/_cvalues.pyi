"""Type stub of the stored-value encoder's C accelerator (``_cvalues.c``).

Only :mod:`garrison.stores._values` calls it; see its module docstring.
"""

from collections.abc import Callable
from typing import Any, Final

#: JSON nesting deeper than this is left to the pure encoder.
MAX_DEPTH: Final[int]

def configure(
    *,
    keyword: type,
    symbol: type,
    vector: type,
    uuid: type,
    datetime: type,
    date: type,
    tag: Callable[[Any], Any],
) -> None:
    """Give the encoder the types it writes itself and the pure tag function (before encoding)."""

def encode(value: Any, /) -> str | None:
    """The stored text of ``value``, or ``None`` to leave it to the pure encoder."""
