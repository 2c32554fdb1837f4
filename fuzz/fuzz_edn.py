"""Coverage-guided differential fuzzer of the EDN codec (atheris + libFuzzer).

Each input is one EDN text (its first byte picks the options). The C reader
(``loads`` with the accelerator) and the pure reader must give the same value
or the same error (class, message, line, column); the only errors allowed
are :class:`~garrison.exceptions.EdnSyntaxError` and its subclasses. Every
value read is then written by the C and the pure writer (with and without
``sort_keys``): same text or same error, and the text must read back as the
same value. Anything else raises, and libFuzzer saves the input as a crash.

Usage (see fuzz/README.md)::

    fuzz/build.sh        # the C accelerators with coverage, into fuzz/build/
    .venv-test/bin/python fuzz/fuzz_edn.py fuzz/corpus -max_len=4096 -max_total_time=1800
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_BUILD = Path(os.environ.get("GARRISON_FUZZ_BUILD", _ROOT / "fuzz" / "build"))

import atheris  # noqa: E402


def _load_instrumented() -> None:
    """Import the coverage-instrumented C extensions under their real names."""
    for name in ("_creader", "_cwriter"):
        found = sorted((_BUILD / "garrison" / "stores" / "edn").glob(f"{name}.*.so"))
        if not found:
            sys.exit(f"no {name} in {_BUILD}: run fuzz/build.sh first")
        full = f"garrison.stores.edn.{name}"
        spec = importlib.util.spec_from_file_location(full, found[0])
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)


_load_instrumented()
with atheris.instrument_imports(include=["garrison.stores.edn"]):
    from garrison.exceptions import EdnEncodeError, EdnSyntaxError
    from garrison.stores import edn
    from garrison.stores.edn import _accel

sys.path.insert(0, str(_ROOT))
from tests.stores.edn._edn_same import same  # noqa: E402

_CREADER = _accel.reader
_CWRITER = _accel.writer
assert _CREADER is sys.modules["garrison.stores.edn._creader"], "C reader not in use"
assert _CWRITER is sys.modules["garrison.stores.edn._cwriter"], "C writer not in use"


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "value", call()
    except EdnSyntaxError as exc:
        return "error", (type(exc).__name__, str(exc), exc.line, exc.column)
    except EdnEncodeError as exc:
        return "error", (type(exc).__name__, str(exc))


def _same_outcome(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    return same(a[1], b[1]) if a[0] == "value" else bool(a[1] == b[1])


def _read(text: str, *, strict: bool, accelerated: bool) -> tuple[str, Any]:
    _accel.reader = _CREADER if accelerated else None
    try:
        return _outcome(lambda: edn.loads(text, strict=strict))
    finally:
        _accel.reader = _CREADER


def _stream(text: str, *, accelerated: bool) -> tuple[str, Any]:
    _accel.reader = _CREADER if accelerated else None
    values: list[Any] = []
    try:
        kind, detail = _outcome(lambda: values.extend(edn.iter_values(text)))
    finally:
        _accel.reader = _CREADER
    return kind, (values if kind == "value" else (values, detail))


def _write(value: Any, *, sort_keys: bool, accelerated: bool) -> tuple[str, Any]:
    _accel.writer = _CWRITER if accelerated else None
    try:
        return _outcome(lambda: edn.dumps(value, sort_keys=sort_keys))
    finally:
        _accel.writer = _CWRITER


def _test_one_input(data: bytes) -> None:
    if not data:
        return
    strict = bool(data[0] & 1)
    body = data[1:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Bytes that are not UTF-8: both readers must refuse them alike.
        c = _outcome(lambda: edn.loads(body))
        assert c[0] == "error", c
        return
    c_read = _read(text, strict=strict, accelerated=True)
    pure_read = _read(text, strict=strict, accelerated=False)
    assert _same_outcome(c_read, pure_read), (text, c_read, pure_read)
    if data[0] & 2:
        c_stream = _stream(text, accelerated=True)
        pure_stream = _stream(text, accelerated=False)
        if c_stream[0] == "value":
            assert pure_stream[0] == "value", (text, pure_stream)
            assert same(c_stream[1], pure_stream[1]), text
        else:
            assert pure_stream[0] == "error", (text, c_stream, pure_stream)
            assert c_stream[1][1] == pure_stream[1][1], (text, c_stream, pure_stream)
            assert same(c_stream[1][0], pure_stream[1][0]), text
    if c_read[0] != "value":
        return
    value = c_read[1]
    for sort_keys in (False, True):
        c_text = _write(value, sort_keys=sort_keys, accelerated=True)
        pure_text = _write(value, sort_keys=sort_keys, accelerated=False)
        assert c_text == pure_text, (text, sort_keys, c_text, pure_text)
        if c_text[0] == "value":
            back = _read(c_text[1], strict=False, accelerated=True)
            assert back[0] == "value", (text, c_text, back)
            assert same(back[1], value), (text, c_text, back)


def main() -> None:
    atheris.Setup(sys.argv, _test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
