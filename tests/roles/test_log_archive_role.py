"""The log_archive role refuses, before anything reaches the host, encryption it cannot do safely."""
import subprocess

from test_role_inputs import run_role


def test_encryption_without_a_certificate_is_refused(tmp_path):
    proc = run_role("log_archive", {"log_archive_encrypt": True, "log_archive_state_dir": str(tmp_path)})
    assert proc.returncode != 0
    assert "log_archive_certificate is empty" in proc.stdout, proc.stdout[-2000:]
    assert not list(tmp_path.iterdir())


def test_a_private_key_is_never_copied_nor_printed(tmp_path):
    key, cert = tmp_path / "op.key", tmp_path / "op.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", "/CN=logarc", "-days", "1"], check=True, capture_output=True)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    dest = tmp_path / "host" / "recipients.crt"
    proc = run_role("log_archive", {"log_archive_encrypt": True, "log_archive_certificate": str(dest),
                                    "log_archive_certificate_src": str(bundle),
                                    "log_archive_state_dir": str(tmp_path / "state")})
    assert proc.returncode != 0
    assert "%s holds a private key" % bundle in proc.stdout, proc.stdout[-2000:]
    body = key.read_text().splitlines()[1]
    assert body not in proc.stdout + proc.stderr
    assert not dest.exists() and not (tmp_path / "state").exists()


def test_unknown_backend_fails_at_role_start():
    proc = run_role("log_archive", {"log_archive_encryption_backend": "gpg"})
    assert proc.returncode != 0
    assert "log_archive_encryption_backend" in proc.stdout and "auto, cryptography, openssl" in proc.stdout
