# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reload counts only once the old nginx workers stopped accepting (module_utils/_gateway.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from _fakes import Clock
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import (
    Gateway, GatewayError, accepting_workers)

LISTING = '''1 /sbin/docker-init -- /usr/local/bin/gateway-run
8 nginx: master process nginx -g daemon off;
22 nginx: worker process
23 nginx: worker process is shutting down
24 nginx: worker process
30 sh -c for d in /proc/[0-9]*; do echo nginx: worker process; done
'''


def test_only_workers_that_still_accept_are_listed():
    assert accepting_workers(LISTING) == {'22', '24'}
    assert accepting_workers('') == set()


class ScriptedGateway(Gateway):
    """Gateway whose ``docker exec`` answers from a script of /proc listings (no Docker)."""

    def __init__(self, listings, reload_rc=0):  # pylint: disable=super-init-not-called
        self.name = 'svc-gateway'
        self.listings = list(listings)
        self.reload_rc = reload_rc
        self.reloads = 0

    def run(self, cmd):
        if cmd[:2] == ['nginx', '-s']:
            self.reloads += 1
            return self.reload_rc, '', 'nginx: [alert] kill(8, 1) failed' if self.reload_rc else ''
        listing = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        return 0, listing, ''


def test_reload_waits_until_the_old_workers_stop_accepting():
    old = '22 nginx: worker process\n'
    new = '22 nginx: worker process is shutting down\n40 nginx: worker process\n'
    gateway = ScriptedGateway([old, old, old, old, new])
    clock = Clock()
    gateway.nginx_reload(timeout=10, clock=clock, sleep=clock.sleep)
    assert gateway.reloads == 1 and gateway.listings == [new]
    assert 0.1 <= clock.now < 1


def test_a_reload_that_never_takes_effect_is_an_error_naming_the_workers():
    gateway = ScriptedGateway(['22 nginx: worker process\n'])
    clock = Clock()
    with pytest.raises(GatewayError, match=r'did not apply the reload within 2 s: workers 22 still accept'):
        gateway.nginx_reload(timeout=2, clock=clock, sleep=clock.sleep)


def test_a_failed_reload_command_is_reported():
    gateway = ScriptedGateway(['22 nginx: worker process\n'], reload_rc=1)
    with pytest.raises(GatewayError, match='nginx -s reload in svc-gateway failed: .*kill'):
        gateway.nginx_reload()


def test_without_a_process_listing_the_reload_does_not_wait():
    gateway = ScriptedGateway([''])
    clock = Clock()
    gateway.nginx_reload(timeout=2, clock=clock, sleep=clock.sleep)
    assert clock.now == 0 and gateway.reloads == 1
