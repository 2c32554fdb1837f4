"""The EDN reader: text to Python values (see :mod:`garrison.edn._types`).

One master regular expression splits the text into tokens at C speed
(``re.finditer``); a single loop turns tokens into values with an explicit
stack, so Python's recursion limit never bounds the nesting depth: the
reader's own limit, :data:`MAX_DEPTH`, does. Nothing read is ever evaluated.

Hostile input is bounded (``docs/edn.md``, "Limits"): nesting deeper than
:data:`MAX_DEPTH` in any position, numbers with more than ``max_digits``
digits, and maps or sets with more than :data:`MAX_SAME_HASH` keys of one
hash value are errors with a line and column, so a small text can neither
crash the process nor keep it busy for long.

Decisions where EDN and Clojure leave room (documented in ``docs/edn.md``):

- Map keys and set elements follow Clojure's ``=``, not Python's ``==``:
  ``{0 :a false :b}`` and ``#{1 true 1.0 1M}`` keep every entry (as an
  :class:`EdnMap` / :class:`EdnSet`, see :mod:`garrison.edn._equality`).
  Keys Clojure calls equal (``1`` and ``1N``, ``[1]`` and ``(1)``) are
  duplicates: an error in strict mode (as in Clojure's reader, "Duplicate
  key"); in lenient mode (the default) the first key stays with the last
  value, and the first of equal set elements stays, so a file is never
  refused for them.
- Lenient mode reads keywords and symbols Clojure prints but cannot read back,
  such as ``:embed-token/5fe3`` (a name starting with a digit); strict mode
  accepts exactly the symbols and keywords ``clojure.edn`` accepts.
- ``#inst`` with more than microsecond precision stays a :class:`Tagged` value
  (Python's ``datetime`` cannot hold it), so nothing is rounded away.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from garrison.edn._atoms import (
    MAX_DIGITS,
    SYMBOL_TEXT,
    TOKEN_CHAR,
    apply_tag,
    check_named,
    read_char,
    read_number,
    syntax_error,
    unescape,
    where,
)
from garrison.edn._equality import NO_DUPLICATE, EdnMap, distinct_map, distinct_set
from garrison.edn._types import FrozenMap, Keyword, Symbol, Tagged, Vector
from garrison.edn._writer import Writer
from garrison.exceptions import EdnDepthError, EdnError, EdnSyntaxError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["MAX_DEPTH", "MAX_SAME_HASH", "iter_text_values"]

#: Deepest nesting the reader accepts, counting every collection, tag and
#: ``#_`` in any position. Clojure's own reader overflows its stack at about
#: 5,000 levels, and CPython hashes a nested key recursively in C.
MAX_DEPTH: Final = 10_000
#: Most map keys (or set elements) of one collection that may share a hash
#: value: a dict or set of n keys with one hash costs n squared comparisons.
MAX_SAME_HASH: Final = 100
# Keys of these types hash through a randomized str hash: never checked.
_SALTED: Final = frozenset({str, Keyword, Symbol})
_INT_ONLY: Final = frozenset({int})
_HASH_MODULUS: Final = 2**61 - 1  # CPython's hash of an int is the int modulo this

# Group numbers of the master pattern; ``match.lastindex`` names the token kind.
# The reader loop spells them as literals (a constant is cheaper than a global
# on this path); the names here document them. Openers are 18..21 so that the
# frame kind of a collection is ``group - 17``.
_STRING = 1
# A keyword followed by a simple scalar or an opener (2 is the keyword, 3..10
# what follows): most map entries, read in one match and one loop step.
_PAIR_KEY, _PAIR_STRING, _PAIR_INT, _PAIR_FLOAT, _PAIR_INST, _PAIR_KEYWORD = 2, 3, 4, 5, 6, 7
_PAIR_CONSTANT, _PAIR_UUID, _PAIR_OPEN = 8, 9, 10
_KEYWORD, _INT, _FLOAT, _SYMBOL = 11, 12, 13, 14
_FLOAT_VECTOR, _INT_VECTOR, _INT_SET = 15, 16, 17
_OPEN_MAP, _OPEN_VEC, _OPEN_LIST, _OPEN_SET, _CLOSE, _INST_FAST = 18, 19, 20, 21, 22, 23
_DISCARD, _NS_MAP, _SYMBOLIC, _TAG, _CHAR, _NUMBER, _OTHER, _END = 24, 25, 26, 27, 28, 29, 30, 31
_OPENER_KINDS: Final = {"{": 1, "[": 2, "(": 3, "#{": 4}

# A plain int or float token, exactly as the int and float groups read them.
# Flat vectors of floats (embeddings) and vectors and sets of ints are common
# in the legacy store; read whole, they cost one match and one C-level ``map``
# instead of one loop step per number. Each number must be followed by a
# separator or the closer, so a comment, a tag or any other token inside makes
# the fast alternative fail and the collection is read token by token.
# At most 4300 digits (CPython's default int(str) limit, whatever the
# application set): longer ones are read by read_number, under max_digits.
_INT_TOKEN: Final = rf"[+-]?(?:0|[1-9][0-9]{{0,4299}})(?!{TOKEN_CHAR})"
_FLOAT_TEXT: Final = r"[+-]?[0-9]+(?:\.[0-9]*(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
# At most 18 digits: longer ints take the token path (``int(str)`` has a limit).
_SHORT_INT: Final = r"[+-]?(?:0|[1-9][0-9]{0,17})"
# A #uuid as Clojure prints it, straight to uuid.UUID.
_UUID_TEXT: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# The #inst Clojure prints, straight to datetime.fromisoformat.
_INST_TEXT: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{3}(?:[0-9]{3})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)

_MASTER: Final = re.compile(
    # Whitespace, commas and comments before the token. Possessive so that a
    # trailing comment is never re-read as a token by backtracking.
    r"(?:[\s,]++|;[^\n]*+)*+"
    r"(?:"
    r'"([^"\\]*+(?:\\.[^"\\]*+)*+)"'  # 1 string body
    # 2..10 a keyword, whitespace, then a string, an int, a float, an #inst,
    # a keyword, a constant, a #uuid or an opener (else: group 11 alone)
    rf"|:({TOKEN_CHAR}*)[\s,]++(?:"
    r'"([^"\\]*+(?:\\.[^"\\]*+)*+)"'  # 3
    rf"|({_INT_TOKEN})"  # 4
    rf"|({_FLOAT_TEXT})(?!{TOKEN_CHAR})"  # 5
    rf'|#inst[\s,]*+"({_INST_TEXT})"'  # 6
    rf"|:({TOKEN_CHAR}*)"  # 7
    rf"|(nil|true|false)(?!{TOKEN_CHAR})"  # 8
    rf'|#uuid[\s,]*+"({_UUID_TEXT})"'  # 9
    # 10 an opener: the key is its collection's first item. Not a vector or
    # set that starts with a number, so that the whole-vector alternatives
    # below (15..17) read those in one step.
    r"|(\{|\(|\[(?![\s,]*+[+-]?[0-9])|#\{(?![\s,]*+[+-]?[0-9]))"
    r")"
    rf"|:({TOKEN_CHAR}*)"  # 11 keyword text
    rf"|({_INT_TOKEN})"  # 12 plain int
    rf"|({_FLOAT_TEXT})(?!{TOKEN_CHAR})"  # 13 float
    rf"|({SYMBOL_TEXT})"  # 14 symbol, nil, true, false
    rf"|\[((?:[\s,]*+{_FLOAT_TEXT}(?=[\s,\]]))++)[\s,]*+\]"  # 15 [floats]
    rf"|\[((?:[\s,]*+{_SHORT_INT}(?=[\s,\]]))++)[\s,]*+\]"  # 16 [ints]
    rf"|#\{{((?:[\s,]*+{_SHORT_INT}(?=[\s,}}]))++)[\s,]*+\}}"  # 17 #{{ints}}
    r"|(\{)"  # 18
    r"|(\[)"  # 19
    r"|(\()"  # 20
    r"|(#\{)"  # 21
    r"|([\])}])"  # 22 any closer
    rf'|#inst[\s,]*+"({_INST_TEXT})"'  # 23 the #inst Clojure prints
    r"|(#_)"  # 24
    rf"|#:({TOKEN_CHAR}*)(?:[\s,]|;[^\n]*)*\{{"  # 25 namespaced map: namespace
    rf"|##({TOKEN_CHAR}*)"  # 26 ##Inf ##-Inf ##NaN
    rf"|#([A-Za-z]{TOKEN_CHAR}*)"  # 27 tag
    rf"|\\(.{TOKEN_CHAR}*)"  # 28 character
    rf"|([+-]?[0-9]{TOKEN_CHAR}*)"  # 29 any other number (N, M, ratio, radix, bad)
    r"|([^\s,;])"  # 30 anything else: an error
    # 31 the end, after trailing whitespace and comments: without it finditer
    # would search on from inside a trailing comment.
    r"|(\Z)"
    r")",
    re.DOTALL,
)

# Frame kinds of the parse stack. Collections sort below _TOP so that one
# comparison decides "append to the open collection"; a collection's kind is
# its opener's group number minus 5.
_MAP, _VEC, _LIST, _SET, _NSMAP, _TOP, _TAGGED, _DISCARDED = 1, 2, 3, 4, 5, 8, 9, 10
_HASHED: Final = frozenset({_MAP, _SET, _NSMAP})  # kinds whose keys or elements are hashed
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
    if kind is EdnMap:
        return EdnMap([(k, _freeze(v)) for k, v in value.items()])
    return value


def _frozen(items: list[Any], text: str, start: int, what: str) -> list[Any]:
    try:
        return [_freeze(v) for v in items]
    except RecursionError:
        raise EdnDepthError(
            f"{what} nested too deeply to be made hashable", **where(text, start)
        ) from None


def _shown(value: Any) -> str:
    """A duplicate's EDN text for an error message (as Clojure's "Duplicate key: …").

    Written by a writer of its own: an error path need not fill, nor churn,
    the caches of ``dumps``.
    """
    out: list[str] = []
    try:
        Writer(sort_keys=False, strict=False, default=None).write(value, out)
        shown = "".join(out)
    except (EdnError, RecursionError):
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:59] + "…"


def _too_deep(text: str, pos: int) -> EdnDepthError:
    return EdnDepthError(
        f"nested deeper than {MAX_DEPTH} levels (the reader's depth limit)", **where(text, pos)
    )


def _check_hashes(keys: Iterable[Any], text: str, start: int, what: str) -> None:
    """Refuse more than :data:`MAX_SAME_HASH` different keys with one hash value.

    Python's hashes of numbers are not randomized (``n`` and ``n + 2**61 - 1``
    collide), nor those of tuples of them: a crafted map of such keys would
    take quadratic time to build. The hash values themselves are counted in a
    ``Counter``, whose int keys never collide this way. A key repeated (a
    duplicate, which lenient mode reads) shares its hash too, so the keys of
    a crowded hash are compared, at most :data:`MAX_SAME_HASH` times each.
    """
    keys = list(keys)
    types = set(map(type, keys))
    if types <= _SALTED:
        return
    if types == _INT_ONLY and min(keys) > -_HASH_MODULUS and max(keys) < _HASH_MODULUS:
        return  # an int that small is its own hash: none collide (but -1 and -2)
    try:
        hashes = list(map(hash, keys))
    except TypeError:  # lists and dicts: the hashes of their hashable twins
        keys = list(map(_freeze, keys))
        hashes = list(map(hash, keys))
    for crowded, count in Counter(hashes).items():
        if count <= MAX_SAME_HASH:
            continue
        different: list[Any] = []
        for key, key_hash in zip(keys, hashes, strict=True):
            if key_hash == crowded and all(key != seen for seen in different):
                different.append(key)
                if len(different) > MAX_SAME_HASH:
                    raise syntax_error(
                        text,
                        start,
                        f"too many {what} with the same hash"
                        f" (more than {MAX_SAME_HASH}: hash flooding)",
                    )


def _guarded(
    build: Callable[..., Any],
) -> Callable[..., Any]:
    """Bound what closing a map or set may cost: colliding hashes, and keys too deep to hash."""

    @functools.wraps(build)
    def guarded(
        kind: int, items: list[Any], extra: str, text: str, start: int, *, strict: bool
    ) -> Any:
        try:
            if len(items) > MAX_SAME_HASH and kind in _HASHED:
                if kind == _SET:
                    _check_hashes(items, text, start, "set elements")
                else:
                    _check_hashes(items[::2], text, start, "map keys")
            return build(kind, items, extra, text, start, strict=strict)
        except RecursionError:
            what = "set element" if kind == _SET else "map key"
            raise EdnDepthError(
                f"{what} nested too deeply to be hashed or compared", **where(text, start)
            ) from None

    return guarded


@_guarded
def _build(kind: int, items: list[Any], extra: str, text: str, start: int, *, strict: bool) -> Any:
    """Close a collection: ``items`` holds its elements (alternating keys and values for maps).

    Set elements and map keys follow Clojure's ``=``: when Python's ``==``
    merges some (``1``, ``1.0``, ``true``), :func:`distinct_set` and
    :func:`distinct_map` tell the kept-apart from the true duplicates.
    """
    if kind == _VEC:
        return items
    if kind == _LIST:
        return tuple(items)
    if kind == _SET:
        try:
            result: Any = frozenset(items)
        except TypeError:
            items = _frozen(items, text, start, "set element")
            result = frozenset(items)
        else:
            if Tagged in map(type, result):
                # A tagged element keeps its hashable twin (Vector, FrozenMap) inside.
                items = _frozen(items, text, start, "set element")
                result = frozenset(items)
        if len(result) != len(items):
            result, duplicate = distinct_set(items)
            if strict and duplicate is not NO_DUPLICATE:
                raise syntax_error(
                    text, start, f"Duplicate key: {_shown(duplicate)} (set element; strict mode)"
                )
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
                elif key.namespace == "_" and key.name:
                    items[i] = key_type(key.name)
    it = iter(items)
    try:
        result = dict(zip(it, it, strict=True))
    except TypeError:
        items[::2] = _frozen(items[::2], text, start, "map key")
        it = iter(items)
        result = dict(zip(it, it, strict=True))
    else:
        if Tagged in map(type, result):
            items[::2] = _frozen(items[::2], text, start, "map key")
            it = iter(items)
            result = dict(zip(it, it, strict=True))
    if len(result) * 2 != len(items):
        result, duplicate = distinct_map(items)
        if strict and duplicate is not NO_DUPLICATE:
            raise syntax_error(text, start, f"Duplicate key: {_shown(duplicate)} (strict mode)")
    return result


def iter_text_values(
    text: str, *, strict: bool = False, single: bool = False, max_digits: int = MAX_DIGITS
) -> Iterator[Any]:
    """Yield each top-level value of ``text`` in order (the reader's core loop).

    With ``single``, a second top-level value is an error (``loads``).
    ``max_digits`` bounds the digits of one number (``docs/edn.md``, "Limits").
    """
    count = 0
    closed_at = 0
    failed: EdnSyntaxError | None = None  # a pair's bad value, raised after its key
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
        # Literal group numbers and kinds: see _MASTER and the frame kinds
        # above. Tests are ordered by how often each token occurs.
        if group <= 10 and group != 1:  # a keyword and a scalar or an opener
            body = m[2]
            key = keywords.get(body)
            if key is None:
                check_named(text, body, m.start(2) - 1, keyword=True, strict=strict)
                key = keywords[body] = Keyword(body)
            # The top level or a prefix form: the key is given before an error in
            # its value is raised (iter_values yields the values before an error).
            try:
                if group == 10:  # the key, then a collection opens
                    if kind < 8:
                        append(key)
                        if len(stack) >= MAX_DEPTH:
                            raise _too_deep(text, m.start(10))
                        stack.append((kind, start, items, extra))
                        kind = _OPENER_KINDS[m[10]]
                        start = m.start(10)
                        items = []
                        append = items.append
                        continue
                    # The opener is handled after the slow path has taken the key.
                    pending: tuple[tuple[Any, int], ...] = ((key, m.start(2) - 1),)
                elif group == 7:
                    body = m[7]
                    value = keywords.get(body)
                    if value is None:
                        check_named(text, body, m.start(7) - 1, keyword=True, strict=strict)
                        value = keywords[body] = Keyword(body)
                elif group == 4:
                    try:
                        value = int(m[4])
                    except ValueError:  # over the application's lower int(str) limit
                        value = read_number(m[4], text, m.start(4), max_digits)
                elif group == 6:
                    try:
                        value = fromisoformat(m[6])
                    except ValueError:
                        value = apply_tag("inst", m[6], text, m.start(6))
                elif group == 3:
                    value = m[3]
                    if "\\" in value:
                        value = unescape(value, text, m.start(3))
                elif group == 5:
                    value = float(m[5])
                elif group == 8:
                    value = _CONSTANTS[m[8]]
                else:  # a canonical #uuid: always valid
                    value = uuid.UUID(m[9])
            except EdnSyntaxError as exc:
                if kind < 8:
                    raise
                failed = exc
                pending = ((key, m.start(2) - 1),)
            else:
                if group != 10:
                    if kind < 8:  # inside a collection: the common case
                        append(key)
                        append(value)
                        continue
                    # A prefix form or the top level waits: the two values go one at a time.
                    pending = ((key, m.start(2) - 1), (value, m.start(group)))
        else:
            if group == 11:  # keyword
                body = m[11]
                value = keywords.get(body)
                if value is None:
                    check_named(text, body, m.start(11) - 1, keyword=True, strict=strict)
                    value = keywords[body] = Keyword(body)
            elif group == 22:  # closer
                closer = m[22]
                if closers.get(kind) != closer:
                    raise _mismatched(text, m.start(22), closer, kind, start)
                if kind == 2:  # vector
                    value = items
                elif kind == 1 and not len(items) & 1:  # map, the common case inline
                    if len(items) > 2 * MAX_SAME_HASH:
                        _check_hashes(items[::2], text, start, "map keys")
                    it = iter(items)
                    try:
                        value = dict(zip(it, it, strict=False))  # even length checked above
                    except (TypeError, RecursionError):
                        value = _build(kind, items, extra, text, start, strict=strict)
                    else:
                        if len(value) * 2 != len(items) or Tagged in map(type, value):
                            value = _build(kind, items, extra, text, start, strict=strict)
                else:
                    value = _build(kind, items, extra, text, start, strict=strict)
                closed_at = start
                kind, start, items, extra = stack.pop()
                append = items.append
            elif 18 <= group <= 21:  # { [ ( #{
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(group))
                stack.append((kind, start, items, extra))
                kind = group - 17
                start = m.start(group)
                items = []
                append = items.append
                continue
            elif group == 1:  # string
                value = m[1]
                if "\\" in value:
                    value = unescape(value, text, m.start(1))
            elif group == 13:  # float
                value = float(m[13])
            elif group == 12:  # int
                try:
                    value = int(m[12])
                except ValueError:  # over the application's lower int(str) limit
                    value = read_number(m[12], text, m.start(12), max_digits)
            elif group == 23:  # #inst as Clojure prints it
                try:
                    value = fromisoformat(m[23])
                except ValueError:
                    value = apply_tag("inst", m[23], text, m.start())
            elif group == 15:  # a vector of floats
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(15) - 1)
                body = m[15]
                value = list(map(float, (body.replace(",", " ") if "," in body else body).split()))
                closed_at = m.start(15) - 1
            elif group == 16:  # a vector of ints (at most 18 digits each)
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(16) - 1)
                body = m[16]
                value = list(map(int, (body.replace(",", " ") if "," in body else body).split()))
                closed_at = m.start(16) - 1
            elif group == 17:  # a set of ints: _build checks duplicates in strict mode
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(17) - 2)
                body = m[17]
                numbers = list(map(int, (body.replace(",", " ") if "," in body else body).split()))
                closed_at = m.start(17) - 2
                value = _build(_SET, numbers, "", text, closed_at, strict=strict)
            elif group == 14:  # symbol, nil, true, false
                body = m[14]
                value = symbols.get(body, symbols)
                if value is symbols:
                    check_named(text, body, m.start(14), keyword=False, strict=strict)
                    value = symbols[body] = Symbol(body)
            elif group == 25:  # #:ns{
                namespace = m[25]
                if not namespace or namespace.startswith(":"):
                    raise syntax_error(
                        text, m.start(), "namespaced map needs a namespace (:: aliases are not EDN)"
                    )
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(25) - 2)
                stack.append((kind, start, items, extra))
                kind, start, items, extra = _NSMAP, m.start(), [], namespace
                append = items.append
                continue
            elif group == 27:  # #tag
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(27) - 1)
                stack.append((kind, start, items, extra))
                kind, start, extra = _TAGGED, m.start(27) - 1, m[27]
                continue
            elif group == 24:  # #_
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(text, m.start(24))
                stack.append((kind, start, items, extra))
                kind, start, extra = _DISCARDED, m.start(24), ""
                continue
            elif group == 28:  # character
                value = read_char(m[28], text, m.start(28) - 1)
            elif group == 29:  # other numbers
                value = read_number(m[29], text, m.start(29), max_digits)
            elif group == 26:  # ##Inf ##-Inf ##NaN
                value = _SYMBOLIC_VALUES.get(m[26])
                if value is None:
                    raise syntax_error(text, m.start(26) - 2, f"unknown symbolic value ##{m[26]}")
            elif group == 31:  # end of input
                break
            else:
                raise _unexpected(text, m.start(30))
            if kind < 8:  # inside a collection
                append(value)
                continue
            at = closed_at if group == 22 or 15 <= group <= 17 else m.start(group)
            pending = ((value, at),)
        # Slow path: prefix forms (#tag, #_) waiting for these values, or the top level.
        for value, at in pending:
            if kind < 8:  # a tag was applied and its collection takes the rest
                append(value)
                continue
            while kind >= _TAGGED:
                if kind == _DISCARDED:
                    kind, start, items, extra = stack.pop()
                    append = items.append
                    break
                value = apply_tag(extra, value, text, start)  # noqa: PLW2901 - the tagged value
                kind, start, items, extra = stack.pop()
                append = items.append
            else:
                if kind == _TOP:
                    if single and count:
                        raise syntax_error(
                            text, at, "more than one value (loads reads exactly one)"
                        )
                    count += 1
                    yield value
                else:
                    append(value)
        if failed is not None:
            raise failed
        if group == 10:  # the opener that followed the key
            if len(stack) >= MAX_DEPTH:
                raise _too_deep(text, m.start(10))
            stack.append((kind, start, items, extra))
            kind = _OPENER_KINDS[m[10]]
            start = m.start(10)
            items = []
            append = items.append
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
