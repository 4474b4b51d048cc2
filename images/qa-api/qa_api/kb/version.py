"""Content-addressed KB version (docs/contracts.md, "KB version directory")."""

import hashlib
import json

# 2: the version covers the embedding model's content digest and the builder's digest
SCHEMA = 2


def canonical_json(value):
    # json.dumps defaults otherwise (ensure_ascii=True: "。" is written as \u3002)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def compute_version(inputs_fingerprint, splitter, embedding_name, embedding_digest, builder_digest):
    """First 12 hex of sha256 over the canonical JSON of documents, splitter, model and builder."""
    payload = {"inputs": inputs_fingerprint, "splitter": splitter,
               "embedding": {"name": embedding_name, "digest": embedding_digest},
               "builder": builder_digest, "schema": SCHEMA}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:12]
