"""Embedding cache in SQLite keyed by (model key, chunk sha256).

The model key (identity.embedding_cache_key) covers the model's bytes, not only its
name: a new model under the same name never gets the old model's vectors.

A rebuild after one edited document embeds only that document's new chunks.
A cache is only a cache: a corrupt file is moved aside and started afresh.
"""

import os
import sqlite3
import sys
import time

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, sha256)
)
"""


class EmbeddingCache:
    def __init__(self, path):
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as exc:
            aside = "%s.corrupt-%d" % (path, int(time.time()))
            print("embedding cache %s unusable (%s); moved to %s" % (path, exc, aside),
                  file=sys.stderr)
            os.replace(path, aside)
            self.db = self._open()

    def _open(self):
        db = sqlite3.connect(self.path, timeout=60)
        db.execute(_SCHEMA)
        db.execute("SELECT count(*) FROM embeddings").fetchone()
        db.commit()
        return db

    def get_many(self, model, shas, dim):
        """{sha: vector} for the cached ones of the right dimension."""
        found = {}
        unique = sorted(set(shas))
        for start in range(0, len(unique), 500):
            batch = unique[start:start + 500]
            rows = self.db.execute(
                "SELECT sha256, vector FROM embeddings WHERE model = ? AND dim = ? "
                "AND sha256 IN (%s)" % ",".join("?" * len(batch)),
                [model, dim] + batch,
            )
            for sha, blob in rows:
                vector = np.frombuffer(blob, dtype="<f4")
                if vector.shape[0] == dim:
                    found[sha] = vector
        return found

    def put_many(self, model, items):
        """items: iterable of (sha, float32 vector)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, sha256, dim, vector) VALUES (?, ?, ?, ?)",
                [(model, sha, int(v.shape[0]), np.asarray(v, dtype="<f4").tobytes())
                 for sha, v in items],
            )

    def close(self):
        self.db.close()
