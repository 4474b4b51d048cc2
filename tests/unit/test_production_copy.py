"""The copy of inventories/production that the fleet's check runs (tests/fleet/_production.py), without Docker."""
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fleet"))
from _production import FLEET, PRODUCTION, copy_inventory, rename, renames  # noqa: E402


def test_rename_replaces_names_and_addresses_and_nothing_else():
    text = "gw-1.llm.example.internal:\n  ansible_host: 10.20.0.10\n  other: gw-2.llm.example.internal\n"
    assert rename(text, renames(FLEET)).splitlines() == [
        "flt-gw:", "  ansible_host: 10.213.0.10", "  other: gw-2.llm.example.internal"]


def test_no_address_of_the_example_is_the_start_of_another():
    # A plain replace would turn 10.20.0.100 into 10.213.0.100 too: the example holds no such address.
    text = " ".join(p.read_text() for p in PRODUCTION.rglob("*.yml"))
    olds = [o for o in renames(FLEET) if o[0].isdigit()]
    assert not [o for o in olds if re.search(re.escape(o) + r"[0-9]", text)]


def test_the_copy_changes_only_host_names_and_addresses(tmp_path):
    password = tmp_path / "pw"
    password.write_text("not-a-secret\n")
    dest = tmp_path / "production"
    changes = copy_inventory(dest, FLEET, "vault_redis_password: x\nvault_gateway_api_keys: [y]\n", password)
    assert sorted(changes) == ["group_vars/all/main.yml", "hosts.yml"]
    olds = set(renames(FLEET))
    for pairs in changes.values():
        for old, new in pairs:
            # Undoing the rename gives the original line back: the lines differ in names and addresses only.
            assert rename(new, {v: k for k, v in renames(FLEET).items()}) == old
            assert any(o in old for o in olds)
    hosts = yaml.safe_load((dest / "hosts.yml").read_text())
    groups = hosts["all"]["children"]["llmops"]["children"]
    assert list(groups["llmops_gateway"]["hosts"]) == ["flt-gw"]
    assert groups["llmops_green"]["hosts"]["flt-green"]["llmops_private_address"] == "10.213.0.12"
    # The example's other files are the same bytes.
    for path in PRODUCTION.rglob("*"):
        rel = path.relative_to(PRODUCTION)
        if path.is_file() and str(rel) not in changes and rel.name != "vault.yml":
            assert (dest / rel).read_bytes() == path.read_bytes(), rel


def test_the_vault_is_replaced_encrypted_and_readable_with_its_password(tmp_path):
    password = tmp_path / "pw"
    password.write_text("not-a-secret\n")
    dest = tmp_path / "production"
    copy_inventory(dest, FLEET, "vault_redis_password: abc\n", password)
    vault = dest / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    shown = subprocess.run([str(ROOT / ".venv/bin/ansible-vault"), "view", "--vault-password-file", str(password),
                            str(vault)], capture_output=True, text=True, check=True).stdout
    assert yaml.safe_load(shown) == {"vault_redis_password": "abc"}
