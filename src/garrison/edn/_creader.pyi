"""Type stub of the EDN reader's C accelerator (``_creader.c``).

Only :mod:`garrison.edn._api` calls it; see ``docs/edn.md``.
"""

from collections.abc import Iterator
from typing import Any, Final

#: Nesting deeper than this is left to the pure reader.
MAX_DEPTH: Final[int]

class Unsupported(Exception):  # noqa: N818 - a private signal, not an error users see
    """The pure reader must read this text (an error, a rare construct, deep nesting)."""

def loads(text: str, strict: bool, max_digits: int = ..., /) -> Any:
    """The one EDN value of ``text``; raises :class:`Unsupported` to hand over."""

class Scanner(Iterator[Any]):
    """The top-level values of ``text`` one at a time; raises :class:`Unsupported` to hand over."""

    @property
    def count(self) -> int:
        """How many values the scanner has returned."""

    def __init__(self, text: str, strict: bool, max_digits: int = ...) -> None: ...
    def __next__(self) -> Any: ...
