#!/bin/sh
# Build the C accelerators with AddressSanitizer and UndefinedBehaviorSanitizer
# (gcc; any finding aborts) in a copy of the checkout in a temporary folder,
# and run the EDN tests (with the fuzzer's kept inputs) against that build.
# Usage: fuzz/sanitize.sh [extra pytest arguments]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv-test/bin/python"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$ROOT/src" "$ROOT/tests" "$ROOT/setup.py" "$ROOT/pyproject.toml" "$WORK/"
mkdir "$WORK/fuzz"
cp -r "$ROOT/fuzz/regressions" "$ROOT/fuzz/corpus" "$WORK/fuzz/" 2>/dev/null || true  # a running fuzzer may remove corpus files
find "$WORK/src" -name '*.so' -delete
cd "$WORK"
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
CC=gcc CFLAGS="$FLAGS" LDFLAGS="-fsanitize=address,undefined" \
    "$PY" setup.py -q build_ext --inplace >build.log 2>&1 || { cat build.log; exit 1; }
# CPython itself is not built with the sanitizers: preload their runtimes, and
# leave out leak detection (the interpreter keeps objects alive at exit).
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1
export PYTHONPATH="$WORK/src:$WORK"
"$PY" -c 'import garrison.edn._creader as r, garrison.edn._cwriter as w
print("sanitized build:", r.__file__, w.__file__, sep="\n  ")'
if [ "${SANITIZE_SHELL:-}" ]; then "$PY" -c "$SANITIZE_SHELL"; exit; fi
"$PY" -m pytest -p no:cacheprovider -q tests/edn "$@"
