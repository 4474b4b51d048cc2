# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Encrypt archives to operator certificates (CMS), so that only the holders of the private keys read them.

Two back ends give the same kind of file (DER CMS, read with ``openssl cms -decrypt``):
``cryptography``'s PKCS7EnvelopeBuilder where the installed version has it (RSA recipients,
AES-256-CBC), else the ``openssl`` command (AES-256-GCM, authenticated; RSA-OAEP with SHA-256,
or ECDH for EC keys). Data goes to openssl through a pipe: clear text never touches the disk.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import re
import shutil
import subprocess
import tempfile
import traceback

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

try:
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.serialization import pkcs7
    HAS_ENVELOPE = hasattr(getattr(pkcs7, 'PKCS7EnvelopeBuilder', None), 'set_content_encryption_algorithm')
except ImportError:
    HAS_ENVELOPE = False

BACKENDS = ('auto', 'cryptography', 'openssl')
CIPHERS = {
    'cryptography': 'CMS EnvelopedData, AES-256-CBC, RSA PKCS#1 v1.5 key transport',
    'openssl': 'CMS AuthEnvelopedData, AES-256-GCM, RSA-OAEP SHA-256 or ECDH key agreement',
}
MIN_RSA_BITS = 2048
_PEM_CERT_RE = re.compile(b'-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----', re.S)


class CertificateError(ValueError):
    """The operator certificate is missing or unusable; the message names the file and the fix."""


class EncryptError(RuntimeError):
    """Encryption failed or no back end can do it; the message names the fix."""


def _not_after(cert):
    value = getattr(cert, 'not_valid_after_utc', None)
    return value.replace(tzinfo=None) if value is not None else cert.not_valid_after


def describe(cert):
    """What the result shows of a recipient (nothing secret)."""
    key = cert.public_key()
    kind = ('RSA %d' % key.key_size) if isinstance(key, rsa.RSAPublicKey) else ('EC %s' % key.curve.name)
    return {'subject': cert.subject.rfc4514_string(), 'not_after': _not_after(cert).strftime('%Y-%m-%dT%H:%M:%SZ'),
            'key': kind, 'sha256': cert.fingerprint(hashes.SHA256()).hex()}


def _check_one(cert, path, index, now, warnings):
    where = '%s (certificate %d, %s)' % (path, index, cert.subject.rfc4514_string())
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError('%s: an RSA key of %d bits is too weak; issue the operator a certificate '
                                   'with an RSA key of %d bits or more, or an EC key' % (where, key.key_size, MIN_RSA_BITS))
        usage_needed = 'key_encipherment'
    elif isinstance(key, ec.EllipticCurvePublicKey):
        usage_needed = 'key_agreement'
    else:
        raise CertificateError('%s: a %s key cannot receive a CMS envelope; use an RSA or EC certificate'
                               % (where, type(key).__name__))
    if _not_after(cert) < now:
        warnings.append('%s expired on %s: archives are still encrypted to it, but issue a new one (keep the old '
                        'private key to read older archives)' % (where, _not_after(cert).date()))
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not getattr(usage, usage_needed):
        warnings.append('%s: its key usage lacks %s, which some tools require to decrypt; issue one that allows '
                        'encryption' % (where, usage_needed))


def read_certificates(path, now=None):
    """``([x509.Certificate, ...], warnings)`` from a PEM file; every certificate in it is a recipient."""
    if not os.path.exists(path):
        raise CertificateError(
            'operator certificate %s does not exist: put the X.509 certificate (PEM, public part only) of whoever '
            'may read the archives there (log_archive_certificate_src copies it from the controller), or give no '
            'certificate to archive without encryption' % path)
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise CertificateError('cannot read operator certificate %s: %s; fix its mode or owner' % (path, exc))
    if b'PRIVATE KEY' in data:
        raise CertificateError(
            '%s holds a private key: only the certificate belongs on the host, or whoever reads the host reads the '
            'archives; keep the key with the operator and install the certificate alone '
            '(openssl x509 -in %s -out operator.crt)' % (path, path))
    blocks = _PEM_CERT_RE.findall(data)
    if not blocks:
        raise CertificateError(
            '%s holds no PEM certificate (-----BEGIN CERTIFICATE-----); give an X.509 certificate in PEM '
            '(a DER one converts with: openssl x509 -inform DER -in operator.der -out operator.crt)' % path)
    now = now or datetime.datetime.utcnow()
    certs, warnings = [], []
    for index, block in enumerate(blocks, 1):
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError as exc:
            raise CertificateError('%s: certificate %d cannot be parsed (%s); give a valid X.509 certificate in PEM'
                                   % (path, index, exc))
        _check_one(cert, path, index, now, warnings)
        certs.append(cert)
    return certs, warnings


def choose_backend(requested, certs, has_envelope, openssl_path):
    """The back end that encrypts to ``certs``: ``requested``, or for ``auto`` openssl when installed
    (AES-256-GCM: authenticated, a changed byte is refused), else cryptography (AES-256-CBC, RSA only)."""
    all_rsa = all(isinstance(cert.public_key(), rsa.RSAPublicKey) for cert in certs)
    if requested == 'openssl' or (requested == 'auto' and openssl_path):
        if openssl_path:
            return 'openssl'
        raise EncryptError('encryption_backend=openssl: the openssl command is not installed; install Debian\'s '
                           'openssl package (roles/docker_host installs it)')
    if has_envelope and all_rsa:
        return 'cryptography'
    if requested == 'cryptography':
        raise EncryptError(
            'encryption_backend=cryptography: %s; use encryption_backend=auto or openssl'
            % ('the installed cryptography has no PKCS7EnvelopeBuilder' if not has_envelope
               else 'its envelope builder takes RSA certificates only'))
    raise EncryptError('cannot encrypt: the openssl command is not installed and the installed cryptography cannot '
                       'do it; install Debian\'s openssl package (roles/docker_host installs it)')


def _encrypt_cryptography(data, certs):
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(data).set_content_encryption_algorithm(algorithms.AES256)
    for cert in certs:
        builder = builder.add_recipient(cert)
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def openssl_command(openssl_path, cert_files, certs):
    """``openssl cms -encrypt`` reading stdin, writing DER to stdout; -binary keeps the gzip bytes as they are."""
    cmd = [openssl_path, 'cms', '-encrypt', '-binary', '-outform', 'DER', '-aes-256-gcm']
    for path, cert in zip(cert_files, certs):
        cmd += ['-recip', path]
        if isinstance(cert.public_key(), rsa.RSAPublicKey):
            cmd += ['-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256']
    return cmd


def _encrypt_openssl(data, certs, openssl_path):
    # One file per recipient (openssl reads one certificate per -recip); certificates are public.
    workdir = tempfile.mkdtemp(prefix='llmops-recipients-')
    try:
        files = []
        for index, cert in enumerate(certs):
            files.append(os.path.join(workdir, '%d.pem' % index))
            with open(files[-1], 'wb') as handle:
                handle.write(cert.public_bytes(serialization.Encoding.PEM))
        proc = subprocess.Popen(openssl_command(openssl_path, files, certs), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(data)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if proc.returncode != 0 or not out:
        raise EncryptError('openssl cms -encrypt failed (exit %d): %s' % (proc.returncode, err.decode('utf-8', 'replace')
                                                                          .strip()[-500:]))
    return out


def encrypt(data, certs, backend, openssl_path=None):
    """DER CMS of ``data`` (bytes, in memory) for every certificate in ``certs``."""
    if backend == 'cryptography':
        return _encrypt_cryptography(data, certs)
    return _encrypt_openssl(data, certs, openssl_path)
