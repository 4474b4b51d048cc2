# Shared by run-fresh-machine.sh and run-airgap.sh (sourced): one timed phase of a run.
# Its output goes to $logs/<phase>.log with epoch-time prefixes and to stdout, its wall time to
# $logs/phases.tsv; a failure sets $failed (read by the caller's EXIT trap) and exits.
phase() {
  local phase="$1"; shift
  local start=$EPOCHREALTIME
  echo "== $phase: $*"
  set +e
  ( set -e; "$@" ) 2>&1 | while IFS= read -r line; do
    printf '%s %s\n' "$EPOCHREALTIME" "$line" >>"$logs/$phase.log"
    printf '%s\n' "$line"
  done
  local status=${PIPESTATUS[0]}
  set -e
  printf '%s\t%s\t%s\t%s\n' "$phase" "$start" "$EPOCHREALTIME" "$status" >>"$logs/phases.tsv"
  if [[ $status -ne 0 ]]; then
    failed="$phase (exit $status)"
    echo "== $phase FAILED (exit $status); log: $logs/$phase.log" >&2
    exit 1
  fi
}
