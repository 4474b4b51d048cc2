"""Query -> the top-k chunks of the loaded KB (cosine similarity via IndexFlatIP)."""

from qa_api.kb.index import search


class Retriever:
    def __init__(self, kb, embedder):
        self.kb = kb
        self.embedder = embedder

    def retrieve(self, query, top_k):
        """[{"id", "source", "chunk", "score", "text"}] best first (blocking: run in a thread)."""
        vector = self.embedder.encode([query])[0]
        hits = []
        for row, score in search(self.kb.index, vector, top_k):
            chunk = self.kb.chunks[row]
            hits.append({"id": row, "source": chunk["source"], "chunk": chunk["chunk"],
                         "score": round(score, 4), "text": chunk["text"]})
        return hits


def source_refs(hits):
    """The response's "sources": [{"source", "chunk", "score"}]."""
    return [{"source": h["source"], "chunk": h["chunk"], "score": h["score"]} for h in hits]


def sources_line(hits):
    """'Sources: a.md, b.pdf' (unique files, best first)."""
    names = []
    for hit in hits:
        if hit["source"] not in names:
            names.append(hit["source"])
    return "Sources: " + (", ".join(names) if names else "none")
