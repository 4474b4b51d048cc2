# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image tags come from tree_checksum: the same value kb_checksum returns, in the order given,
through a real ansible-playbook (the lookup as a task uses it); symlinks and missing paths refused."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.llmops.bluegreen.plugins.lookup.tree_checksum import LookupModule
from ansible_collections.llmops.bluegreen.plugins.module_utils._fingerprint import fingerprint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture
def trees(tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    for root in (one, two):
        (root / 'sub' / '__pycache__').mkdir(parents=True)
        (root / 'Dockerfile').write_text('FROM scratch\n')
        (root / 'sub' / '__pycache__' / 'x.pyc').write_bytes(b'\0')
    (two / 'sub' / 'app.py').write_text(u'print("二")\n', encoding='utf-8')
    return str(one), str(two)


def test_checksums_in_order_match_the_module_and_honour_exclude(trees):
    one, two = trees
    got = LookupModule().run([[one, two]], {}, exclude=['__pycache__'])
    assert got == [fingerprint(one, exclude=['__pycache__'])[0], fingerprint(two, exclude=['__pycache__'])[0]]
    assert got[0] != got[1]
    # The excluded file counts without exclude: a pyc never changes a tag, a source file does.
    assert LookupModule().run([one], {})[0] != got[0]


@pytest.mark.parametrize('kind', ['missing', 'symlink'])
def test_refuses_what_cannot_be_fingerprinted_naming_the_path(trees, kind):
    one = trees[0]
    if kind == 'missing':
        path, expected = one + '-gone', 'is not a directory on the controller'
    else:
        os.symlink('/etc/hostname', os.path.join(one, 'sub', 'link'))
        path, expected = one, 'link'
    with pytest.raises(AnsibleLookupError) as info:
        LookupModule().run([path], {})
    assert expected in str(info.value)


def test_a_playbook_gets_the_module_checksum(trees, tmp_path):
    one, two = trees
    play = tmp_path / 'play.yml'
    play.write_text(json.dumps([{
        'hosts': 'localhost', 'gather_facts': False,
        'tasks': [
            {'ansible.builtin.debug': {'msg': "{{ query('llmops.bluegreen.tree_checksum', [%r, %r], exclude=['__pycache__']) }}"
                                              % (one, two)}},
            {'llmops.bluegreen.kb_checksum': {'path': one, 'exclude': ['__pycache__']}, 'register': 'module'},
            {'ansible.builtin.debug': {'var': 'module.checksum'}},
        ]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           '-e', 'ansible_python_interpreter=' + sys.executable, str(play)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    tasks = json.loads(proc.stdout[proc.stdout.index('{'):])['plays'][0]['tasks']
    looked_up = tasks[0]['hosts']['localhost']['msg']
    assert looked_up[0] == tasks[2]['hosts']['localhost']['module.checksum']
    assert len(looked_up) == 2 and looked_up[1] == fingerprint(two, exclude=['__pycache__'])[0]
