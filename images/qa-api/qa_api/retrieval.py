"""Query -> the top-k chunks of the loaded KB.

dense: cosine similarity (FAISS IndexFlatIP); lexical: BM25 (qa_api.kb.lexical);
hybrid (default): both, each `candidates` deep, fused by reciprocal rank fusion.
RRF uses ranks only, so cosine and BM25 scores never need to be made comparable.
With a reranker (qa_api.rerank, optional) the best `reranker.candidates` of that ranking
are rescored by a cross-encoder and the top_k of its order are returned.
"""

import time

from qa_api.kb.index import search

MODES = ("hybrid", "dense", "lexical")
RRF_K = 60  # the constant of Cormack et al. (2009): damps the weight of the very top ranks


def rrf(rankings, k=RRF_K):
    """Reciprocal rank fusion: [(row, score)] by sum(1 / (k + rank)) over the rankings
    (each a list of rows, best first, rank 1-based); ties keep the earlier best rank."""
    scores, best = {}, {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, 1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
            best[row] = min(best.get(row, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))


class Retriever:
    def __init__(self, kb, embedder, mode="hybrid", candidates=20, reranker=None, on_rerank=None):
        """reranker: a qa_api.rerank.Reranker or None; on_rerank(seconds): told each rerank's time."""
        if mode not in MODES:
            raise ValueError("retrieval mode must be one of %s, got %r" % ("/".join(MODES), mode))
        self.kb = kb
        self.embedder = embedder
        self.mode = mode
        self.candidates = candidates
        self.reranker = reranker
        self.on_rerank = on_rerank

    def dense(self, query, depth):
        vector = self.embedder.encode_query(query)
        return search(self.kb.index, vector, depth)

    def lexical(self, query, depth):
        return self.kb.lexical.search(query, depth) if self.kb.lexical is not None else []

    def ranked(self, query, top_k):
        """[(row, score)] best first; the score is cosine, BM25 or RRF by mode."""
        if self.mode == "dense":
            return self.dense(query, top_k)
        if self.mode == "lexical":
            return self.lexical(query, top_k)
        depth = max(self.candidates, top_k)
        fused = rrf([[row for row, dummy in self.dense(query, depth)],
                     [row for row, dummy in self.lexical(query, depth)]])
        return fused[:top_k]

    def retrieve(self, query, top_k):
        """[{"id", "source", "chunk", "heading", "score", "text"}] best first (blocking).
        Reranked: "score" is the cross-encoder's, "fused_score" the first stage's."""
        depth = max(self.reranker.candidates, top_k) if self.reranker is not None else top_k
        hits = []
        for row, score in self.ranked(query, depth):
            chunk = self.kb.chunks[row]
            hits.append({"id": row, "source": chunk["source"], "chunk": chunk["chunk"],
                         "heading": chunk.get("heading"), "score": round(score, 4),
                         "text": chunk["text"]})
        if self.reranker is None or not hits:
            return hits
        started = time.monotonic()
        hits = self.reranker.rerank(query, hits, top_k)
        if self.on_rerank is not None:
            self.on_rerank(time.monotonic() - started)
        return hits


def source_refs(hits):
    """The response's "sources": [{"source", "chunk", "score", "heading", "text"}]; text is
    the passage as sent to the model (a cut passage is cut here too), so a user can check it."""
    return [{"source": h["source"], "chunk": h["chunk"], "score": h["score"],
             "heading": h.get("heading"), "text": h.get("sent", h["text"])} for h in hits]


def sources_line(hits):
    """'Sources: a.md, b.pdf' (unique files, best first)."""
    names = []
    for hit in hits:
        if hit["source"] not in names:
            names.append(hit["source"])
    return "Sources: " + (", ".join(names) if names else "none")
