# -*- coding: utf-8 -*-
"""Gateway tests against a deployed service (env LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY).

Makes ``ansible_collections.llmops.bluegreen`` importable from a checkout (the
committed ``collections/`` link) so the tests use the module_utils
the modules use.
"""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for path in (os.path.join(REPO, 'collections'), os.path.join(REPO, 'tests', 'gateway')):
    if path not in sys.path:
        sys.path.insert(0, path)

from _gateway_stack import Stack  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='session')
def stack():
    service = os.environ.get('LLMOPS_SERVICE', '')
    port = int(os.environ.get('LLMOPS_HTTPS_PORT', '0') or 0)
    inventory = os.environ.get('LLMOPS_INVENTORY', '')
    if not (service and port and inventory):
        pytest.skip('needs a deployed service: set LLMOPS_SERVICE, LLMOPS_HTTPS_PORT, LLMOPS_INVENTORY '
                    '(e.g. gwtest, 38443, tests/gateway/inventory/hosts.yml)')
    return Stack(service, port, inventory)
