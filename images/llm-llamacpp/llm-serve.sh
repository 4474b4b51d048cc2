#!/bin/sh
# Starts llama-cpp-python's OpenAI-compatible server with the settings the `inference`
# role passes as LLM_* variables; arguments given to the container are appended.
set -eu
set -- \
  --model "${LLM_MODEL:-/models/smollm2-135m-instruct.gguf}" \
  --model_alias "${LLM_MODEL_ALIAS:-smollm2-135m-instruct}" \
  --host "${LLM_HOST:-0.0.0.0}" \
  --port "${LLM_PORT:-8000}" \
  --n_ctx "${LLM_CTX:-2048}" \
  "$@"
# A key file (the inference role mounts it from the service's secrets): every request then
# needs "Authorization: Bearer <key>". Handed over as API_KEY in the server's environment,
# never as an argument (arguments show in `ps` on the host).
if [ -n "${LLM_API_KEY_FILE:-}" ]; then
  API_KEY="$(cat "$LLM_API_KEY_FILE")"
  if [ -z "$API_KEY" ]; then
    echo "llm-serve: LLM_API_KEY_FILE $LLM_API_KEY_FILE is empty: refusing to serve without the key" >&2
    exit 2
  fi
  export API_KEY
fi
# Unset: the server's own default (N_THREADS from the environment, else half the CPUs).
if [ -n "${LLM_THREADS:-}" ]; then
  set -- "$@" --n_threads "$LLM_THREADS"
fi
exec python -m llama_cpp.server "$@"
