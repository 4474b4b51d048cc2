"""FAISS IndexFlatIP over L2-normalized vectors: inner product = cosine."""

import numpy as np


def build_index(vectors):
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype="float32")
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(vectors)
    return index


def write_index(index, path):
    import faiss

    faiss.write_index(index, path)


def read_index(path):
    import faiss

    return faiss.read_index(path)


def search(index, query_vector, top_k):
    """[(row, score)] best first; rows beyond ntotal are dropped (faiss pads with -1)."""
    query = np.ascontiguousarray(query_vector, dtype="float32").reshape(1, -1)
    k = min(top_k, index.ntotal)
    if k <= 0:
        return []
    scores, rows = index.search(query, k)
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
