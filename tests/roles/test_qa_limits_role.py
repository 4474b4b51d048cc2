"""The qa-api's own limits as the release hands them to a color, computed by the real task files
(release describe.yml -> qa_service define.yml) on localhost. Unset, the definition has none of
them (upgrading releases nothing); set in the inventory (the fleet scenario lifts the per-key limit
the gateway's gateway_key_concurrency: 0 never reached), they are the container's environment."""
from test_llm_backends import describe

LLAMACPP = {"inference_engine": "llamacpp", "inference_llamacpp_image": "llmops/llm-llamacpp:x"}
LIMIT_VARS = ("QA_KEY_CONCURRENCY", "QA_INFERENCE_CONCURRENCY", "QA_INFERENCE_QUEUE", "QA_INFERENCE_QUEUE_TIMEOUT")


def test_unset_limits_leave_the_definition_as_it_was(tmp_path):
    proc, facts = describe(tmp_path, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not [k for k in facts["qa_service_defined"]["env"] if k in LIMIT_VARS]


def test_inventory_limits_reach_the_qa_api_environment(tmp_path):
    proc, facts = describe(tmp_path, qa_service_key_concurrency=0, qa_service_inference_concurrency=1,
                           qa_service_inference_queue_timeout=120, **LLAMACPP)
    assert proc.returncode == 0, proc.stdout[-3000:]
    env = facts["qa_service_defined"]["env"]
    assert {k: env[k] for k in env if k in LIMIT_VARS} == {
        "QA_KEY_CONCURRENCY": "0", "QA_INFERENCE_CONCURRENCY": "1", "QA_INFERENCE_QUEUE_TIMEOUT": "120"}


def test_a_bad_limit_fails_naming_the_variable(tmp_path):
    proc, facts = describe(tmp_path, qa_service_inference_concurrency=0, **LLAMACPP)
    assert proc.returncode != 0
    assert "qa_service_inference_concurrency is 0" in proc.stdout
