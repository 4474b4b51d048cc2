# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the security tests.

``secgw``: a gateway of its own (the role, real container, stand-in color) for the
gateway's TLS, error and limit behaviour; runs wherever docker and the gateway image are
(make unit). ``deployed``: a service deployed by deploy.yml (env LLMOPS_SERVICE,
LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY, as Molecule's verify sets them), for what only a
full stack shows (docker inspect of every container).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _secgw import IMAGE, SecGateway  # noqa: E402  pylint: disable=wrong-import-position


def skip_or_fail(reason):
    """Skip when docker or the image is missing, unless the suite requires them (make test does)."""
    if os.environ.get('LLMOPS_REQUIRE_DOCKER') == '1':
        pytest.fail(reason + ' (LLMOPS_REQUIRE_DOCKER=1: the docker tests must run)')
    pytest.skip(reason)


@pytest.fixture(scope='session')
def secgw():
    proc = subprocess.run(['docker', 'image', 'inspect', IMAGE], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        skip_or_fail('gateway image %s not available (make host, or set LLMOPS_GATEWAY_IMAGE): %s'
                     % (IMAGE, proc.stderr.strip()[:200]))
    base = tempfile.mkdtemp(prefix='llmops-secgw-')
    gateway = SecGateway(base)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='session')
def deployed():
    service = os.environ.get('LLMOPS_SERVICE', '')
    if not service:
        pytest.skip('needs a deployed service: set LLMOPS_SERVICE (Molecule verify does)')
    return service


def pytest_configure(config):
    config.addinivalue_line('markers', 'docker: needs the docker engine and the collection images')
