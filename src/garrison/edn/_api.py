"""The codec's entry points: ``loads``/``load``/``iter_values`` and ``dumps``/``dump``."""

from __future__ import annotations

import contextlib
import gc
import itertools
import threading
from typing import IO, TYPE_CHECKING, Any, Final

from garrison.edn import _accel
from garrison.edn._atoms import MAX_DIGITS, MIN_MAX_DIGITS, syntax_error
from garrison.edn._encoder import encode, encode_key
from garrison.edn._reader import iter_text_values
from garrison.exceptions import EdnSyntaxError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "MAP_ENTRY_SEPARATOR",
    "MAX_DIGITS",
    "dump",
    "dumps",
    "dumps_entry",
    "iter_values",
    "load",
    "loads",
]

#: What :func:`dumps` writes between two map entries, as Clojure's printer does.
#: ``"{" + MAP_ENTRY_SEPARATOR.join(entry_texts) + "}"`` equals ``dumps`` of the map.
MAP_ENTRY_SEPARATOR: Final = ", "

_NOTHING: Final = object()
# Texts at least this long are read with the cyclic garbage collector paused.
_PAUSE_GC_FROM: Final = 1 << 16

# loads runs in worker threads, several at once: the collector is paused by the
# first of them and enabled again by the last, and only if it was enabled when
# the first began, so concurrent calls never leave it off nor turn it on early.
_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large value (re-entrant, threadsafe).

    Parsing allocates many containers and no garbage; a collection pass in the
    middle costs time for nothing. Shared by everything that parses big texts
    so the one process-wide count stays right.
    """
    global _gc_pausers, _gc_was_enabled  # one process-wide pause count
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _text(data: str | bytes | bytearray | memoryview) -> str:
    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = raw[: exc.start].decode("utf-8", "replace")
            raise syntax_error(prefix, len(prefix), f"invalid UTF-8 ({exc.reason})") from exc
    # A byte order mark is not whitespace in EDN, but editors add it.
    return text[1:] if text.startswith("\ufeff") else text


def _digit_limit(max_digits: int) -> int:
    if type(max_digits) is not int or max_digits < MIN_MAX_DIGITS:
        raise ValueError(f"max_digits must be an int, at least {MIN_MAX_DIGITS}: {max_digits!r}")
    return max_digits


def loads(
    data: str | bytes | bytearray | memoryview,
    *,
    strict: bool = False,
    max_digits: int = MAX_DIGITS,
) -> Any:
    """Read exactly one EDN value from ``data`` (text, or UTF-8 bytes).

    ``strict=False`` (the default) reads everything Clojure's printer writes,
    including keywords such as ``:embed-token/5fe3`` that Clojure cannot read
    back, and lets the last of duplicate map keys win. ``strict=True`` accepts
    only what ``clojure.edn`` accepts and rejects duplicate keys and set
    elements.

    >>> loads('{:user/id 1, :tags #{"a"}}')
    {Keyword('user/id'): 1, Keyword('tags'): frozenset({'a'})}

    Raises :class:`~garrison.exceptions.EdnSyntaxError` (with line, column and
    an excerpt) for anything that is not one EDN value, and for input past
    the reader's limits (``docs/edn.md``, "Limits"): nesting deeper than
    10,000 levels (:class:`~garrison.exceptions.EdnDepthError`), a number
    with more than ``max_digits`` digits (at least 4300; reading costs time
    that grows with the square of the digits), more than 100 keys of one map
    or set with the same hash.

    For texts of 64 KiB and more, Python's cyclic garbage collector is paused
    during the call (the values read contain no reference cycles, and its
    passes over the growing result cost about 15% of the time); it is enabled
    again when the call returns or raises, unless it was already disabled.

    When the C reader is built (``garrison.edn._creader``) it reads the
    text first; whatever it leaves to Python is read again by the pure reader,
    so the value or the error is the same either way (``docs/edn.md``,
    "Accelerator").
    """
    max_digits = _digit_limit(max_digits)
    text = _text(data)
    result: Any = _NOTHING
    # The reader allocates one container per collection, and every few hundred
    # allocations CPython's collector walks the young objects, and now and then
    # the whole growing heap, looking for cycles the reader never creates: about
    # 15% of the time of a large file. The collector is paused for the call (it
    # runs as usual afterwards, and an application that disabled it keeps it
    # disabled); small texts do not pay for the toggle.
    pause = collector_paused() if len(text) >= _PAUSE_GC_FROM else contextlib.nullcontext()
    # Read at call time: the test suite switches the accelerator off this way.
    reader = _accel.reader
    with pause:
        if reader is not None:
            # The C reader answers for the texts it fully understands; for any
            # other (an error, a rare construct, very deep nesting) it raises
            # Unsupported and the pure reader, the one definition of the
            # language, gives the value or the precise error.
            try:
                return reader.loads(text, strict, max_digits)
            except reader.Unsupported:
                pass
        # Run the reader to the end: a second value (or a syntax error after
        # the first) must raise rather than be silently ignored.
        for value in iter_text_values(text, strict=strict, single=True, max_digits=max_digits):
            result = value
    if result is _NOTHING:
        raise syntax_error(text, len(text), "no value (the input is empty or only comments)")
    return result


def load(fp: IO[str] | IO[bytes], *, strict: bool = False, max_digits: int = MAX_DIGITS) -> Any:
    """Read exactly one EDN value from an open file (text or binary mode); see :func:`loads`.

    Errors name the file: :class:`~garrison.exceptions.EdnSyntaxError` ``source``
    is ``fp.name`` when the file has one.
    """
    data = fp.read()
    try:
        return loads(data, strict=strict, max_digits=max_digits)
    except EdnSyntaxError as exc:
        name = getattr(fp, "name", None)
        if isinstance(name, str):
            raise exc.with_source(name) from exc.__cause__
        raise


def iter_values(
    source: str | bytes | bytearray | memoryview | IO[str] | IO[bytes],
    *,
    strict: bool = False,
    max_digits: int = MAX_DIGITS,
) -> Iterator[Any]:
    """Yield every top-level value of a text or an open file, in order (options: :func:`loads`).

    Values are read one at a time, so a stream of many records can be consumed
    as it is parsed; the whole text is held in memory. A syntax error is raised
    when the iteration reaches it, after the values before it were yielded.

    >>> list(iter_values("1 [2] {:a 3}"))
    [1, [2], {Keyword('a'): 3}]
    """
    max_digits = _digit_limit(max_digits)
    if isinstance(source, str | bytes | bytearray | memoryview):
        yield from _iter_text(_text(source), strict=strict, max_digits=max_digits)
        return
    name = getattr(source, "name", None)
    try:
        yield from _iter_text(_text(source.read()), strict=strict, max_digits=max_digits)
    except EdnSyntaxError as exc:
        if isinstance(name, str):
            raise exc.with_source(name) from exc.__cause__
        raise


def _iter_text(text: str, *, strict: bool, max_digits: int) -> Iterator[Any]:
    """The top-level values of ``text``: the C reader's while it can, then the pure reader's."""
    reader = _accel.reader  # at call time, like loads
    if reader is None:
        yield from iter_text_values(text, strict=strict, max_digits=max_digits)
        return
    scanner = reader.Scanner(text, strict, max_digits)
    while True:
        try:
            value = next(scanner)
        except StopIteration:
            return
        except reader.Unsupported:
            break
        yield value
    # The pure reader takes over where the C reader stopped: it reads the
    # values already given again (without yielding them) so that its line and
    # column numbers, and its error, are those of the whole text.
    values = iter_text_values(text, strict=strict, max_digits=max_digits)
    for _ in itertools.islice(values, scanner.count):
        pass
    yield from values


def dumps(
    value: Any,
    *,
    sort_keys: bool = False,
    strict: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """The EDN text of ``value``, in the form Clojure's ``pr-str`` writes.

    - ``sort_keys=True``: map entries and set elements in the order of their
      EDN text, so equal values always give the same text.
    - ``strict=True``: refuse keywords and symbols that ``clojure.edn`` cannot
      read back (such as ``:ns/5fe3``) instead of writing them as Clojure's
      printer does.
    - ``default``: called with any value that has no EDN form; it returns a
      value that has one (like ``json.dumps``). Without it such values raise
      :class:`~garrison.exceptions.EdnEncodeError`.

    >>> dumps({Keyword("user/id"): 1, Keyword("tags"): ["a", 2.5]})
    '{:user/id 1, :tags ["a" 2.5]}'

    Any depth the reader reads (10,000 levels) is written (the writer does
    not recurse); deeper nesting, a value that contains itself and a
    ``default`` hook whose results keep needing it raise
    :class:`~garrison.exceptions.EdnEncodeError` (``docs/edn.md``, "Limits").
    """
    return encode(value, sort_keys=sort_keys, strict=strict, default=default)


def dump(
    value: Any,
    fp: IO[str],
    *,
    sort_keys: bool = False,
    strict: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> None:
    """Write the EDN text of ``value`` to an open text file (see :func:`dumps`)."""
    fp.write(encode(value, sort_keys=sort_keys, strict=strict, default=default))


def dumps_entry(
    key: Any,
    value: Any,
    *,
    sort_keys: bool = False,
    strict: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """The text of one map entry, ``key value``, exactly as :func:`dumps` writes it in a map.

    Lets a store cache the text of each entry and rebuild the whole map cheaply:

    >>> entries = [dumps_entry(Keyword("a"), 1), dumps_entry(Keyword("b"), [2])]
    >>> "{" + MAP_ENTRY_SEPARATOR.join(entries) + "}" == dumps({Keyword("a"): 1, Keyword("b"): [2]})
    True

    With ``sort_keys``, sort the entries by :func:`dumps` of their keys to match
    ``dumps(..., sort_keys=True)``.
    """
    key_text = encode_key(key, sort_keys=sort_keys, strict=strict)
    return key_text + " " + encode(value, sort_keys=sort_keys, strict=strict, default=default)
