"""What the fuzzer found stays fixed: the differential check on every kept input.

``fuzz/regressions/`` holds the inputs that failed (named for what they
found); ``fuzz/corpus/`` the fuzzer's merged corpus. See fuzz/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.edn._edn_differential import check

pytest.importorskip("garrison.edn._creader", reason="the C reader is not built")
pytest.importorskip("garrison.edn._cwriter", reason="the C writer is not built")

_FUZZ = Path(__file__).resolve().parents[2] / "fuzz"


def _inputs(folder: str) -> list[Path]:
    return sorted(p for p in (_FUZZ / folder).iterdir() if p.is_file())


def _failures(paths: list[Path]) -> list[str]:
    failures = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a running fuzzer replaced it with a smaller input
            continue
        try:
            check(data)
        except AssertionError as exc:
            failures.append(f"{path.name}: {str(exc)[:300]}")
    return failures


def test_inputs_that_failed_once_pass(codec: str) -> None:
    if codec == "pure":
        pytest.skip("the check runs both codecs itself")
    paths = _inputs("regressions")
    assert paths
    assert _failures(paths) == []


def test_the_fuzzers_corpus_passes(codec: str) -> None:
    if codec == "pure":
        pytest.skip("the check runs both codecs itself")
    paths = _inputs("corpus")
    assert len(paths) > 100
    assert _failures(paths) == []
