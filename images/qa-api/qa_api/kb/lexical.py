"""Lexical (BM25) index of a KB version, beside the dense one.

The dense English model misses exact terms: commands, file names, options and most
Chinese words. BM25 over this tokenizer finds them:
- runs of CJK characters -> every character and every adjacent pair (no word
  segmenter needed: a Chinese query shares its bigrams with the passage);
- other letters/digits -> lower-cased words; identifiers joined by . - / : are kept
  whole ("nginx.conf", "chunk-size") and also split into their parts;
- first NFKC: full-width letters and digits of Chinese and Japanese text ("ＶＰＮ", "５１８２０")
  and the ideographic space are the terms and the space a query types ("VPN", "51820").

Stored as lexical.npz: the term counts per chunk (CSR, integers) and the vocabulary.
Written with fixed zip timestamps, so the same chunks give the same bytes (the KB
checksum only changes when the index does). BM25 weights are computed at load.
"""

import io
import re
import unicodedata
import zipfile

import numpy as np

FILE = "lexical.npz"
TOKENIZER = "cjk-uni-bi+ascii-ident/2"  # /2: NFKC first
K1 = 1.2
B = 0.75

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# a CJK run, or a word (letters/digits/_ but not CJK) possibly joined by . - / :
_TOKEN = re.compile(r"([%s]+)|((?:[^\W%s]+)(?:[./:\-](?:[^\W%s]+))*)" % (_CJK, _CJK, _CJK))
_JOINERS = re.compile(r"[./:\-]")


class LexicalError(Exception):
    pass


def tokenize(text):
    """Terms of a text, in order, repeats kept (BM25 counts them)."""
    terms = []
    for cjk, word in _TOKEN.findall(unicodedata.normalize("NFKC", text)):
        if cjk:
            terms.extend(cjk)
            terms.extend(cjk[i:i + 2] for i in range(len(cjk) - 1))
        else:
            word = word.lower()
            terms.append(word)
            parts = _JOINERS.split(word)
            if len(parts) > 1:
                terms.extend(p for p in parts if p)
    return terms


def count_terms(texts):
    """(vocab sorted, indptr, indices, counts): a CSR term-count matrix, one row per text."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not texts:
        return [], np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    # analyzer=callable: sklearn only counts; the vocabulary comes out sorted (deterministic)
    vectorizer = CountVectorizer(analyzer=tokenize, dtype=np.int32)
    try:
        matrix = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no text yielded a single term
        return [], np.zeros(len(texts) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    matrix.sort_indices()
    vocab = vectorizer.get_feature_names_out().tolist()
    return vocab, matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), \
        matrix.data.astype(np.int32)


def _member(archive, name, array):
    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    archive.writestr(info, buffer.getvalue())


def write_index(texts, path):
    """Write lexical.npz for these chunk texts (index order); -> the manifest's "lexical" dict."""
    vocab, indptr, indices, counts = count_terms(texts)
    # the vocabulary as UTF-8 bytes, one term a line (a term never contains a newline)
    vocab_bytes = np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        _member(archive, "indptr", indptr)
        _member(archive, "indices", indices)
        _member(archive, "counts", counts)
        _member(archive, "vocab", vocab_bytes)
    return {"type": "bm25", "file": FILE, "tokenizer": TOKENIZER, "k1": K1, "b": B,
            "terms": len(vocab)}


class LexicalIndex:
    """BM25 scores of chunks for a query; weights precomputed once at load."""

    def __init__(self, vocab, indptr, indices, counts, k1=K1, b=B):
        from scipy.sparse import csr_matrix

        self.terms = {term: i for i, term in enumerate(vocab)}
        rows = len(indptr) - 1
        tf = csr_matrix((counts.astype(np.float32), indices, indptr), shape=(rows, len(vocab)))
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        average = lengths.mean() if rows and lengths.mean() > 0 else 1.0
        df = np.bincount(indices, minlength=len(vocab))
        idf = np.log1p((rows - df + 0.5) / (df + 0.5)).astype(np.float32)  # Lucene's, never < 0
        norm = np.repeat(k1 * (1 - b + b * lengths / average), np.diff(indptr)).astype(np.float32)
        weights = tf.copy()
        weights.data = idf[indices] * tf.data * (k1 + 1) / (tf.data + norm)
        self.weights = weights.tocsc()  # a query touches a few columns
        self.size = rows

    def __len__(self):
        return self.size

    def search(self, query, top_k):
        """[(row, score)] best first, only chunks sharing a term with the query."""
        columns = [self.terms[t] for t in set(tokenize(query)) if t in self.terms]
        if not columns or top_k <= 0:
            return []
        scores = np.asarray(self.weights[:, columns].sum(axis=1)).ravel()
        hits = np.flatnonzero(scores > 0)
        if len(hits) > top_k:
            hits = hits[np.argpartition(-scores[hits], top_k - 1)[:top_k]]
        # ties broken by row (document order), so results are reproducible
        order = sorted(hits.tolist(), key=lambda row: (-scores[row], row))
        return [(row, float(scores[row])) for row in order]


def build_in_memory(texts):
    """The index of a KB built before lexical.npz existed (same tokenizer, not stored)."""
    vocab, indptr, indices, counts = count_terms(texts)
    return LexicalIndex(vocab, indptr, indices, counts)


def read_index(path, expected_rows):
    try:
        with np.load(path, allow_pickle=False) as data:
            indptr, indices, counts = data["indptr"], data["indices"], data["counts"]
            vocab_bytes = data["vocab"].tobytes().decode("utf-8")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise LexicalError("cannot read lexical index %s: %s" % (path, exc)) from None
    vocab = vocab_bytes.split("\n") if vocab_bytes else []
    if len(indptr) - 1 != expected_rows or (len(indices) and indices.max() >= len(vocab)):
        raise LexicalError("lexical index %s has %d rows and %d terms, the KB %d chunks"
                           % (path, len(indptr) - 1, len(vocab), expected_rows))
    return LexicalIndex(vocab, indptr, indices, counts)
