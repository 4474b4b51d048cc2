"""scripts/pin_hashes.py and the rule it serves: every pin of every image carries its sha256."""
import hashlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("pin_hashes", ROOT / "scripts" / "pin_hashes.py")
pin_hashes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pin_hashes)


def test_pins_get_the_hash_of_every_file_of_their_version(tmp_path):
    house = tmp_path / "wheels"
    house.mkdir()
    files = {"PyYAML-6.0.3-cp311-cp311-manylinux_x86_64.whl": b"a", "pyyaml-6.0.3-py3-none-any.whl": b"b",
             "llama_cpp_python-0.3.36.tar.gz": b"c", "pyyaml-6.0.2-py3-none-any.whl": b"old"}
    for name, data in files.items():
        (house / name).write_bytes(data)
    image = tmp_path / "image"
    image.mkdir()
    (image / "requirements.txt").write_text(
        "# comment stays\npyyaml==6.0.3 --hash=sha256:stale\nllama-cpp-python[server]==0.3.36\n")
    pin_hashes.main(str(house), str(image))
    lines = (image / "requirements.txt").read_text().splitlines()
    digest = dict((data, hashlib.sha256(data).hexdigest()) for data in files.values())
    assert lines[0] == "# comment stays"
    assert lines[1] == "pyyaml==6.0.3 --hash=sha256:%s --hash=sha256:%s" % (digest[b"a"], digest[b"b"])
    assert lines[2] == "llama-cpp-python[server]==0.3.36 --hash=sha256:%s" % digest[b"c"]


def test_a_pin_without_a_file_is_refused_and_the_file_left_alone(tmp_path):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "requirements.txt").write_text("missing-dist==1.0\n")
    with pytest.raises(SystemExit) as failure:
        pin_hashes.main(str(tmp_path / "wheels"), str(tmp_path))
    assert "missing-dist==1.0" in str(failure.value) and "make host" in str(failure.value)
    assert (tmp_path / "requirements.txt").read_text() == "missing-dist==1.0\n"


@pytest.mark.parametrize("path", sorted(ROOT.glob("images/*/*requirements.txt")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_pin_of_the_images_has_a_sha256(path):
    pins = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert pins, path
    unhashed = [line for line in pins if not re.search(r"==\S+ --hash=sha256:[0-9a-f]{64}", line)]
    assert unhashed == [], "%s: pins without --hash; run scripts/pin_hashes.py (roles/images/README.md)" % path
