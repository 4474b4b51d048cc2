# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bundle_check: an unpacked bundle verified against its SHA256SUMS before the roles use it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _bundle
from ansible_collections.llmops.bluegreen.plugins.modules import bundle_check

ID = 'sha256:' + 'ef' * 32
REF = 'llmops/qa-api:0.1.0-4e5d6c7b8a9f'


def write(root, rel, data):
    path = os.path.join(str(root), *rel.split('/'))
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as handle:
        handle.write(data)


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / 'llmops-bundle-0.1.0'
    for rel in ('images/qa-api.tar', 'debs/Packages', 'debs/docker.io.deb', 'wheels/controller/a.whl',
                'collection/llmops-bluegreen-0.1.0.tar.gz'):
        write(root, rel, rel.encode())
    manifest = {'format': 1, 'name': root.name, 'version': '0.1.0', 'commit': '4daa028',
                'images': {'qa-api': {'ref': REF, 'id': ID, 'archive': 'images/qa-api.tar'}},
                'debs': {'dir': 'debs', 'packages': ['docker.io', 'python3-docker']},
                'wheels': {'controller': {'dir': 'wheels/controller'}},
                'collection': {'file': 'collection/llmops-bluegreen-0.1.0.tar.gz'}}
    write(root, 'bundle.json', json.dumps(manifest).encode())
    write(root, 'SHA256SUMS', _bundle.format_sums(_bundle.compute_sums(str(root))).encode())
    return root


def test_an_intact_bundle_returns_its_manifest_and_image_ids(run_module, bundle):
    args = {'path': str(bundle), 'images': [REF], 'packages': ['docker.io']}
    failed, result = run_module(bundle_check, args, check_mode=True)
    assert not failed and not result['changed']
    assert result['manifest']['commit'] == '4daa028'
    assert result['image_ids'] == {REF: ID} and result['image_archives'] == {REF: 'images/qa-api.tar'}
    assert result['verified_files'] == 6


def test_a_tampered_file_is_refused_naming_it(run_module, bundle):
    write(bundle, 'debs/docker.io.deb', b'tampered')
    failed, result = run_module(bundle_check, {'path': str(bundle)})
    assert failed and 'debs/docker.io.deb: content differs' in result['msg']
    # Only the images selected: the tampered package is not looked at.
    failed, result = run_module(bundle_check, {'path': str(bundle), 'verify': ['images']})
    assert not failed and result['verified_files'] == 2


def test_the_manifest_is_always_checked(run_module, bundle):
    data = json.loads((bundle / 'bundle.json').read_text())
    data['images']['qa-api']['id'] = 'sha256:' + '00' * 32
    (bundle / 'bundle.json').write_text(json.dumps(data))
    failed, result = run_module(bundle_check, {'path': str(bundle), 'verify': []})
    assert failed and 'bundle.json: content differs' in result['msg']


def test_what_the_deploy_needs_and_the_bundle_lacks_is_named(run_module, bundle):
    args = {'path': str(bundle), 'verify': [], 'images': [REF, 'llmops/redis:0.1.0-000000000000']}
    failed, result = run_module(bundle_check, args)
    assert failed and 'has no image llmops/redis:0.1.0-000000000000' in result['msg']
    assert 'commit 4daa028' in result['msg']
    args = {'path': str(bundle), 'verify': [], 'packages': ['docker.io', 'nvidia-container-toolkit']}
    failed, result = run_module(bundle_check, args)
    assert failed and 'has no Debian package nvidia-container-toolkit' in result['msg']


def test_a_directory_that_is_no_bundle_says_how_to_unpack(run_module, tmp_path):
    failed, result = run_module(bundle_check, {'path': str(tmp_path / 'nowhere')})
    assert failed and 'scripts/bundle.py unpack' in result['msg']
    failed, result = run_module(bundle_check, {'path': str(tmp_path)})
    assert failed and 'has no SHA256SUMS' in result['msg']
