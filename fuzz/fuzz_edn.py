"""Coverage-guided differential fuzzer of the EDN codec (atheris + libFuzzer).

Each input is checked by ``tests/edn/_edn_differential.py``: the C and
the pure reader give the same value or the same error, the C and the pure
writer the same text or error, and what is written reads back the same. A
failed check raises, and libFuzzer keeps the input (see fuzz/README.md).
Coverage comes from the C reader and writer (built with clang's
``-fsanitize=fuzzer-no-link`` by fuzz/build.sh) and from the pure codec's
Python code (atheris' bytecode instrumentation).

    fuzz/build.sh && fuzz/run.sh 1800
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import atheris

_ROOT = Path(__file__).resolve().parent.parent
_BUILD = Path(os.environ.get("GARRISON_FUZZ_BUILD", _ROOT / "fuzz" / "build"))
sys.path.insert(0, str(_ROOT))


def _load_instrumented() -> None:
    """Import the coverage-instrumented C extensions under their real names."""
    for name in ("_creader", "_cwriter"):
        found = sorted((_BUILD / "garrison" / "stores" / "edn").glob(f"{name}.*.so"))
        if not found:
            sys.exit(f"no {name} in {_BUILD}: run fuzz/build.sh first")
        full = f"garrison.edn.{name}"
        spec = importlib.util.spec_from_file_location(full, found[0])
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)


_load_instrumented()
with atheris.instrument_imports(include=["garrison.edn"]):
    from garrison.edn import _accel
from tests.edn._edn_differential import check  # noqa: E402 - after sys.path

assert _accel.reader is sys.modules["garrison.edn._creader"], "instrumented C reader not in use"
assert _accel.writer is sys.modules["garrison.edn._cwriter"], "instrumented C writer not in use"


def main() -> None:
    # libFuzzer runs argv[0] again for -merge=1: the wrapper, an executable.
    atheris.Setup([str(Path(__file__).with_name("fuzz_edn.sh")), *sys.argv[1:]], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
