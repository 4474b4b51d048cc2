"""The production example (inventories/production) pointed at the fleet's hosts.

What an operator changes before a first run, and nothing else: the host names and addresses of
hosts.yml (and the gateway's address where group_vars names it), and the vault file, which the
inventory's README says to replace with one's own. Everything the inventory names on the
controller and the hosts (TLS certificate, documents, model folders, the NVIDIA runtime's
packages, an SSH login with sudo) is put where it says by the test, as an operator would.
"""
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "inventories" / "production"
VAULT = pathlib.Path("group_vars") / "all" / "vault.yml"

# The example's hosts, each to a fleet host (name, address).
FLEET = {
    "gw-1.llm.example.internal": ("flt-gw", "10.213.0.10"),
    "gpu-a.llm.example.internal": ("flt-blue", "10.213.0.11"),
    "gpu-b.llm.example.internal": ("flt-green", "10.213.0.12"),
}
EXAMPLE_ADDRESSES = {
    "gw-1.llm.example.internal": "10.20.0.10",
    "gpu-a.llm.example.internal": "10.20.0.11",
    "gpu-b.llm.example.internal": "10.20.0.12",
}


def renames(fleet):
    """Old text -> new text for every example host name and address that `fleet` maps."""
    out = {}
    for example, (name, address) in fleet.items():
        out[example] = name
        out[EXAMPLE_ADDRESSES[example]] = address
    return out


def rename(text, mapping):
    """`text` with every key of `mapping` replaced, longest first (no key rewrites part of another)."""
    for old in sorted(mapping, key=len, reverse=True):
        text = text.replace(old, mapping[old])
    return text


def changed_lines(before, after):
    """The (old, new) pairs of lines that differ: what the copy changed, for the test to show."""
    return [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]


def copy_inventory(dest, fleet, vault_text, vault_password_file):
    """inventories/production copied to `dest` with the hosts renamed and `vault_text` as its vault.

    Returns {relative path: [(old line, new line), ...]} of every renamed file.
    """
    shutil.copytree(PRODUCTION, dest)
    mapping = renames(fleet)
    changes = {}
    for path in sorted(pathlib.Path(dest).rglob("*.yml")):
        rel = path.relative_to(dest)
        if rel == VAULT:
            continue
        before = path.read_text()
        after = rename(before, mapping)
        if after != before:
            path.write_text(after)
            changes[str(rel)] = changed_lines(before, after)
    vault = pathlib.Path(dest) / VAULT
    vault.write_text(vault_text)
    subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(vault_password_file), str(vault)], check=True, capture_output=True, text=True)
    return changes
