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


def context_checksum(path):
    return LookupModule().run([path], {}, dockerignore=True)[0]


def edited(path, rel, text='changed\n'):
    """The context checksum after writing ``text`` to ``rel`` (created if missing)."""
    target = os.path.join(path, rel)
    if not os.path.isdir(os.path.dirname(target)):
        os.makedirs(os.path.dirname(target))
    with open(target, 'a') as handle:
        handle.write(text)
    return context_checksum(path)


@pytest.fixture
def image_dir(tmp_path):
    root = tmp_path / 'img'
    (root / 'app').mkdir(parents=True)
    (root / 'Dockerfile').write_text('FROM scratch\nCOPY app /app\n')
    (root / 'app' / 'main.py').write_text('print(1)\n')
    (root / '.dockerignore').write_text('# docs stay out\nREADME.md\n*.txt\n**/*.pyc\ndocs/\nDockerfile\n')
    return str(root)


def test_what_dockerignore_leaves_out_changes_no_context_checksum(image_dir):
    base = context_checksum(image_dir)
    # Left out: a top-level README, a top-level *.txt, a pyc at any depth, everything under docs/.
    for rel in ('README.md', 'notes.txt', 'app/x.pyc', 'x.pyc', 'docs/guide/index.html'):
        assert edited(image_dir, rel) == base, rel
    # Docker's rules: a pattern without ** matches from the root only, * stays within a segment.
    for rel in ('app/README.md', 'app/notes.txt', 'app/main.py'):
        now = edited(image_dir, rel)
        assert now != base, rel
        base = now
    # The Dockerfile and .dockerignore always count, even when listed.
    assert edited(image_dir, 'Dockerfile', 'LABEL a=b\n') != base


def test_an_exception_in_dockerignore_makes_the_whole_directory_count(image_dir):
    with open(os.path.join(image_dir, '.dockerignore'), 'a') as handle:
        handle.write('!docs/keep.md\n')
    base = context_checksum(image_dir)
    assert base == LookupModule().run([image_dir], {})[0]
    assert edited(image_dir, 'README.md') != base


def test_without_dockerignore_the_option_changes_nothing(trees):
    assert LookupModule().run([trees[1]], {}, dockerignore=True) == LookupModule().run([trees[1]], {})
