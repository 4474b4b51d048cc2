# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every container of a deployed service is hardened (issue 9), and runs that way.

Needs a service deployed by deploy.yml (env LLMOPS_SERVICE; Molecule's default verify
sets it); skipped otherwise.
"""
import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.docker


def docker(*args):
    proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def containers(service):
    """{name: inspect dict} of the service's running containers (redis carries no label)."""
    names = set(docker('ps', '--filter', 'label=llmops.service=%s' % service, '--format', '{{.Names}}').split())
    names.add('%s-redis' % service)
    return dict((name, json.loads(docker('inspect', name))[0]) for name in sorted(names))


# The service's own containers; anything else labelled with the service (the monitoring
# role's Prometheus and exporters) is checked for what that role promises (no pids limit yet).
CORE = ('gateway', 'holder', 'redis', 'qa', 'llm')
NO_NEW_PRIVILEGES = ('no-new-privileges', 'no-new-privileges:true')


def role(name, service):
    rest = name[len(service) + 1:]
    return {'gateway': 'gateway', 'gateway-net': 'holder', 'redis': 'redis'}.get(rest, rest.split('-')[0])


def test_every_container_is_read_only_without_capabilities_and_limited(deployed):
    found = containers(deployed)
    roles = set(role(name, deployed) for name in found)
    assert {'gateway', 'holder', 'redis', 'qa', 'llm'} <= roles, sorted(found)
    problems = []
    for name, info in found.items():
        host = info['HostConfig']
        if not info['State']['Running']:
            problems.append('%s is not running' % name)
        if host.get('ReadonlyRootfs') is not True:
            problems.append('%s: root file system writable' % name)
        if host.get('CapDrop') != ['ALL']:
            problems.append('%s: CapDrop %s' % (name, host.get('CapDrop')))
        if not set(NO_NEW_PRIVILEGES) & set(host.get('SecurityOpt') or []):
            problems.append('%s: SecurityOpt %s' % (name, host.get('SecurityOpt')))
        if not host.get('Memory'):
            problems.append('%s: no memory limit' % name)
        if not host.get('PidsLimit') or host['PidsLimit'] < 0:
            problems.append('%s: PidsLimit %s' % (name, host.get('PidsLimit')))
        extra = set(host.get('CapAdd') or [])
        allowed = {'NET_BIND_SERVICE', 'SETUID', 'SETGID', 'CHOWN'} if role(name, deployed) == 'gateway' else set()
        if not extra <= allowed:
            problems.append('%s: CapAdd %s' % (name, sorted(extra)))
        health = (info['State'].get('Health') or {}).get('Status')
        if health not in (None, 'healthy'):
            problems.append('%s: health %s' % (name, health))
    assert problems == [], problems


def test_services_run_as_non_root_users(deployed):
    for name, info in containers(deployed).items():
        kind = role(name, deployed)
        if kind in ('qa', 'llm', 'redis'):
            assert info['Config'].get('User') not in ('', None, 'root', '0', '0:0'), (name, info['Config'].get('User'))
            uid = docker('exec', name, 'sh', '-c', 'id -u')
            assert uid != '0', name
        elif kind == 'gateway':
            # The master binds 80/443 with the capabilities above; the workers that parse requests are www-data.
            users = docker('exec', name, 'sh', '-c',
                           'exec 2>/dev/null; for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline)" in '
                           '"nginx: worker process"*) stat -c %U $p;; esac; done')
            assert users and set(users.split()) == {'www-data'}, (name, users)


def test_root_file_systems_refuse_writes(deployed):
    for name in containers(deployed):
        if role(name, deployed) not in CORE or role(name, deployed) == 'holder':
            continue  # the holder only sleeps; others need not have a shell
        proc = subprocess.run(['docker', 'exec', name, 'sh', '-c', 'touch /etc/llmops-write-test'],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode != 0 and 'Read-only file system' in proc.stderr, (name, proc.stderr)


def test_the_running_qa_api_carries_no_test_code(deployed):
    """Test suites and pytest stay in llmops/qa-api-test (images/qa-api/Dockerfile.test)."""
    for name in containers(deployed):
        if role(name, deployed) != 'qa':
            continue
        found = docker('exec', name, 'sh', '-c',
                       'ls -d /app/tests /app/pytest.ini 2>/dev/null; '
                       'python -c "import importlib.util as u; print(u.find_spec(\'pytest\') or \'\')"')
        assert found == '', (name, found)
        assert docker('exec', name, 'python', '-c', 'import qa_api.app; print("ok")') == 'ok', name


def test_colors_inference_and_redis_sit_only_on_internal_networks(deployed):
    """Issue 9: no egress for what holds the data; only the port holder and Prometheus (published
    ports) join an egress-capable network as well. A color of the openai engine needs egress
    (LLMOPS_COLOR_EGRESS=1 skips the qa-api)."""
    internal = {}
    problems = []
    for name, info in containers(deployed).items():
        attached = sorted((info['NetworkSettings'].get('Networks') or {}).keys())
        for network in attached:
            if network not in internal:
                internal[network] = json.loads(docker('network', 'inspect', network))[0].get('Internal') is True
        kind = role(name, deployed)
        rest = name[len(deployed) + 1:]
        if kind in ('qa', 'llm', 'redis') or rest == 'redis-exporter':
            if kind == 'qa' and os.environ.get('LLMOPS_COLOR_EGRESS') == '1':
                continue
            if not attached or not all(internal[n] for n in attached):
                problems.append('%s on %s (internal: %s)' % (name, attached, [internal[n] for n in attached]))
        elif kind == 'holder' or rest == 'prometheus':
            if sorted(internal[n] for n in attached) != [False, True]:
                problems.append('%s must be on one egress and one internal network: %s' % (name, attached))
    assert problems == [], problems
