#!/bin/sh
# fuzz_edn.py with the checkout's interpreter: libFuzzer runs this command
# again for -merge=1 (and -fork), so it must be one executable path.
exec "$(dirname "$0")/../.venv-test/bin/python" "$(dirname "$0")/fuzz_edn.py" "$@"
