"""The sentence-transformers model's transformer runs in ONNX Runtime (qa_api.kb.onnx_model):
its vectors must be torch's (fp32, like for like), its export cached by the model's content,
and any failure must fall back to torch with a line saying why, never fail a build. Once verified,
a cached export runs with no torch in the process (qa_api.kb.onnx_plain), with the same vectors."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa_api.config import default_embed_model
from qa_api.kb import onnx_model, onnx_plain
from qa_api.kb.embedder import EmbeddingError, SentenceTransformerEmbedder
from qa_api.kb.identity import embedding_cache_key, model_digest
from tests.conftest import EMBED_NAME

TEXTS = [
    "VPN",
    "Which UDP port does the VPN use?",
    "grep searches for PATTERNS in each FILE. " * 6,
    "tar: the archiving utility, with options to create, list and extract archives. " * 40,  # > 256 tokens
    "端口",
    "如何查看网络连接的状态？",
    "网关的主配置文件位于 /etc/nginx/nginx.conf，修改之后必须先检查语法。" * 3,
    "关于备份：每天凌晨两点把数据库导出到对象存储，保留三十天。" * 30,  # > 256 tokens, cut
    "ssh 远程登录 remote login: the OpenSSH client, 客户端 " * 20,
]


@pytest.fixture(scope="module")
def torch_embedder():
    return SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME, runtime="torch")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("embeddings") / "onnx")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_dir):
    return SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME, runtime="onnx",
                                       onnx_dir=onnx_dir, digest=model_digest(default_embed_model()))


def test_onnx_vectors_are_torchs_for_english_and_chinese_of_all_lengths(torch_embedder, onnx_embedder):
    assert torch_embedder.runtime == "torch" and onnx_embedder.runtime == "onnxruntime"
    tokens = torch_embedder._token_counts(TEXTS)  # pylint: disable=protected-access
    assert max(tokens) == 256 and min(tokens) < 8  # truncated ones and short ones
    expected = torch_embedder.encode(TEXTS, batch_size=4)
    found = onnx_embedder.encode(TEXTS, batch_size=4)
    assert found.dtype == np.float32 and found.shape == (len(TEXTS), 384)
    assert float(np.abs(found - expected).max()) <= 1e-4
    assert float((found * expected).sum(axis=1).min()) >= 0.99999
    assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)
    # a query takes the same path as the passages
    query = onnx_embedder.encode_query(TEXTS[1])
    assert float(np.abs(query - torch_embedder.encode_query(TEXTS[1])).max()) <= 1e-4
    # the texts differ from each other far more than the runtimes do
    assert float((expected[0] * expected[4]).sum()) < 0.9


def test_the_export_is_cached_by_model_content_and_reused(onnx_embedder, onnx_dir):
    digest = model_digest(default_embed_model())
    path = onnx_model.cache_file(onnx_dir, digest, onnx_model.exporter_versions())
    # nothing partial left beside it; the sidecar says the export was verified without torch too
    assert sorted(os.listdir(onnx_dir)) == [os.path.basename(path), os.path.basename(onnx_plain.sidecar_path(path))]
    before = os.stat(path).st_mtime_ns
    again = SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME, runtime="onnx",
                                        onnx_dir=onnx_dir, digest=digest)
    assert again.runtime == "onnxruntime" and os.stat(path).st_mtime_ns == before
    # another model content, other exporter versions: another file
    versions = onnx_model.exporter_versions()
    assert onnx_model.cache_file(onnx_dir, "other", versions) != path
    assert onnx_model.cache_file(onnx_dir, digest, dict(versions, torch="0")) != path
    with pytest.raises(ValueError, match="content digest"):
        onnx_model.cache_file(onnx_dir, "", versions)


def test_a_verified_export_embeds_without_torch_the_same_vectors(onnx_embedder, onnx_dir, torch_embedder):
    plain = SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME, runtime="onnx", onnx_dir=onnx_dir,
                                        digest=model_digest(default_embed_model()))
    assert plain.plain is not None and plain.model is None and plain.runtime == "onnxruntime"
    assert plain.dim == torch_embedder.dim
    # pylint: disable=protected-access
    assert plain._token_counts(TEXTS) == torch_embedder._token_counts(TEXTS)  # same truncation, same batches
    expected = torch_embedder.encode(TEXTS, batch_size=4)
    found = plain.encode(TEXTS, batch_size=4)
    assert float(np.abs(found - expected).max()) <= 1e-4
    assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)
    assert float(np.abs(plain.encode_query(TEXTS[5]) - torch_embedder.encode_query(TEXTS[5])).max()) <= 1e-4


def test_the_plain_path_does_not_import_torch(onnx_embedder, onnx_dir):
    code = ("import sys; from qa_api.config import default_embed_model as m; "
            "from qa_api.kb.embedder import SentenceTransformerEmbedder as S; "
            "e = S(m(), 'x', runtime='onnx', onnx_dir=sys.argv[1]); e.encode(['a', '端口']); "
            "print(e.runtime, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, onnx_dir], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.split() == ["onnxruntime", "False", "False"], out.stderr[-2000:]


def test_no_sidecar_or_a_changed_recipe_means_the_torch_loaded_path(onnx_embedder, onnx_dir, tmp_path):
    digest = model_digest(default_embed_model())
    path = onnx_model.cache_file(onnx_dir, digest, onnx_model.exporter_versions())
    assert onnx_plain.verified(path, default_embed_model())
    copy = tmp_path / "model"
    shutil.copytree(default_embed_model(), copy)
    pooling = copy / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    assert not onnx_plain.verified(path, str(copy)), "the sidecar describes mean pooling, the folder says cls"
    assert onnx_model.load_plain(str(copy), onnx_dir, digest) is None


@pytest.mark.parametrize("change, message", [
    ({"modules": [{"path": "", "type": "sentence_transformers.models.Transformer"},
                  {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                  {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]}, "are not Transformer, Pooling"),
    ({"pooling": {"pooling_mode_mean_tokens": True, "pooling_mode_weightedmean_tokens": True}}, "is not one of cls"),
    ({"pooling": {"pooling_mode_mean_tokens": False}}, "is not one of cls"),
    ({"config": {"do_lower_case": False}}, "no max_seq_length"),
])
def test_other_recipes_are_left_to_sentence_transformers(tmp_path, change, message):
    (tmp_path / "1_Pooling").mkdir()
    modules = change.get("modules") or [{"path": "", "type": "sentence_transformers.models.Transformer"},
                                        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(change.get("pooling") or {"pooling_mode_cls_token": True}))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps(change.get("config") or {"max_seq_length": 512}))
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(onnx_plain.PlainUnsupported, match=message):
        onnx_plain.recipe(str(tmp_path))


def test_an_unwritable_cache_falls_back_to_torch_and_says_why(tmp_path, capsys, torch_embedder):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    embedder = SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME, runtime="onnx",
                                           onnx_dir=str(blocker / "onnx"), digest="d")
    assert embedder.runtime == "torch"
    assert "with torch, not ONNX Runtime: export or load failed" in capsys.readouterr().err
    assert np.array_equal(embedder.encode(TEXTS[:3]), torch_embedder.encode(TEXTS[:3]))


def test_without_a_cache_dir_the_export_is_made_in_memory():
    embedder = SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME)  # the service's way
    assert embedder.runtime == "onnxruntime"


def test_an_unknown_runtime_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("QA_EMBED_RUNTIME", "tensorrt")
    with pytest.raises(EmbeddingError, match="QA_EMBED_RUNTIME must be one of onnx, torch, got 'tensorrt'"):
        SentenceTransformerEmbedder(default_embed_model(), EMBED_NAME)


def test_vectors_of_one_runtime_are_not_cached_for_the_other():
    assert embedding_cache_key("m", "d", runtime="onnxruntime") != embedding_cache_key("m", "d", runtime="torch")
    assert embedding_cache_key("m", "d", runtime="torch") == embedding_cache_key("m", "d", runtime="torch")


@pytest.mark.parametrize("affinity,quota,period,cpus", [
    (8, -1, 100000, 8),       # no quota: the affinity
    (8, 200000, 100000, 2),   # docker --cpus 2
    (8, 150000, 100000, 2),   # --cpus 1.5: two threads share 1.5 CPUs
    (2, 400000, 100000, 2),   # a quota above the cpuset
    (0, 50000, 100000, 1),    # never fewer than one
])
def test_threads_follow_the_cpus_the_container_has(affinity, quota, period, cpus):
    assert onnx_model.container_cpus(affinity, quota, period) == cpus
