#!/usr/bin/env bash
# make bench-kb: the KB builder against the seed article's LangChain pipeline on the evaluation
# corpus (tests/eval/corpus), same model, same container, alternating rounds
# (images/qa-api/tests/bench/kb_bench.py). Runs offline (network none) in the bench image:
# the qa-api test image plus the seed's wheels (tests/bench/kb-image). Prints one JSON object on
# stdout; BENCH_KB_OUT=file also writes it there. Settings are the roles' defaults.
#
# Environment:
#   QA_API_IMAGE          the qa-api image (default: the newest llmops/qa-api, as build-test-image.sh)
#   BENCH_KB_WHEELHOUSE   the seed's wheels (default /var/cache/llmops/wheels/bench-kb; the pinned
#                         files of tests/bench/kb-image/requirements.txt are pip-downloaded when missing)
#   BENCH_KB_IMAGE        name of the bench image (default llmops/qa-api-bench-kb:<qa-api tag>)
#   BENCH_KB_CONTAINER    name of the container (default llmops-bench-kb)
#   BENCH_KB_ARGS         more kb_bench arguments, e.g. "--rounds 3 --scale 2"
#   BENCH_KB_EVAL_DIR     a folder with corpus/ (zh/, en/) and questions.yml (default tests/eval)
set -euo pipefail
cd "$(dirname "$0")/../.."

default() {  # the value of a role default: default FILE VARIABLE
  sed -n "s/^$2: *\([0-9A-Za-z_-]*\).*/\1/p" "$1" | head -n 1
}
qa=roles/qa_service/defaults/main.yml
kb=roles/knowledge_base/defaults/main.yml
requirements=tests/bench/kb-image/requirements.txt
WHEELHOUSE="${BENCH_KB_WHEELHOUSE:-/var/cache/llmops/wheels/bench-kb}"

TEST_IMAGE="$(images/qa-api/build-test-image.sh)"
BENCH_IMAGE="${BENCH_KB_IMAGE:-llmops/qa-api-bench-kb:${TEST_IMAGE##*:}}"
CONTAINER="${BENCH_KB_CONTAINER:-llmops-bench-kb}"
EVAL_DIR="$(cd "${BENCH_KB_EVAL_DIR:-tests/eval}" && pwd)"

context="$(mktemp -d)"
trap 'rm -rf "$context"; docker rm -f "$CONTAINER" >/dev/null 2>&1 || true' EXIT
mkdir "$context/wheels"
missing=0
while read -r pin; do
  name="${pin%%==*}"; version="${pin#*==}"; version="${version%% *}"
  # wheel file names spell the project name with underscores, in any case
  wheel="$(ls "$WHEELHOUSE" 2>/dev/null | grep -i "^${name//[-_.]/[-_.]}-${version}-" | head -n 1 || true)"
  if [[ -n "$wheel" ]]; then cp "$WHEELHOUSE/$wheel" "$context/wheels/"; else missing=1; fi
done < <(grep -E '^[A-Za-z0-9_.-]+==' "$requirements")
if [[ $missing -eq 1 ]]; then
  echo "bench-kb: downloading the seed's wheels into $WHEELHOUSE" >&2
  mkdir -p "$WHEELHOUSE"
  python3 -m pip download --quiet --disable-pip-version-check --prefer-binary --no-deps \
    --dest "$WHEELHOUSE" -r "$requirements" >&2 \
    || { echo "bench-kb: pip download of $requirements failed: fill $WHEELHOUSE (BENCH_KB_WHEELHOUSE) with its files" >&2; exit 2; }
  rm -f "$context"/wheels/*
  cp "$WHEELHOUSE"/* "$context/wheels/"
fi
cp tests/bench/kb-image/Dockerfile "$requirements" "$context/"
docker build -q --build-arg TEST_IMAGE="$TEST_IMAGE" -t "$BENCH_IMAGE" "$context" >/dev/null
echo "bench-kb: $BENCH_IMAGE (from $TEST_IMAGE)" >&2

# shellcheck disable=SC2086  # BENCH_KB_ARGS is a list of arguments
out="$(docker run --rm --name "$CONTAINER" --network none --cpus 2 -v "$EVAL_DIR:/eval:ro" \
  "$BENCH_IMAGE" python -m tests.bench.kb_bench --corpus /eval/corpus --questions /eval/questions.yml \
    --top-k "$(default $qa qa_service_top_k)" \
    --candidates "$(default $qa qa_service_retrieval_candidates)" \
    --chunk-size "$(default $kb knowledge_base_chunk_size)" \
    --chunk-overlap "$(default $kb knowledge_base_chunk_overlap)" ${BENCH_KB_ARGS:-})"
echo "$out"
if [[ -n "${BENCH_KB_OUT:-}" ]]; then
  printf '%s\n' "$out" > "$BENCH_KB_OUT"
fi
