"""Content-addressed KB version (docs/contracts.md, "KB version directory")."""

import hashlib
import json

SCHEMA = 1


def canonical_json(value):
    # json.dumps defaults otherwise (ensure_ascii=True: "。" is written as \u3002)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def compute_version(inputs_fingerprint, splitter, embedding_name):
    """First 12 hex of sha256 over the canonical JSON of inputs, splitter, embedding."""
    payload = {"inputs": inputs_fingerprint, "splitter": splitter,
               "embedding": embedding_name, "schema": SCHEMA}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:12]
