"""Which networks the colors' containers join, computed by the real task files (release
describe.yml -> inference define.yml + qa_service define.yml) on localhost, no Docker:
the internal network only (no egress), and the egress network as well only when the qa-api
must reach outside the host (engine openai, or qa_service_egress)."""
from test_llm_backends import describe

INTERNAL = {"networks": [{"name": "svc-internal"}], "network_mode": "svc-internal", "dns_opts": ["ndots:1"]}
BOTH = {"networks": [{"name": "svc-net"}, {"name": "svc-internal"}], "network_mode": "svc-net", "dns_opts": []}
LLAMACPP = {"inference_engine": "llamacpp", "inference_llamacpp_image": "llmops/llm-llamacpp:x",
            "inference_mode": "independent", "llmops_service": "svc"}


def attached(definition):
    return {"networks": definition["networks"], "network_mode": definition["network_mode"],
            "dns_opts": definition.get("dns_opts", [])}


def test_a_local_engine_keeps_the_color_and_its_server_on_the_internal_network(tmp_path):
    proc, facts = describe(tmp_path, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert attached(facts["qa_service_defined"]) == INTERNAL
    assert attached(facts["inference_defined"]["definition"]) == INTERNAL
    assert facts["inference_defined"]["definition"]["name"] == "svc-llm-green"
    assert facts["inference_defined"]["egress"] is False
    # The qa-api reaches Redis and its server by name on that network.
    assert facts["qa_service_defined"]["env"]["QA_REDIS_HOST"] == "svc-redis"
    assert facts["qa_service_defined"]["env"]["QA_LLM_BASE_URL"] == "http://svc-llm-green:8000/v1"


def test_an_external_provider_puts_the_qa_api_on_the_egress_network_too(tmp_path):
    proc, facts = describe(tmp_path, inference_engine="openai", llmops_service="svc",
                           inference_openai_base_url="https://provider.example/v1",
                           inference_openai_api_key="sk-provider-0123456789abcdef")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["inference_defined"]["egress"] is True and facts["inference_defined"]["definition"] is None
    assert attached(facts["qa_service_defined"]) == BOTH


def test_an_operator_can_give_a_color_egress_for_an_external_fallback(tmp_path):
    proc, facts = describe(tmp_path, qa_service_egress=True,
                           qa_service_llm_fallback_url="https://provider.example/v1", **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert attached(facts["qa_service_defined"]) == BOTH
    # The inference server itself never gets egress.
    assert attached(facts["inference_defined"]["definition"]) == INTERNAL


def test_the_network_names_follow_the_inventory(tmp_path):
    proc, facts = describe(tmp_path, llmops_network="edge", llmops_internal_network="core",
                           inference_engine="openai", llmops_service="svc")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert attached(facts["qa_service_defined"]) == {"networks": [{"name": "edge"}, {"name": "core"}],
                                                     "network_mode": "edge", "dns_opts": []}
    proc, facts = describe(tmp_path, llmops_internal_network="core", **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert attached(facts["inference_defined"]["definition"]) == {"networks": [{"name": "core"}],
                                                                  "network_mode": "core", "dns_opts": ["ndots:1"]}
