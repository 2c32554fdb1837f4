"""Run real Clojure from tests (Debian's ``clojure`` package, Clojure 1.11).

Startup costs about a second, so batch many checks into one script and run it
once per module (a module-scoped fixture), not once per test.

Use it from a test module::

    from tests._clojure import require_clojure, run_clojure

    pytestmark = pytest.mark.clojure

    def test_adds():
        assert run_clojure("(println (+ 1 2))") == "3\n"

``run_clojure`` skips (or fails, see below) by itself; call ``require_clojure()``
first in a fixture that prepares files before running Clojure. Pass file paths
as extra arguments: the script sees them as ``*command-line-args*``. Read and
write files with ``:encoding "UTF-8"`` (Java 17's default follows the locale).

A missing ``clojure`` command is a visible skip, except when the environment
variable ``GARRISON_REQUIRE_CLOJURE=1`` is set (``.ci/run`` sets it): then it is
a failure, so CI can never pass without running the Clojure checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["ClojureError", "clojure_available", "require_clojure", "run_clojure"]

#: Seconds one Clojure run may take before the test fails (startup is ~1-2 s).
TIMEOUT = 45.0


class ClojureError(AssertionError):
    """The Clojure script failed; the message holds its stderr."""


def clojure_available() -> bool:
    """Whether the ``clojure`` command is on ``PATH``."""
    return shutil.which("clojure") is not None


def require_clojure() -> None:
    """Skip the calling test when Clojure is missing (fail instead in CI)."""
    if clojure_available():
        return
    message = "the clojure command is not installed (apt-get install clojure)"
    if os.environ.get("GARRISON_REQUIRE_CLOJURE") == "1":
        pytest.fail(f"GARRISON_REQUIRE_CLOJURE=1 but {message}")
    pytest.skip(message)


def run_clojure(script: str, *files: Path | str, timeout: float = TIMEOUT) -> str:
    """Run ``script`` (Clojure source) in a fresh Clojure process; return its stdout.

    ``files`` are passed as command-line arguments: the script reads them as
    ``*command-line-args*`` (strings). Raises :class:`ClojureError` with the
    script's stderr when it exits non-zero, and fails the test on a timeout.
    """
    require_clojure()
    with tempfile.TemporaryDirectory(prefix="garrison-clj-") as tmp:
        path = Path(tmp) / "script.clj"
        path.write_text(script, encoding="utf-8")
        try:
            done = subprocess.run(
                ["clojure", str(path), *map(str, files)],
                capture_output=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "LC_ALL": "C.UTF-8"},
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"clojure did not finish within {timeout:g}s: {exc}")
    stdout = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        raise ClojureError(f"clojure exited with {done.returncode}:\n{stderr}\n{stdout}")
    return stdout


#: Clojure functions ``kind`` and ``same?`` for scripts that compare what they
#: read: class for class and scale for scale (Clojure's ``=`` says ``1 = 1N``,
#: ``1.0M = 1.00M`` and ``0.0 = -0.0``, which is not enough to say a value came
#: back unchanged).
SAME_CLJ = r"""
(defn kind [x]
  (cond (map? x) :map (set? x) :set (vector? x) :vector (seq? x) :list
        (tagged-literal? x) :tagged (nil? x) :nil :else (class x)))

(defn same? [a b]
  (and (= (kind a) (kind b))
       (cond
         (map? a) (and (= (count a) (count b))
                       (every? (fn [[k v]] (let [e (find b k)]
                                             (boolean (and e (same? k (key e)) (same? v (val e))))))
                               a))
         (set? a) (and (= (count a) (count b))
                       (every? (fn [x] (and (contains? b x) (same? x (get b x)))) a))
         (sequential? a) (and (= (count a) (count b)) (every? true? (map same? a b)))
         (tagged-literal? a) (and (= (:tag a) (:tag b)) (same? (:form a) (:form b)))
         (decimal? a) (and (= (.scale ^java.math.BigDecimal a) (.scale ^java.math.BigDecimal b))
                           (= a b))
         (instance? Double a) (or (and (Double/isNaN a) (Double/isNaN b))
                                  (= (Double/doubleToLongBits a) (Double/doubleToLongBits b)))
         :else (= a b))))

"""
