"""The optional reranker as the release hands it to a color's qa-api, computed by the real task
files (release describe.yml -> qa_service define.yml) on localhost: off by default (nothing in the
definition changes, so upgrading releases nothing); on, the host folder is mounted read-only and
named by QA_RERANK_MODEL, and its content digest (what color_spec puts in the spec for the
mount) changes when a file of the folder does, under the same path."""
import sys

from test_llm_backends import ROOT, describe

sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.llmops.bluegreen.plugins.module_utils._spec import (  # noqa: E402
    DigestCache, bind_sources, path_digest)

LLAMACPP = {"inference_engine": "llamacpp", "inference_llamacpp_image": "llmops/llm-llamacpp:x"}


def test_no_reranker_by_default(tmp_path):
    proc, facts = describe(tmp_path, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    qa = facts["qa_service_defined"]
    assert not [k for k in qa["env"] if k.startswith("QA_RERANK")]
    assert not [m for m in qa["mounts"] if m["target"] == "/models/rerank"]


def test_a_reranker_folder_is_mounted_read_only_and_its_content_is_in_the_spec(tmp_path):
    folder = tmp_path / "bge-reranker"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["XLMRobertaForSequenceClassification"]}')
    (folder / "model.safetensors").write_bytes(b"weights-1")
    proc, facts = describe(tmp_path, qa_service_rerank_model_dir=str(folder), qa_service_rerank_candidates=12,
                           **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    qa = facts["qa_service_defined"]
    assert {k: v for k, v in qa["env"].items() if k.startswith("QA_RERANK")} == {
        "QA_RERANK_MODEL": "/models/rerank", "QA_RERANK_CANDIDATES": "12", "QA_RERANK_MAX_LENGTH": "256"}
    (mount,) = [m for m in qa["mounts"] if m["target"] == "/models/rerank"]
    assert mount == {"type": "bind", "source": str(folder), "target": "/models/rerank", "read_only": True}
    # color_spec digests every bind source: new weights under the same path give a new spec
    assert str(folder) in bind_sources(qa)
    before = path_digest(str(folder), DigestCache())
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert path_digest(str(folder), DigestCache()) != before
