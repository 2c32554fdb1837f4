#!/bin/sh
# Run the EDN fuzzer (fuzz_edn.py) for SECONDS (default 1800) in total, niced,
# one process at a time. A failing input is saved in fuzz/crashes/ and the
# fuzzer starts again (the input's path is in the log); new coverage goes to
# fuzz/corpus/. Run fuzz/build.sh first, and again after a change to the C code.
# Extra arguments go to libFuzzer.
set -u
cd "$(dirname "$0")"
TOTAL=${1:-1800}
[ $# -gt 0 ] && shift
mkdir -p corpus crashes
END=$(($(date +%s) + TOTAL))
while [ "$(date +%s)" -lt "$END" ]; do
    LEFT=$((END - $(date +%s)))
    LD_PRELOAD="$PWD/build/libfuzzer.so" nice -n 10 ../.venv-test/bin/python fuzz_edn.py \
        -timeout=20 -rss_limit_mb=3000 -max_len=4096 -max_total_time="$LEFT" \
        -print_final_stats=1 -dict=edn.dict -artifact_prefix=crashes/ "$@" corpus 2>&1 \
        | grep -v '^INFO: Instrumenting'
done
