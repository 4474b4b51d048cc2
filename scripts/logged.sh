#!/usr/bin/env bash
# Run a test step with its whole output kept in build/test-logs/<name>.log; when it
# fails, end with a short account of why (CI shows only the last lines of a run).
# Under make test (LLMOPS_TEST_T0, LLMOPS_TEST_BUDGET set) a step is stopped when the
# whole run is over budget, so the account is printed before CI's own limit kills it, and
# every step's time goes to build/test-logs/times.txt.
#
#   scripts/logged.sh NAME COMMAND [ARGS...]
set -uo pipefail
name="$1"; shift
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p build/test-logs
log="build/test-logs/${name}.log"
times="build/test-logs/times.txt"
# The machine's busy share over the step (all cores, every lane): how much room a step leaves.
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
read -r busy0 total0 < <(cpu_ticks)
start=$(date +%s)
t0="${LLMOPS_TEST_T0:-$start}"
limit=()
if [[ -n "${LLMOPS_TEST_BUDGET:-}" ]]; then
  left=$(( t0 + LLMOPS_TEST_BUDGET - start ))
  (( left > 60 )) || left=60
  limit=(timeout --kill-after=60 "$left")
fi
# Every pytest of the step (Molecule's verify ones too) notes its failures here, for why_failed.py.
failures="$PWD/build/test-logs/${name}.failures"
rm -f "$failures"
export LLMOPS_TEST_FAILURES="$failures"
export PYTHONPATH="$here/pytest_plugins${PYTHONPATH:+:$PYTHONPATH}"
export PYTEST_ADDOPTS="-p llmops_failures${PYTEST_ADDOPTS:+ $PYTEST_ADDOPTS}"
echo "== ${name}: started at +$(( (start - t0) / 60 )) min ${limit[*]:+(at most ${left} s)}"
"${limit[@]}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
end=$(date +%s)
read -r busy1 total1 < <(cpu_ticks)
cpu=$(( (busy1 - busy0) * 100 / (total1 - total0 > 0 ? total1 - total0 : 1) ))
line="${name}: exit ${status} after $(( end - start )) s (ended at +$(( (end - t0) / 60 )) min; machine ${cpu} % busy)"
echo "$line" >> "$times"
echo "== $line"
if [[ $status -eq 124 || $status -eq 137 ]]; then
  echo "== ${name} was stopped: make test is over its budget of ${LLMOPS_TEST_BUDGET:-?} s. Steps so far:"
  cat "$times"
fi
if [[ $status -ne 0 ]]; then
  # Kept beside the log: make test prints every account again at its very end.
  python3 "$here/why_failed.py" "$log" "$name" "$status" "$failures" | tee "build/test-logs/${name}.why"
fi
exit "$status"
