#!/usr/bin/env bash
# Build llmops/qa-api-test:<tag of QA_API_IMAGE> (Dockerfile.test: the runtime image plus pytest
# and tests/; the runtime image holds no test code) and print its name on stdout.
# Used by run-tests.sh and by `make eval-kb`.
#
# Environment:
#   QA_API_IMAGE       default: the newest tag of llmops/qa-api
#   QA_API_WHEELHOUSE  where the pytest wheels are (the images role's wheelhouse of qa-api,
#                      default /var/cache/llmops/wheels/qa-api); missing: pip download them
#   QA_API_TEST_IMAGE  name of the test image (default llmops/qa-api-test:<tag of QA_API_IMAGE>)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# docker lists the newest image first
QA_API_IMAGE="${QA_API_IMAGE:-$(docker images llmops/qa-api --format '{{.Repository}}:{{.Tag}}' | grep -v ':<none>$' | head -n 1)}"
if [[ -z "$QA_API_IMAGE" ]]; then
  echo "no llmops/qa-api image: build it first (docker build -t llmops/qa-api:dev images/qa-api)" >&2
  exit 2
fi
TEST_IMAGE="${QA_API_TEST_IMAGE:-llmops/qa-api-test:${QA_API_IMAGE##*:}}"
QA_API_WHEELHOUSE="${QA_API_WHEELHOUSE:-/var/cache/llmops/wheels/qa-api}"

# Only test-requirements.txt's wheels go into the context (not the whole wheelhouse).
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir "$context/test-wheels"
while read -r pin; do
  pin="${pin%% *}"  # name==version, without its --hash
  name="${pin%%==*}"; version="${pin#*==}"
  wheel="$(ls "$QA_API_WHEELHOUSE"/"${name}"-"${version}"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -n "$wheel" ]]; then
    cp "$wheel" "$context/test-wheels/"
  else
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --dest "$context/test-wheels" "$pin" >&2 \
      || { echo "no wheel for $pin in $QA_API_WHEELHOUSE and pip download failed: set QA_API_WHEELHOUSE" >&2; exit 2; }
  fi
done < <(grep -E '^[A-Za-z0-9_.-]+==' "$HERE/test-requirements.txt")
cp -r "$HERE/tests" "$HERE/pytest.ini" "$HERE/test-requirements.txt" "$HERE/Dockerfile.test" "$context/"
find "$context/tests" -name __pycache__ -prune -exec rm -rf {} +
docker build -q -f "$context/Dockerfile.test" --build-arg QA_API_IMAGE="$QA_API_IMAGE" -t "$TEST_IMAGE" "$context" >/dev/null
echo "$TEST_IMAGE"
