"""The EDN reader: text to Python values (see :mod:`garrison.stores.edn._types`).

One master regular expression splits the text into tokens at C speed
(``re.finditer``); a single loop turns tokens into values with an explicit
stack, so nesting depth is limited only by memory, never by Python's recursion
limit. Nothing read is ever evaluated.

Decisions where EDN and Clojure leave room (documented in ``docs/edn.md``):

- Duplicate map keys and set elements are an error in strict mode (as in
  Clojure's reader). In lenient mode (the default) the last value of a key wins
  and repeated set elements collapse, so a file is never refused for them.
- Lenient mode reads keywords and symbols Clojure prints but cannot read back,
  such as ``:embed-token/5fe3`` (a name starting with a digit); strict mode
  accepts exactly the symbols and keywords ``clojure.edn`` accepts.
- ``#inst`` with more than microsecond precision stays a :class:`Tagged` value
  (Python's ``datetime`` cannot hold it), so nothing is rounded away.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from garrison.exceptions import EdnDepthError, EdnSyntaxError
from garrison.stores.edn._atoms import (
    apply_tag,
    check_named,
    long_int,
    read_char,
    read_number,
    syntax_error,
    unescape,
    where,
)
from garrison.stores.edn._types import FrozenMap, Keyword, Symbol, Tagged, Vector

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["iter_text_values"]

# Characters that end a token (EDN whitespace, commas, delimiters, and the
# macro characters Clojure's reader stops at).
_TOKEN_CHAR: Final = r'[^\s,()\[\]{}"\\;]'  # noqa: S105 - a regex, not a password

# Group numbers of the master pattern; ``match.lastindex`` names the token kind.
# The reader loop spells them as literals (a constant is cheaper than a global
# on this path); the names here document them. Openers are 6..9 so that the
# frame kind of a collection is ``group - 5``.
_STRING, _KEYWORD, _INT, _FLOAT, _SYMBOL = 1, 2, 3, 4, 5
_OPEN_MAP, _OPEN_VEC, _OPEN_LIST, _OPEN_SET, _CLOSE, _INST_FAST = 6, 7, 8, 9, 10, 11
_DISCARD, _NS_MAP, _SYMBOLIC, _TAG, _CHAR, _NUMBER, _OTHER, _END = 12, 13, 14, 15, 16, 17, 18, 19

_MASTER: Final = re.compile(
    # Whitespace, commas and comments before the token. Possessive so that a
    # trailing comment is never re-read as a token by backtracking.
    r"(?:[\s,]++|;[^\n]*+)*+"
    r"(?:"
    r'"([^"\\]*+(?:\\.[^"\\]*+)*+)"'  # 1 string body
    rf"|:({_TOKEN_CHAR}*)"  # 2 keyword text
    rf"|([+-]?(?:0|[1-9][0-9]*))(?!{_TOKEN_CHAR})"  # 3 plain int
    rf"|([+-]?[0-9]+(?:\.[0-9]*(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+))(?!{_TOKEN_CHAR})"  # 4 float
    # 5 symbol, nil, true, false (a sign followed by a digit starts a number)
    rf"|((?:[+-](?![0-9])|[^\s,()\[\]{{}}\"\\;#0-9:+-]){_TOKEN_CHAR}*)"
    r"|(\{)"  # 6
    r"|(\[)"  # 7
    r"|(\()"  # 8
    r"|(#\{)"  # 9
    r"|([\])}])"  # 10 any closer
    # 11 the #inst Clojure prints, straight to datetime.fromisoformat
    r'|#inst[\s,]*+"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
    r'(?:\.[0-9]{3}(?:[0-9]{3})?)?(?:Z|[+-][0-9]{2}:[0-9]{2}))"'
    r"|(#_)"  # 12
    rf"|#:({_TOKEN_CHAR}*)(?:[\s,]|;[^\n]*)*\{{"  # 13 namespaced map: namespace
    rf"|##({_TOKEN_CHAR}*)"  # 14 ##Inf ##-Inf ##NaN
    rf"|#([A-Za-z]{_TOKEN_CHAR}*)"  # 15 tag
    rf"|\\(.{_TOKEN_CHAR}*)"  # 16 character
    rf"|([+-]?[0-9]{_TOKEN_CHAR}*)"  # 17 any other number (N, M, ratio, radix, bad)
    r"|([^\s,;])"  # 18 anything else: an error
    # 19 the end, after trailing whitespace and comments: without it finditer
    # would search on from inside a trailing comment.
    r"|(\Z)"
    r")",
    re.DOTALL,
)

# Frame kinds of the parse stack. Collections sort below _TOP so that one
# comparison decides "append to the open collection"; a collection's kind is
# its opener's group number minus 5.
_MAP, _VEC, _LIST, _SET, _NSMAP, _TOP, _TAGGED, _DISCARDED = 1, 2, 3, 4, 5, 8, 9, 10
_CLOSERS: Final = {_VEC: "]", _LIST: ")", _MAP: "}", _SET: "}", _NSMAP: "}"}
_KIND_NAMES: Final = {_VEC: "vector", _LIST: "list", _MAP: "map", _SET: "set", _NSMAP: "map"}
_CONSTANTS: Final[dict[str, Any]] = {"nil": None, "true": True, "false": False}
_SYMBOLIC_VALUES: Final = {"Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}


def _freeze(value: Any) -> Any:
    """The hashable form of a value used as a map key or set element."""
    kind = type(value)
    if kind is list:
        return Vector(_freeze(v) for v in value)
    if kind is dict:
        return FrozenMap({_freeze(k): _freeze(v) for k, v in value.items()})
    if kind is tuple:
        return tuple(_freeze(v) for v in value)
    if kind is Tagged:
        return Tagged(value.tag, _freeze(value.value))
    return value


def _build(kind: int, items: list[Any], extra: str, text: str, start: int, *, strict: bool) -> Any:
    """Close a collection: ``items`` holds its elements (alternating keys and values for maps)."""
    if kind == _VEC:
        return items
    if kind == _LIST:
        return tuple(items)
    if kind == _SET:
        try:
            result: Any = frozenset(items)
        except TypeError:
            try:
                result = frozenset(_freeze(v) for v in items)
            except RecursionError:
                raise EdnDepthError(
                    "set element nested too deeply to be made hashable", **where(text, start)
                ) from None
        if Tagged in map(type, result):
            # A tagged element keeps its hashable twin (Vector, FrozenMap) inside.
            result = frozenset(_freeze(v) for v in items)
        if len(result) != len(items) and strict:
            raise syntax_error(text, start, "duplicate set element (strict mode)")
        return result
    if len(items) % 2:
        raise syntax_error(text, start, "map literal must contain an even number of forms")
    if kind == _NSMAP:
        for i in range(0, len(items), 2):
            key = items[i]
            key_type = type(key)
            if key_type is Keyword or key_type is Symbol:
                if key.namespace is None:
                    items[i] = key_type(f"{extra}/{key.text}")
                elif key.namespace == "_":
                    items[i] = key_type(key.name)
    it = iter(items)
    try:
        result = dict(zip(it, it, strict=True))
    except TypeError:
        it = iter(items)
        try:
            result = {_freeze(k): v for k, v in zip(it, it, strict=True)}
        except RecursionError:
            raise EdnDepthError(
                "map key nested too deeply to be made hashable", **where(text, start)
            ) from None
    if Tagged in map(type, result):
        it = iter(items)
        result = {_freeze(k): v for k, v in zip(it, it, strict=True)}
    if len(result) * 2 != len(items) and strict:
        raise syntax_error(text, start, "duplicate map key (strict mode)")
    return result


def iter_text_values(text: str, *, strict: bool = False, single: bool = False) -> Iterator[Any]:
    """Yield each top-level value of ``text`` in order (the reader's core loop).

    With ``single``, a second top-level value is an error (``loads``).
    """
    count = 0
    closed_at = 0
    keywords: dict[str, Keyword] = {}
    symbols: dict[str, Any] = dict(_CONSTANTS)
    stack: list[tuple[int, int, list[Any], str]] = []
    items: list[Any] = []
    kind, start, extra = _TOP, 0, ""
    append = items.append
    value: Any
    closers = _CLOSERS
    fromisoformat = datetime.fromisoformat
    group: int
    for m in _MASTER.finditer(text):
        # Never None: every alternative of _MASTER is a group.
        group = m.lastindex  # type: ignore[assignment]
        # Literal group numbers and kinds: see _MASTER and the frame kinds above.
        if group == 2:  # keyword
            body = m[2]
            value = keywords.get(body)
            if value is None:
                check_named(text, body, m.start(2) - 1, keyword=True, strict=strict)
                value = keywords[body] = Keyword(body)
        elif group == 1:  # string
            value = m[1]
            if "\\" in value:
                value = unescape(value, text, m.start(1))
        elif group == 3:  # int
            try:
                value = int(m[3])
            except ValueError:  # over Python's 4300-digit limit for int(str)
                value = long_int(m[3])
        elif group == 10:  # closer
            closer = m[10]
            if closers.get(kind) != closer:
                raise _mismatched(text, m.start(10), closer, kind, start)
            if kind == 2:  # vector
                value = items
            elif kind == 1 and not len(items) & 1:  # map, the common case inline
                it = iter(items)
                try:
                    value = dict(zip(it, it, strict=False))  # even length checked above
                except TypeError:
                    value = _build(kind, items, extra, text, start, strict=strict)
                else:
                    if (strict and len(value) * 2 != len(items)) or Tagged in map(type, value):
                        value = _build(kind, items, extra, text, start, strict=strict)
            else:
                value = _build(kind, items, extra, text, start, strict=strict)
            closed_at = start
            kind, start, items, extra = stack.pop()
            append = items.append
        elif 6 <= group <= 9:  # { [ ( #{
            stack.append((kind, start, items, extra))
            kind = group - 5
            start = m.start(group)
            items = []
            append = items.append
            continue
        elif group == 5:  # symbol, nil, true, false
            body = m[5]
            value = symbols.get(body, symbols)
            if value is symbols:
                check_named(text, body, m.start(5), keyword=False, strict=strict)
                value = symbols[body] = Symbol(body)
        elif group == 4:  # float
            value = float(m[4])
        elif group == 11:  # #inst as Clojure prints it
            try:
                value = fromisoformat(m[11])
            except ValueError:
                value = apply_tag("inst", m[11], text, m.start())
        elif group == 13:  # #:ns{
            namespace = m[13]
            if not namespace or namespace.startswith(":"):
                raise syntax_error(
                    text, m.start(), "namespaced map needs a namespace (:: aliases are not EDN)"
                )
            stack.append((kind, start, items, extra))
            kind, start, items, extra = _NSMAP, m.start(), [], namespace
            append = items.append
            continue
        elif group == 15:  # #tag
            stack.append((kind, start, items, extra))
            kind, start, extra = _TAGGED, m.start(15) - 1, m[15]
            continue
        elif group == 12:  # #_
            stack.append((kind, start, items, extra))
            kind, start, extra = _DISCARDED, m.start(12), ""
            continue
        elif group == 16:  # character
            value = read_char(m[16], text, m.start(16) - 1)
        elif group == 17:  # other numbers
            value = read_number(m[17], text, m.start(17))
        elif group == 14:  # ##Inf ##-Inf ##NaN
            value = _SYMBOLIC_VALUES.get(m[14])
            if value is None:
                raise syntax_error(text, m.start(14) - 2, f"unknown symbolic value ##{m[14]}")
        elif group == 19:  # end of input
            break
        else:
            raise _unexpected(text, m.start(18))
        if kind < 8:  # inside a collection
            append(value)
            continue
        # Slow path: prefix forms (#tag, #_) waiting for this value, or the top level.
        while kind >= _TAGGED:
            if kind == _DISCARDED:
                kind, start, items, extra = stack.pop()
                append = items.append
                break
            value = apply_tag(extra, value, text, start)
            kind, start, items, extra = stack.pop()
            append = items.append
        else:
            if kind == _TOP:
                if single and count:
                    at = closed_at if group == 10 else m.start(group)
                    raise syntax_error(text, at, "more than one value (loads reads exactly one)")
                count += 1
                yield value
            else:
                append(value)
    if kind != _TOP:
        if kind >= _TAGGED:
            raise syntax_error(text, start, "a tag or #_ at the end of input has no form")
        raise syntax_error(text, start, f"unterminated {_KIND_NAMES[kind]} (end of input)")


def _mismatched(text: str, pos: int, closer: str, kind: int, start: int) -> EdnSyntaxError:
    if kind == _TOP:
        return syntax_error(text, pos, f"unmatched delimiter {closer}")
    if kind >= _TAGGED:
        return syntax_error(text, pos, "a tag or #_ needs a form to apply to")
    opened = where(text, start)["line"]
    what = _KIND_NAMES[kind]
    return syntax_error(text, pos, f"{what} opened at line {opened} closed by {closer}")


def _unexpected(text: str, pos: int) -> EdnSyntaxError:
    # Find the first non-space position for an exact column.
    while pos < len(text) and text[pos] in " \t\r\n\f\v,":
        pos += 1
    if pos >= len(text):
        return syntax_error(text, pos, "unexpected end of input")
    char = text[pos]
    if char == '"':
        return syntax_error(text, pos, "unterminated string")
    if char == "#":
        following = text[pos + 1 : pos + 2]
        if following == "=":
            return syntax_error(text, pos, "#= (read-eval) is never evaluated and is not EDN")
        if following == ":":
            return syntax_error(text, pos, "namespaced map needs a namespace and a map")
        return syntax_error(text, pos, f"unsupported dispatch #{following}")
    return syntax_error(text, pos, f"unexpected character {char!r}")
