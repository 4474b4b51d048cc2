"""What the release hands a color's qa-api about routes by model and cache lifetimes, computed
by the real task files (release describe.yml -> inference define.yml + qa_service define.yml)
on localhost: the routes as QA_LLM_ROUTES naming key files, the keys in the secrets only,
the two cache TTLs (and the single TTL of before still setting both); bad routes refused at
the role's start with the route and backend named."""
import json

from test_llm_backends import describe
from test_role_inputs import run_role

ROUTE_KEY = "sk-route-provider-31415926SECRET"
LLAMACPP = {"inference_engine": "llamacpp", "inference_llamacpp_image": "llmops/llm-llamacpp:x"}
ROUTES = [{"model": "gpt-4o-mini", "backends": [
    {"name": "provider", "url": "https://api.provider.example/v1/", "model": "gpt-4o-mini-2024",
     "api_key": ROUTE_KEY},
    {"name": "spare", "url": "http://mirror.internal:8000/v1"}]}]


def test_routes_reach_the_qa_api_as_env_and_a_key_file_only(tmp_path):
    proc, facts = describe(tmp_path, qa_service_llm_routes=ROUTES,
                           qa_service_llm_default_model="gpt-4o-mini", **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    qa = facts["qa_service_defined"]
    env = qa["env"]
    assert json.loads(env["QA_LLM_ROUTES"]) == [{"model": "gpt-4o-mini", "backends": [
        {"name": "provider", "url": "https://api.provider.example/v1", "model": "gpt-4o-mini-2024",
         "api_key_file": "/run/secrets/llm_route_key_provider"},
        {"name": "spare", "url": "http://mirror.internal:8000/v1", "model": "gpt-4o-mini"}]}]
    assert env["QA_LLM_DEFAULT_MODEL"] == "gpt-4o-mini"
    (mount,) = [m for m in qa["mounts"] if m["target"] == "/run/secrets/llm_route_key_provider"]
    assert mount["read_only"] is True and mount["source"].endswith("/secrets/llm_route_key_provider")
    assert facts["qa_service_defined_secrets"]["llm_route_key_provider"] == ROUTE_KEY
    # the key is in the secrets only: not in an env value, the definition, or the play's output
    assert ROUTE_KEY not in json.dumps(qa) and ROUTE_KEY not in proc.stdout + proc.stderr


def test_cache_lifetimes_by_turns_with_their_defaults_and_overrides(tmp_path):
    proc, facts = describe(tmp_path, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    env = facts["qa_service_defined"]["env"]
    assert (env["QA_CACHE_TTL_SINGLE_TURN"], env["QA_CACHE_TTL_MULTI_TURN"]) == ("86400", "3600")
    assert "QA_CACHE_TTL" not in env
    # without routes nothing about them is rendered: the definition stays as it was
    assert "QA_LLM_ROUTES" not in env and "QA_LLM_DEFAULT_MODEL" not in env
    assert set(facts["qa_service_defined_secrets"]) == {"redis_password", "llm_api_key"}

    proc, facts = describe(tmp_path, qa_service_cache_ttl=900, qa_service_cache_ttl_multi_turn=120, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    env = facts["qa_service_defined"]["env"]
    # the single TTL of before still sets both; the new variable wins where given
    assert (env["QA_CACHE_TTL_SINGLE_TURN"], env["QA_CACHE_TTL_MULTI_TURN"]) == ("900", "120")


def test_a_bad_route_is_refused_naming_it_and_never_printing_its_key(tmp_path):
    taken = [{"model": "gpt-4o-mini", "backends": [{"name": "backend0", "url": "https://p.example/v1",
                                                    "api_key": ROUTE_KEY}]}]
    proc, dummy = describe(tmp_path, qa_service_llm_routes=taken, **LLAMACPP)
    assert proc.returncode != 0
    assert "qa_service_llm_routes[0].backends[0]" in proc.stdout and "'backend0' is taken" in proc.stdout
    assert ROUTE_KEY not in proc.stdout + proc.stderr

    again = [{"model": "smollm2-135m-instruct", "backends": [{"name": "b", "url": "http://x/v1"}]}]
    proc, dummy = describe(tmp_path, qa_service_llm_routes=again, **LLAMACPP)
    assert proc.returncode != 0 and "has a route already (qa_service_llm_model)" in proc.stdout

    proc, dummy = describe(tmp_path, qa_service_llm_default_model="gpt-5", **LLAMACPP)
    assert proc.returncode != 0 and "qa_service_llm_default_model 'gpt-5' is no route's model" in proc.stdout

    # a key under another name: refused, never printed
    proc, dummy = describe(tmp_path, qa_service_llm_routes=[{"model": "m", "backends": [
        {"name": "b", "url": "http://x/v1", "key": ROUTE_KEY}]}], **LLAMACPP)
    assert proc.returncode != 0 and "backends[0]: unknown key(s) key" in proc.stdout, proc.stdout[-2000:]
    assert ROUTE_KEY not in proc.stdout + proc.stderr


def test_the_role_s_argument_spec_checks_each_route_backend():
    proc = run_role("qa_service", {"qa_service_image": "x", "qa_service_kb_path": "/x", "qa_service_kb_checksum": "x",
                                   "qa_service_llm_routes": [{"model": "m", "backends": [{"name": "b"}]}]})
    assert proc.returncode != 0 and "Validating arguments against arg spec" in proc.stdout
    assert "url" in proc.stdout and "qa_service_llm_routes" in proc.stdout, proc.stdout[-2000:]


def test_a_vllm_colors_qa_api_passes_its_metrics_through_and_llamacpps_definition_is_unchanged(tmp_path):
    from test_gpu_placement import VLLM

    proc, facts = describe(tmp_path, inference_vllm_color_gpus={"blue": ["0"], "green": ["1"]}, **VLLM)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["inference_defined"]["metrics"] is True
    assert facts["qa_service_defined"]["env"]["QA_INFERENCE_METRICS"] == "on"
    # llama.cpp's server has no /metrics: nothing is added, so no release for it
    proc, facts = describe(tmp_path, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["inference_defined"]["metrics"] is False
    assert "QA_INFERENCE_METRICS" not in facts["qa_service_defined"]["env"]
