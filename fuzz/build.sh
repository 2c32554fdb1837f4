#!/bin/sh
# Build the EDN C accelerators with libFuzzer's coverage instrumentation
# (clang's -fsanitize=fuzzer-no-link) into fuzz/build/, for fuzz_edn.py.
# Needs clang (CC, default clang, else clang-14).
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-$(command -v clang || command -v clang-14)}
rm -rf fuzz/build
CC="$CC" CFLAGS="-fsanitize=fuzzer-no-link -g" LDSHARED="$CC -shared" \
    .venv-test/bin/python setup.py -q build_ext --build-lib fuzz/build --build-temp fuzz/build/tmp

# libFuzzer as a shared library, preloaded by fuzz/run.sh: the instrumented
# extensions' coverage hooks resolve against it, and atheris uses it.
RT=$("$CC" -print-resource-dir)/lib/linux
"$CC" -shared -o fuzz/build/libfuzzer.so -Wl,--whole-archive "$RT/libclang_rt.fuzzer_no_main-x86_64.a" \
    -Wl,--no-whole-archive -lstdc++ -lpthread
