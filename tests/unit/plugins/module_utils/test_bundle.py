# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The air-gap bundle's SHA256SUMS and manifest (module_utils/_bundle.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os

import pytest

from ansible_collections.llmops.bluegreen.plugins.module_utils import _bundle as b

ID = 'sha256:' + 'ab' * 32


def write(root, files):
    for rel, data in files.items():
        path = os.path.join(str(root), *rel.split('/'))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, 'wb') as handle:
            handle.write(data)


def manifest(**over):
    data = {'format': 1, 'name': 'llmops-bundle-0.1.0', 'version': '0.1.0', 'commit': 'abc1234',
            'images': {'redis': {'ref': 'llmops/redis:0.1.0-aaa', 'id': ID, 'archive': 'images/redis.tar'}},
            'debs': {'dir': 'debs', 'packages': ['docker.io', 'python3-apt']},
            'wheels': {'controller': {'dir': 'wheels/controller', 'python': '3.11'}},
            'collection': {'file': 'collection/llmops-bluegreen-0.1.0.tar.gz'}}
    data.update(over)
    return data


SUMS_OF = dict.fromkeys(['images/redis.tar', 'debs/Packages', 'debs/docker.io_20.10.deb', 'wheels/controller/a.whl',
                         'collection/llmops-bluegreen-0.1.0.tar.gz', 'bundle.json'], '0' * 64)


def test_sums_round_trip_in_sha256sum_format(tmp_path):
    write(tmp_path, {'b.txt': b'b', 'a/c.txt': b'c'})
    sums = b.compute_sums(str(tmp_path))
    assert sums == {'a/c.txt': hashlib.sha256(b'c').hexdigest(), 'b.txt': hashlib.sha256(b'b').hexdigest()}
    text = b.format_sums(sums)
    # What `sha256sum -c SHA256SUMS` reads: "<hex>  <path>", sorted.
    assert text.splitlines()[0] == '%s  a/c.txt' % hashlib.sha256(b'c').hexdigest()
    assert b.parse_sums(text) == sums
    # The binary-mode marker of sha256sum -b is accepted too.
    assert b.parse_sums('%s *x.deb\n' % ('1' * 64)) == {'x.deb': '1' * 64}


@pytest.mark.parametrize('line, problem', [
    ('nothex  a.txt', 'line 1 is not'),
    ('%s  /etc/passwd' % ('0' * 64), 'not a plain relative path'),
    ('%s  debs/../../x' % ('0' * 64), 'not a plain relative path'),
    ('%s  a.txt\n%s  a.txt' % ('0' * 64, '1' * 64), 'line 2 lists a.txt a second time'),
])
def test_a_bad_sums_line_is_refused_naming_it(line, problem):
    with pytest.raises(b.BundleError, match=problem):
        b.parse_sums(line)


def test_verify_names_changed_missing_and_unlisted_files(tmp_path):
    write(tmp_path, {'debs/a.deb': b'a', 'debs/b.deb': b'b', 'images/x.tar': b'x'})
    sums = b.compute_sums(str(tmp_path))
    assert b.describe(str(tmp_path), b.verify(str(tmp_path), sums)) == ''
    write(tmp_path, {'debs/a.deb': b'tampered', 'debs/extra.deb': b'e'})
    os.remove(str(tmp_path / 'images' / 'x.tar'))
    result = b.verify(str(tmp_path), sums)
    assert [c[0] for c in result['changed']] == ['debs/a.deb']
    assert result['missing'] == ['images/x.tar'] and result['unlisted'] == ['debs/extra.deb']
    message = b.describe(str(tmp_path), result)
    for part in ('debs/a.deb: content differs', 'images/x.tar: listed in SHA256SUMS but missing',
                 'debs/extra.deb: not listed', 'make bundle'):
        assert part in message


def test_verify_checks_only_the_selection(tmp_path):
    write(tmp_path, {'debs/a.deb': b'a', 'images/x.tar': b'x', 'images-old/y.tar': b'y'})
    sums = b.compute_sums(str(tmp_path))
    write(tmp_path, {'images/x.tar': b'tampered', 'images-old/y.tar': b'tampered'})
    hashed = []

    def hasher(path):
        hashed.append(os.path.relpath(path, str(tmp_path)))
        return b.file_sha256(path)
    result = b.verify(str(tmp_path), sums, ['debs'], hasher=hasher)
    # A prefix selects a directory, not every name that starts with it.
    assert hashed == ['debs/a.deb'] and result['changed'] == [] and result['bytes'] == 1
    assert [c[0] for c in b.verify(str(tmp_path), sums, ['images/'])['changed']] == ['images/x.tar']


def test_a_symlink_in_a_bundle_is_refused(tmp_path):
    write(tmp_path, {'debs/a.deb': b'a'})
    os.symlink('/etc/passwd', str(tmp_path / 'debs' / 'b.deb'))
    with pytest.raises(b.BundleError, match='debs/b.deb is not a regular file'):
        b.scan(str(tmp_path))


def test_read_sums_without_the_file_says_what_a_bundle_is(tmp_path):
    with pytest.raises(b.BundleError, match='has no SHA256SUMS: it is not an unpacked bundle'):
        b.read_sums(str(tmp_path))


def test_a_complete_manifest_has_no_problem():
    assert b.check_manifest(manifest(), SUMS_OF) == []


@pytest.mark.parametrize('change, problem', [
    ({'format': 2}, 'has format 2; this collection reads format 1'),
    ({'images': {'redis': {'ref': 'r', 'id': 'abc', 'archive': 'images/redis.tar'}}}, 'image redis has no sha256'),
    ({'images': {'redis': {'ref': 'r', 'id': ID, 'archive': 'images/gone.tar'}}}, 'images/gone.tar is not in'),
    ({'debs': {'dir': 'apt', 'packages': []}}, 'apt/Packages (the apt index) is not in'),
    ({'wheels': {'controller': {'dir': 'wheels/other'}}}, 'no file of wheels/other'),
    ({'collection': {'file': 'collection/x.tar.gz'}}, 'collection/x.tar.gz is not in'),
    ({'models': [{'name': 'qwen', 'path': 'models/qwen'}]}, 'model qwen: models/qwen is not in'),
])
def test_manifest_problems_are_named(change, problem):
    problems = b.check_manifest(manifest(**change), SUMS_OF)
    assert len(problems) == 1 and problem in problems[0]


def test_a_manifest_without_a_part_is_refused():
    data = manifest()
    del data['debs']
    assert b.check_manifest(data, SUMS_OF) == ["bundle.json has no 'debs'"]


def test_images_are_found_by_reference_and_a_missing_one_names_the_commit():
    data = manifest()
    ids, archives, missing = b.find_images(data, ['llmops/redis:0.1.0-aaa', 'llmops/qa-api:0.1.0-bbb'])
    assert ids == {'llmops/redis:0.1.0-aaa': ID} and archives == {'llmops/redis:0.1.0-aaa': 'images/redis.tar'}
    assert missing == ['llmops/qa-api:0.1.0-bbb']
    message = b.missing_images_message('/srv/b', data, missing)
    assert 'has no image llmops/qa-api:0.1.0-bbb' in message and 'commit abc1234' in message
    assert 'llmops/redis:0.1.0-aaa' in message


def test_missing_packages_are_those_the_bundle_was_not_made_for():
    assert b.missing_packages(manifest(), ['docker.io', 'nvidia-container-toolkit']) == ['nvidia-container-toolkit']
