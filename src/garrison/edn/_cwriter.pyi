"""Type stub of the EDN writer's C accelerator (``_cwriter.c``).

Only :mod:`garrison.edn._encoder` calls it; see ``docs/edn.md``.
"""

from collections.abc import Callable, Mapping
from typing import Any, Final

#: Nesting deeper than this is left to the pure writer.
MAX_DEPTH: Final[int]

class Fallback(Exception):  # noqa: N818 - a private signal, not an error users see
    """The pure writer must write this value (deep nesting, sort ties, a changed container)."""

def configure(
    *,
    keyword: type,
    symbol: type,
    bigint: type,
    vector: type,
    frozen_map: type,
    tagged: type,
    raw: type,
    uuid: type,
    scalars: Mapping[type, Callable[[Any], str]],
    tag_match: Callable[[str], object],
    named_text: Callable[[Any, bool], str],
    long_int_text: Callable[[int], str],
    orjson_dumps: Callable[[Any], bytes] | None,
    edn_map: type,
) -> None:
    """Give the writer the codec's types and helpers (before the first :func:`encode`)."""

def encode(
    value: Any,
    sort_keys: bool,
    strict: bool,
    coerce: Callable[[Any, int], Any],
    /,
) -> str:
    """The pure writer's text of ``value``; raises :class:`Fallback` to hand over."""
