"""The differential property of the EDN codec, shared by the fuzzer and the tests.

One input is one EDN text; its first byte picks the options (bit 0: strict,
bit 1: also read it with ``iter_values``). The C reader (``loads`` with the
accelerator) and the pure reader must give the same value or the same error
(class, message, line, column), and the only errors allowed are
:class:`~garrison.exceptions.EdnSyntaxError` and its subclasses. Every value
read is then written by the C and the pure writer, with and without
``sort_keys``: the same text or the same :class:`~garrison.exceptions.EdnEncodeError`,
and a text written must read back as the same value. :func:`check` raises
``AssertionError`` otherwise (``fuzz/fuzz_edn.py`` runs it under libFuzzer;
``test_edn_fuzz_regressions.py`` runs it on the inputs kept in ``fuzz/``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from garrison import edn
from garrison.edn import _accel
from garrison.exceptions import EdnEncodeError, EdnSyntaxError
from tests.edn._edn_same import same

__all__ = ["check"]

Outcome = tuple[str, Any]


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return "value", call()
    except EdnSyntaxError as exc:
        return "error", (type(exc).__name__, str(exc), exc.line, exc.column)
    except EdnEncodeError as exc:
        return "error", (type(exc).__name__, str(exc))


def _same_outcome(a: Outcome, b: Outcome) -> bool:
    if a[0] != b[0]:
        return False
    return same(a[1], b[1]) if a[0] == "value" else bool(a[1] == b[1])


class _Codecs:
    """Runs the entry points with or without the C accelerators."""

    def __init__(self) -> None:
        # Imported by name, not read from _accel: a test may have switched them off.
        self.reader = importlib.import_module("garrison.edn._creader")
        self.writer = importlib.import_module("garrison.edn._cwriter")

    def run(self, call: Callable[[], Any], *, accelerated: bool) -> Outcome:
        saved = _accel.reader, _accel.writer
        _accel.reader, _accel.writer = (self.reader, self.writer) if accelerated else (None, None)
        try:
            return _outcome(call)
        finally:
            _accel.reader, _accel.writer = saved


_codecs: list[_Codecs] = []


def check(data: bytes) -> None:
    """Assert the differential property for one input (see the module docstring)."""
    if not _codecs:
        _codecs.append(_Codecs())
    codecs = _codecs[0]
    if not data:
        return
    strict = bool(data[0] & 1)
    body = data[1:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: both readers refuse the bytes alike.
        c_bytes = codecs.run(lambda: edn.loads(body), accelerated=True)
        pure_bytes = codecs.run(lambda: edn.loads(body), accelerated=False)
        assert c_bytes[0] == "error", c_bytes
        assert c_bytes == pure_bytes, (c_bytes, pure_bytes)
        return
    c_read = codecs.run(lambda: edn.loads(text, strict=strict), accelerated=True)
    pure_read = codecs.run(lambda: edn.loads(text, strict=strict), accelerated=False)
    assert _same_outcome(c_read, pure_read), (text, c_read, pure_read)
    if data[0] & 2:
        _check_stream(codecs, text)
    if c_read[0] != "value":
        return
    value = c_read[1]
    for sort_keys in (False, True):
        write = functools.partial(edn.dumps, value, sort_keys=sort_keys)
        c_text = codecs.run(write, accelerated=True)
        pure_text = codecs.run(write, accelerated=False)
        assert c_text == pure_text, (text, sort_keys, c_text, pure_text)
        if c_text[0] == "value":
            back = codecs.run(functools.partial(edn.loads, c_text[1]), accelerated=True)
            assert back[0] == "value", (text, c_text, back)
            assert same(back[1], value), (text, c_text, back)


def _read_all(text: str, values: list[Any]) -> None:
    values.extend(edn.iter_values(text))


def _check_stream(codecs: _Codecs, text: str) -> None:
    """``iter_values`` yields the same values, then the same error, either way."""
    results = []
    for accelerated in (True, False):
        values: list[Any] = []
        outcome = codecs.run(functools.partial(_read_all, text, values), accelerated=accelerated)
        results.append((values, outcome))
    (c_values, c_outcome), (pure_values, pure_outcome) = results
    assert same(c_values, pure_values), (text, c_values, pure_values)
    assert c_outcome[0] == pure_outcome[0], (text, c_outcome, pure_outcome)
    if c_outcome[0] == "error":
        assert c_outcome[1] == pure_outcome[1], (text, c_outcome, pure_outcome)
