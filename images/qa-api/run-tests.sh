#!/usr/bin/env bash
# Run the qa-api test suite inside its image against a real inference server and a
# real Redis, all on a private internal Docker network; everything is removed on exit.
# A second llama.cpp server stands in for an external provider (routing by model): another
# model name and an API key, read from a mounted file as the inference role does it.
#
#   images/qa-api/run-tests.sh [pytest args...]
#
# The suite runs in llmops/qa-api-test:<tag of QA_API_IMAGE>, built here from QA_API_IMAGE plus
# pytest and tests/ (Dockerfile.test): the runtime image holds no test code.
#
# Environment (defaults: the newest tag of each image):
#   QA_API_IMAGE   llmops/qa-api:<newest>
#   QA_API_WHEELHOUSE  where the pytest wheels are (see build-test-image.sh)
#   LLM_IMAGE      llmops/llm-llamacpp:<newest>
#   REDIS_IMAGE    llmops/redis:<newest>; if there is none, a throwaway image with
#                  Debian's redis-server is built FROM llmops/base:bookworm
#   QA_TEST_PREFIX name prefix of the containers and the network (default qa-api-test)
#   LLM_WAIT       seconds to wait for the inference server (default 300)
set -euo pipefail

PREFIX="${QA_TEST_PREFIX:-qa-api-test}"
NETWORK="${PREFIX}-net"
REDIS_NAME="${PREFIX}-redis"
LLM_NAME="${PREFIX}-llm"
LLM2_NAME="${PREFIX}-llm2"
LLM2_MODEL="provider-mirror-135m"
TESTS_NAME="${PREFIX}-pytest"
LLM_WAIT="${LLM_WAIT:-300}"
REDIS_PASSWORD="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
LLM2_API_KEY="sk-test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

newest() {
  # docker lists the newest image first
  docker images "$1" --format '{{.Repository}}:{{.Tag}}' | grep -v ':<none>$' | head -n 1
}

QA_API_IMAGE="${QA_API_IMAGE:-$(newest llmops/qa-api)}"
LLM_IMAGE="${LLM_IMAGE:-$(newest llmops/llm-llamacpp)}"
REDIS_IMAGE="${REDIS_IMAGE:-$(newest llmops/redis)}"

if [[ -z "$QA_API_IMAGE" ]]; then
  echo "no llmops/qa-api image: build it first (docker build -t llmops/qa-api:dev images/qa-api)" >&2
  exit 2
fi
if [[ -z "$LLM_IMAGE" ]]; then
  echo "no llmops/llm-llamacpp image: build images/llm-llamacpp or set LLM_IMAGE" >&2
  exit 2
fi
if [[ -z "$REDIS_IMAGE" ]]; then
  REDIS_IMAGE="${PREFIX}-redis-debian:bookworm"
  if ! docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1; then
    echo "no llmops/redis image: building $REDIS_IMAGE with Debian's redis-server" >&2
    printf '%s\n' 'FROM llmops/base:bookworm' \
      'RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*' \
      'USER redis' | docker build -q -t "$REDIS_IMAGE" - >/dev/null
  fi
fi

# The test image (build-test-image.sh): the runtime image plus pytest and tests/.
HERE="$(cd "$(dirname "$0")" && pwd)"
TEST_IMAGE="$(QA_API_IMAGE="$QA_API_IMAGE" "$HERE/build-test-image.sh")"

KEY_DIR="$(mktemp -d)"
cleanup() {
  docker rm -f "$TESTS_NAME" "$LLM_NAME" "$LLM2_NAME" "$REDIS_NAME" >/dev/null 2>&1 || true
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  rm -rf "$KEY_DIR"
}
trap cleanup EXIT INT TERM
cleanup
mkdir -p "$KEY_DIR"
# Readable by the server's user (uid 10001) through the read-only bind mount.
printf '%s' "$LLM2_API_KEY" >"$KEY_DIR/api_key"
chmod 0755 "$KEY_DIR" && chmod 0644 "$KEY_DIR/api_key"

echo "qa-api: $TEST_IMAGE (from $QA_API_IMAGE) | inference: $LLM_IMAGE | redis: $REDIS_IMAGE | network: $NETWORK"
# --internal: the containers reach each other and nothing else
docker network create --internal "$NETWORK" >/dev/null
docker run -d --name "$REDIS_NAME" --network "$NETWORK" --entrypoint redis-server "$REDIS_IMAGE" \
  --requirepass "$REDIS_PASSWORD" --save '' --appendonly no --protected-mode no >/dev/null
docker run -d --name "$LLM_NAME" --network "$NETWORK" "$LLM_IMAGE" >/dev/null
docker run -d --name "$LLM2_NAME" --network "$NETWORK" -e LLM_MODEL_ALIAS="$LLM2_MODEL" \
  -e LLM_API_KEY_FILE=/run/secrets/api_key -e LLM_THREADS=1 \
  -v "$KEY_DIR/api_key:/run/secrets/api_key:ro" "$LLM_IMAGE" >/dev/null

# The suite itself waits (up to LLM_WAIT s) for the inference server to answer /v1/models.
status=0
docker run --name "$TESTS_NAME" --network "$NETWORK" \
  -e QA_TEST_LLM_BASE_URL="http://${LLM_NAME}:8000/v1" \
  -e QA_TEST_REDIS_HOST="$REDIS_NAME" -e QA_TEST_REDIS_PORT=6379 \
  -e QA_TEST_REDIS_PASSWORD="$REDIS_PASSWORD" -e QA_TEST_LLM_WAIT="$LLM_WAIT" \
  -e QA_TEST_LLM2_BASE_URL="http://${LLM2_NAME}:8000/v1" -e QA_TEST_LLM2_MODEL="$LLM2_MODEL" \
  -e QA_TEST_LLM2_API_KEY="$LLM2_API_KEY" \
  "$TEST_IMAGE" python -m pytest "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- last inference server logs ---" >&2
  docker logs --tail 30 "$LLM_NAME" >&2 || true
  echo "--- last logs of the second (keyed) inference server ---" >&2
  docker logs --tail 15 "$LLM2_NAME" >&2 || true
fi
exit $status
