"""Read and verify a KB version directory mounted into the service."""

import json
import logging
import os

from qa_api.fingerprint import FingerprintError, fingerprint_dir, sha256_file
from qa_api.kb import lexical, models
from qa_api.kb.index import read_index
from qa_api.kb.version import SCHEMA

log = logging.getLogger("qa_api.kb")


class KBError(Exception):
    pass


def read_manifest(kb_dir):
    path = os.path.join(kb_dir, "manifest.json")
    if not os.path.isdir(kb_dir):
        raise KBError("KB directory %s does not exist (mount a KB version dir at QA_KB_DIR)"
                      % kb_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise KBError("%s is missing: %s is not a KB version directory" % (path, kb_dir)) from None
    except (OSError, ValueError) as exc:
        raise KBError("cannot read %s: %s" % (path, exc)) from None
    if not isinstance(manifest, dict):
        raise KBError("%s: not a KB manifest (a JSON object)" % path)
    if manifest.get("schema") != SCHEMA:
        raise KBError("%s: manifest schema %r, this qa-api reads schema %d (it records the embedding "
                      "model's digest): rebuild the KB with the kb_build of this collection version"
                      % (path, manifest.get("schema"), SCHEMA))
    return manifest


def service_model(manifest, embed_model, embed_name):
    """(model folder, name) the service embeds queries with. QA_EMBED_MODEL=auto: the bundled
    model the manifest names (the builder's auto choice, or a KB built with a bundled model);
    otherwise the configured folder. Either way check_embedding_digest then compares bytes."""
    if embed_model != models.AUTO:
        return embed_model, embed_name
    name = (manifest.get("embedding") or {}).get("name")
    if name not in models.BUNDLED:
        raise KBError("KB %s version %s was embedded with %r, which is not bundled with this image "
                      "(bundled: %s): QA_EMBED_MODEL=auto loads only those. Set QA_EMBED_MODEL to "
                      "the folder of the model the KB was built with (qa_service_embed_model_dir)"
                      % (manifest.get("name"), manifest.get("version"), name,
                         ", ".join(sorted(models.BUNDLED))))
    if embed_name not in (models.AUTO, name):
        raise KBError("QA_EMBED_NAME %r but the KB was embedded with %r: leave QA_EMBED_NAME auto "
                      "with QA_EMBED_MODEL=auto" % (embed_name, name))
    path = models.bundled_path(name)
    if not path:
        raise KBError("KB %s version %s was embedded with %s, whose package (%s) is not installed "
                      "in this image: serve it with the qa-api image that built it"
                      % (manifest.get("name"), manifest.get("version"), name, models.BUNDLED[name][1]))
    return path, name


def check_embedding_digest(manifest, model_path, digest):
    """Refuse a KB whose index was embedded by other model bytes than the service's model."""
    built_with = (manifest.get("embedding") or {}).get("digest")
    if built_with != digest:
        raise KBError(
            "embedding model mismatch: KB %s version %s was embedded with model digest %s, but "
            "QA_EMBED_MODEL %s has digest %s; queries would not match the index. Mount the model "
            "the KB was built with at QA_EMBED_MODEL, or rebuild the KB with this model "
            "(kb_build embedding_model_dir / knowledge_base_embedding_model_dir)"
            % (manifest.get("name"), manifest.get("version"), built_with, model_path, digest))


def compute_checksum(kb_dir):
    try:
        return fingerprint_dir(kb_dir)
    except (FingerprintError, OSError) as exc:
        raise KBError("cannot fingerprint %s: %s" % (kb_dir, exc)) from None


def verify(kb_dir, manifest, checksum):
    """Raise KBError unless the directory is exactly what kb_build finalized."""
    expected = manifest.get("checksum")
    if not expected:
        raise KBError("manifest.json has no checksum: the KB was not finalized by kb_build")
    for name, want in sorted((manifest.get("files") or {}).items()):
        path = os.path.join(kb_dir, name)
        try:
            have = sha256_file(path)
        except OSError as exc:
            raise KBError("KB file %s unreadable: %s" % (name, exc.strerror)) from None
        if have != want:
            raise KBError("KB file %s changed after build: sha256 %s, manifest says %s"
                          % (name, have, want))
    if checksum != expected:
        raise KBError("KB checksum mismatch: computed %s over %s, manifest says %s"
                      % (checksum, kb_dir, expected))


def read_chunks(kb_dir):
    path = os.path.join(kb_dir, "chunks.jsonl")
    chunks = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if record.get("id") != len(chunks):
                    raise KBError("%s line %d: id %r out of order" % (path, number, record.get("id")))
                chunks.append(record)
    except (OSError, ValueError) as exc:
        raise KBError("cannot read %s: %s" % (path, exc)) from None
    return chunks


class KnowledgeBase:
    """A verified, loaded KB version: chunks in index order, the FAISS and the BM25 index."""

    def __init__(self, kb_dir, manifest, checksum, chunks, index, lexical_index=None):
        self.dir = kb_dir
        self.manifest = manifest
        self.checksum = checksum
        self.chunks = chunks
        self.index = index
        self.lexical = lexical_index

    @property
    def dim(self):
        return self.index.d


def load_kb(kb_dir, manifest, checksum, embed_name, embed_dim):
    verify(kb_dir, manifest, checksum)
    embedding = manifest.get("embedding") or {}
    if embedding.get("name") != embed_name:
        raise KBError("KB was embedded with %r but the service embeds queries with %r "
                      "(QA_EMBED_NAME)" % (embedding.get("name"), embed_name))
    chunks = read_chunks(kb_dir)
    try:
        index = read_index(os.path.join(kb_dir, (manifest.get("index") or {}).get("file", "index.faiss")))
    except RuntimeError as exc:
        raise KBError("cannot read FAISS index in %s: %s" % (kb_dir, exc)) from None
    if index.ntotal != len(chunks) or len(chunks) != manifest.get("chunk_count"):
        raise KBError("KB inconsistent: index has %d rows, chunks.jsonl %d, manifest chunk_count %r"
                      % (index.ntotal, len(chunks), manifest.get("chunk_count")))
    if index.d != embed_dim:
        raise KBError("KB index dimension %d differs from the embedding model's %d"
                      % (index.d, embed_dim))
    return KnowledgeBase(kb_dir, manifest, checksum, chunks, index, load_lexical(kb_dir, manifest, chunks))


def lexical_origin(kb):
    """/health: "stored" (lexical.npz of the version) or "in-memory" (an older KB)."""
    info = kb.manifest.get("lexical") or {}
    return "stored" if info.get("tokenizer") == lexical.TOKENIZER else "in-memory"


def indexed_text(chunk):
    """What the dense and the lexical index see of a chunk: its heading path, then its text. A
    passage deep in a manual ("-r 递归地复制目录") then says which page and section it is in
    ("cp(1) > 描述"), which a question naming the command matches."""
    return "%s\n%s" % (chunk["heading"], chunk["text"]) if chunk.get("heading") else chunk["text"]


def load_lexical(kb_dir, manifest, chunks):
    """The stored BM25 index; a KB built before it (or with another tokenizer) still serves:
    the index is rebuilt in memory from its chunks, and the log says to rebuild the KB."""
    info = manifest.get("lexical") or {}
    if info.get("tokenizer") == lexical.TOKENIZER:
        path = os.path.join(kb_dir, info.get("file", lexical.FILE))
        if sha256_file(path) != info.get("sha256"):
            raise KBError("KB file %s changed after build: sha256 differs from the manifest's "
                          "lexical.sha256" % info.get("file", lexical.FILE))
        try:
            return lexical.read_index(path, len(chunks))
        except lexical.LexicalError as exc:
            raise KBError(str(exc)) from None
    log.warning("KB %s version %s has no lexical index of tokenizer %s (built by an older "
                "kb_build): building it in memory; rebuild the KB to store it in the version",
                manifest.get("name"), manifest.get("version"), lexical.TOKENIZER)
    # the same text the builder indexes, so an old KB ranks as its rebuild would
    return lexical.build_in_memory([indexed_text(c) for c in chunks])


def finalize(kb_dir):
    """What kb_build does after the builder: add "files" and "checksum" (atomically).

    Kept here for local use and tests; the Ansible module is the real finalizer.
    """
    from qa_api.kb.atomic import write_json_atomic

    manifest = read_manifest(kb_dir)
    manifest["files"] = {name: sha256_file(os.path.join(kb_dir, name))
                         for name in ("chunks.jsonl", "index.faiss", lexical.FILE)
                         if os.path.exists(os.path.join(kb_dir, name))}
    manifest["checksum"] = compute_checksum(kb_dir)
    write_json_atomic(os.path.join(kb_dir, "manifest.json"), manifest)
    return manifest
