"""A sentence-transformers model run without torch, once its ONNX export is cached and verified.

Importing torch and sentence-transformers and loading the model through them costs a KB build
seconds and hundreds of MB before the first chunk is embedded. When the model is the plain
recipe - modules.json: Transformer, Pooling (one of cls, mean, max), optionally Normalize - the
same vectors come from the model's own tokenizer.json (the `tokenizers` library that transformers'
fast tokenizers wrap), the cached ONNX transformer, and pooling and normalize in numpy.

Nothing is taken on trust: onnx_model.load, which runs with torch, writes a sidecar beside the
export only after this path's vectors matched torch's on its probe texts (onnx_model.TOLERANCE);
no sidecar, or any other recipe, and the caller takes the torch-loaded path.
"""

import json
import os

from qa_api.kb.atomic import write_json_atomic

SIDECAR_FORMAT = 1
POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_max_tokens": "max"}
OTHER_POOLING = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                 "pooling_mode_lasttoken")


class PlainUnsupported(Exception):
    pass


def _read(folder, name):
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise PlainUnsupported("%s: %s" % (name, exc)) from None


def recipe(folder):
    """What the plain path needs from the folder: {max_seq_length, lower, pooling, normalize};
    PlainUnsupported naming what is not the plain recipe."""
    modules = _read(folder, "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise PlainUnsupported("modules %s are not Transformer, Pooling[, Normalize]" % kinds)
    if modules[0].get("path", "") not in ("", "."):
        raise PlainUnsupported("the transformer is in a subfolder (%s)" % modules[0]["path"])
    pooling = _read(folder, os.path.join(modules[1]["path"], "config.json"))
    modes = [mode for key, mode in POOLING_MODES.items() if pooling.get(key)]
    if len(modes) != 1 or any(pooling.get(key) for key in OTHER_POOLING):
        raise PlainUnsupported("pooling %s is not one of cls, mean, max" % pooling)
    config = _read(folder, "sentence_bert_config.json")
    if not isinstance(config.get("max_seq_length"), int):
        raise PlainUnsupported("sentence_bert_config.json gives no max_seq_length")
    if not os.path.isfile(os.path.join(folder, "tokenizer.json")):
        raise PlainUnsupported("no tokenizer.json")
    return {"max_seq_length": config["max_seq_length"], "lower": bool(config.get("do_lower_case")),
            "pooling": modes[0], "normalize": len(kinds) == 3}


def sidecar_path(graph_path):
    return graph_path + ".plain.json"


def mark_verified(graph_path, folder):
    """Record that the plain path reproduces torch for this export (called by onnx_model.load)."""
    write_json_atomic(sidecar_path(graph_path), {"format": SIDECAR_FORMAT, "recipe": recipe(folder)})


def verified(graph_path, folder):
    """Whether a verified sidecar of this export describes the folder's recipe as it is now."""
    try:
        with open(sidecar_path(graph_path), encoding="utf-8") as handle:
            mark = json.load(handle)
        return mark.get("format") == SIDECAR_FORMAT and mark.get("recipe") == recipe(folder)
    except (OSError, ValueError, PlainUnsupported):
        return False


class PlainOnnxModel:
    """encode(texts) -> float32 vectors, and token_counts(texts), with no torch in the process."""

    def __init__(self, folder, graph, threads, providers=None):
        from tokenizers import Tokenizer

        from qa_api.kb.onnx_model import session

        self.recipe = recipe(folder)
        limit = self.recipe["max_seq_length"]
        self.counter = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.counter.no_padding()
        self.counter.enable_truncation(limit)
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.tokenizer.enable_truncation(limit)
        pad_token = self._pad_token(folder)
        pad_id = self.tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise PlainUnsupported("the pad token is not in the vocabulary")
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self.session = session(graph, threads, providers)
        self.inputs = [i.name for i in self.session.get_inputs()]

    @staticmethod
    def _pad_token(folder):
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                token = _read(folder, name).get("pad_token")
                token = token.get("content") if isinstance(token, dict) else token
                if token:
                    return token
        raise PlainUnsupported("no pad_token in special_tokens_map.json or tokenizer_config.json")

    def _texts(self, texts):
        texts = [str(t).strip() for t in texts]  # as sentence-transformers' Transformer.tokenize
        return [t.lower() for t in texts] if self.recipe["lower"] else texts

    def token_counts(self, texts):
        return [len(e.ids) for e in self.counter.encode_batch(self._texts(texts))]

    def encode(self, texts):
        import numpy as np

        encodings = self.tokenizer.encode_batch(self._texts(texts))
        columns = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                   "token_type_ids": [e.type_ids for e in encodings]}
        feeds = {name: np.asarray(columns[name], dtype=np.int64) for name in self.inputs}
        hidden = self.session.run(["last_hidden_state"], feeds)[0]
        mask = np.asarray(columns["attention_mask"], dtype=np.float32)[:, :, None]
        mode = self.recipe["pooling"]
        if mode == "cls":
            vectors = hidden[:, 0]
        elif mode == "mean":
            vectors = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        else:
            vectors = np.where(mask > 0, hidden, -1e9).max(axis=1)
        # always unit length, like every embedder here (normalize_embeddings=True on the torch path)
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return np.ascontiguousarray(vectors, dtype=np.float32)
