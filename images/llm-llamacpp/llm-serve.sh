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
# Unset: the server's own default (N_THREADS from the environment, else half the CPUs).
if [ -n "${LLM_THREADS:-}" ]; then
  set -- "$@" --n_threads "$LLM_THREADS"
fi
exec python -m llama_cpp.server "$@"
