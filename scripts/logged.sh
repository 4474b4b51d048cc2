#!/usr/bin/env bash
# Run a test step with its whole output kept in build/test-logs/<name>.log; when it
# fails, end with a short account of why (CI shows only the last lines of a run).
#
#   scripts/logged.sh NAME COMMAND [ARGS...]
set -uo pipefail
name="$1"; shift
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p build/test-logs
log="build/test-logs/${name}.log"
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
  python3 "$here/why_failed.py" "$log" "$name" "$status"
fi
exit "$status"
