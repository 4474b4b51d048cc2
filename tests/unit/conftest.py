# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.llmops.bluegreen`` importable for plain pytest runs.

Inside a checkout the collection is reached through the link
``collections/ansible_collections/llmops/bluegreen`` -> repo root (committed); under
``ansible-test units`` the repo already sits in ``.../ansible_collections/llmops/bluegreen``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import io
import json
import os
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_dir():
    parts = _REPO.split(os.sep)
    if parts[-3:-2] == ['ansible_collections']:
        return os.sep.join(parts[:-3]) or os.sep
    return os.path.join(_REPO, 'collections')


if _collections_dir() not in sys.path:
    sys.path.insert(0, _collections_dir())


def pytest_configure(config):
    config.addinivalue_line('markers', 'docker: needs the docker engine (and, where noted, the qa-api image)')


def call_module(module, args, check_mode=False, diff=False):
    """Run a module's ``main()`` with args; return ``(failed, result)`` parsed from its JSON output."""
    from ansible.module_utils.testing import patch_module_args

    args = dict(args)
    args['_ansible_check_mode'] = check_mode
    args['_ansible_diff'] = diff
    out = io.StringIO()
    # A test that imported controller code (a filter plugin) flips ansible into controller
    # mode, where module warnings go to the display instead of the result: run as a module.
    from ansible.module_utils import _internal
    controller, _internal.is_controller = _internal.is_controller, False
    try:
        with patch_module_args(args), contextlib.redirect_stdout(out):
            with pytest.raises(SystemExit) as exc:
                module.main()
    finally:
        _internal.is_controller = controller
    result = json.loads(out.getvalue())
    assert bool(result.get('failed')) == (exc.value.code != 0)
    return bool(result.get('failed')), result


@pytest.fixture(scope='session')
def run_module():
    return call_module


# One gateway with two colors for the whole session: a fixture imported into each test module
# would be a separate definition there, and each module would start its own (40-50 s each).
from _docker_fixtures import bluegreen_env  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
