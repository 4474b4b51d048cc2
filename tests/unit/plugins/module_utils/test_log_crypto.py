# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operator certificates and CMS encryption of log archives, read back with openssl cms -decrypt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import shutil
import subprocess

import pytest

pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from ansible_collections.llmops.bluegreen.plugins.module_utils import _log_crypto  # noqa: E402
from ansible_collections.llmops.bluegreen.plugins.module_utils._log_crypto import (  # noqa: E402
    CertificateError, EncryptError, choose_backend, encrypt, openssl_command, read_certificates)

OPENSSL = shutil.which('openssl')
NOW = datetime.datetime(2026, 12, 2, 12, 0, 0)


def make(tmp_path, name, key=None, days=30, usage=None):
    """``(key file, certificate file, certificate)`` of a self-signed operator certificate."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(NOW + datetime.timedelta(days=days)))
    if usage is not None:
        flags = dict.fromkeys(('digital_signature', 'content_commitment', 'key_encipherment', 'data_encipherment',
                               'key_agreement', 'key_cert_sign', 'crl_sign', 'encipher_only', 'decipher_only'), False)
        flags.update(usage)
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    cert = builder.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    key_file, cert_file = tmp_path / (name + '.key'), tmp_path / (name + '.crt')
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file, cert


def decrypt(data, key_file, tmp_path):
    sealed = tmp_path / 'sealed.p7m'
    sealed.write_bytes(data)
    return subprocess.run([OPENSSL, 'cms', '-decrypt', '-binary', '-inform', 'DER', '-in', str(sealed), '-inkey',
                           str(key_file)], capture_output=True, check=True).stdout


def test_errors_name_the_file_and_the_fix(tmp_path):
    key_file, cert_file, dummy = make(tmp_path, 'op')
    cases = {
        tmp_path / 'absent.crt': 'does not exist',
        tmp_path / 'bundle.pem': 'holds a private key',
        tmp_path / 'notes.txt': 'holds no PEM certificate',
        tmp_path / 'broken.crt': 'cannot be parsed',
    }
    (tmp_path / 'bundle.pem').write_bytes(cert_file.read_bytes() + key_file.read_bytes())
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'broken.crt').write_text('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    for path, words in cases.items():
        with pytest.raises(CertificateError) as exc:
            read_certificates(str(path), now=NOW)
        assert str(path) in str(exc.value) and words in str(exc.value)
    assert 'openssl x509' in str(pytest.raises(CertificateError, read_certificates, str(tmp_path / 'notes.txt')).value)


def test_weak_and_unusable_keys_are_refused(tmp_path):
    weak = make(tmp_path, 'weak', key=rsa.generate_private_key(public_exponent=65537, key_size=1024))[1]
    with pytest.raises(CertificateError, match='1024 bits is too weak'):
        read_certificates(str(weak), now=NOW)
    edwards = make(tmp_path, 'ed', key=ed25519.Ed25519PrivateKey.generate())[1]
    with pytest.raises(CertificateError, match='cannot receive a CMS envelope'):
        read_certificates(str(edwards), now=NOW)


def test_every_certificate_of_the_file_is_a_recipient_and_problems_are_warnings(tmp_path):
    expired = make(tmp_path, 'old', days=-1)[1]
    signing_only = make(tmp_path, 'ec', key=ec.generate_private_key(ec.SECP256R1()),
                        usage={'digital_signature': True})[1]
    both = tmp_path / 'recipients.crt'
    both.write_bytes(expired.read_bytes() + signing_only.read_bytes())
    certs, warnings = read_certificates(str(both), now=NOW)
    assert len(certs) == 2
    assert 'expired on' in warnings[0] and 'CN=old' in warnings[0]
    assert 'lacks key_agreement' in warnings[1]
    assert _log_crypto.describe(certs[1])['key'] == 'EC secp256r1'


def test_backend_choice(tmp_path):
    rsa_cert = make(tmp_path, 'r')[2]
    ec_cert = make(tmp_path, 'e', key=ec.generate_private_key(ec.SECP256R1()))[2]
    assert choose_backend('auto', [rsa_cert], True, '/usr/bin/openssl') == 'openssl'
    assert choose_backend('auto', [rsa_cert], True, None) == 'cryptography'
    assert choose_backend('cryptography', [rsa_cert], True, '/usr/bin/openssl') == 'cryptography'
    assert choose_backend('auto', [rsa_cert, ec_cert], True, '/usr/bin/openssl') == 'openssl'
    assert choose_backend('auto', [rsa_cert], False, '/usr/bin/openssl') == 'openssl'
    assert choose_backend('openssl', [rsa_cert], True, '/usr/bin/openssl') == 'openssl'
    with pytest.raises(EncryptError, match='RSA certificates only'):
        choose_backend('cryptography', [ec_cert], True, '/usr/bin/openssl')
    with pytest.raises(EncryptError, match='no PKCS7EnvelopeBuilder'):
        choose_backend('cryptography', [rsa_cert], False, '/usr/bin/openssl')
    with pytest.raises(EncryptError, match="install Debian's openssl"):
        choose_backend('auto', [rsa_cert], False, None)


def test_openssl_command_is_authenticated_and_binary(tmp_path):
    rsa_cert = make(tmp_path, 'r')[2]
    ec_cert = make(tmp_path, 'e', key=ec.generate_private_key(ec.SECP256R1()))[2]
    cmd = openssl_command('openssl', ['r.pem', 'e.pem'], [rsa_cert, ec_cert])
    assert cmd[:7] == ['openssl', 'cms', '-encrypt', '-binary', '-outform', 'DER', '-aes-256-gcm']
    assert cmd[7:] == ['-recip', 'r.pem', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256',
                       '-recip', 'e.pem']


@pytest.mark.skipif(OPENSSL is None, reason='openssl command not installed')
def test_openssl_backend_every_recipient_decrypts_and_no_one_else(tmp_path):
    rsa_key, dummy, rsa_cert = make(tmp_path, 'r')
    ec_key, dummy, ec_cert = make(tmp_path, 'e', key=ec.generate_private_key(ec.SECP384R1()))
    stranger_key = make(tmp_path, 's')[0]
    data = bytes(range(256)) * 64 + b'\r\n\n patient=42\n'
    sealed = encrypt(data, [rsa_cert, ec_cert], 'openssl', OPENSSL)
    assert b'patient=42' not in sealed
    assert decrypt(sealed, rsa_key, tmp_path) == data
    assert decrypt(sealed, ec_key, tmp_path) == data
    with pytest.raises(subprocess.CalledProcessError):
        decrypt(sealed, stranger_key, tmp_path)
    # AES-GCM: a flipped byte of the content is detected, not decrypted to garbage.
    tampered = bytearray(sealed)
    tampered[-40] ^= 1
    with pytest.raises(subprocess.CalledProcessError):
        decrypt(bytes(tampered), rsa_key, tmp_path)


@pytest.mark.skipif(not _log_crypto.HAS_ENVELOPE or OPENSSL is None,
                    reason='cryptography without PKCS7EnvelopeBuilder, or no openssl command')
def test_cryptography_backend_is_read_by_openssl(tmp_path):
    from cryptography.hazmat.primitives.serialization import pkcs7

    key_file, dummy, cert = make(tmp_path, 'r')
    data = b'\x1f\x8b binary \r\n gzip-like bytes\n' * 100
    sealed = encrypt(data, [cert], 'cryptography')
    assert decrypt(sealed, key_file, tmp_path) == data
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert pkcs7.pkcs7_decrypt_der(sealed, cert, key, []) == data
