# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""vLLM sleep mode of a color's inference server: park it (weights to CPU RAM, GPU memory freed) and wake it.

vLLM (>= 0.8) started with ``--enable-sleep-mode`` and the environment ``VLLM_SERVER_DEV_MODE=1``
serves ``POST /sleep?level=1``, ``POST /wake_up`` and ``GET /is_sleeping`` (``{"is_sleeping": bool}``);
without them those paths are 404. ``plan`` and ``read_sleeping`` are pure (unit tested alone);
``converge`` talks to a ``_probe.Target`` (inside the container, or a URL).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

# Level 1 keeps the weights in CPU RAM, so /wake_up brings back the same model. Level 2 drops
# them (a wake would need the weights reloaded): never used for a color kept for rollback.
SLEEP_LEVEL = 1
ENABLE_HINT = ('start vLLM (>= 0.8) with --enable-sleep-mode and the environment VLLM_SERVER_DEV_MODE=1 '
               '(inference_vllm_sleep_mode: true; the next release of that color applies it)')


class SleepError(Exception):
    """The server cannot be brought to the wanted state; the message says why and what to do."""


def read_sleeping(name, status, body, error):
    """``True``/``False`` from ``GET /is_sleeping``; ``None`` when the server has no sleep endpoints (404)."""
    if error or status is None:
        raise SleepError('%s does not answer GET /is_sleeping: %s' % (name, error or 'no answer'))
    if status == 404:
        return None
    if status in (401, 403):
        raise SleepError('%s refuses GET /is_sleeping (HTTP %s): give the key file inside the container '
                         '(bearer_file), the one the server reads' % (name, status))
    if status != 200:
        raise SleepError('%s answers GET /is_sleeping with HTTP %s: %s' % (name, status, (body or '')[:200]))
    try:
        value = json.loads(body).get('is_sleeping')
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, bool):
        raise SleepError('%s answers GET /is_sleeping with %r, not {"is_sleeping": true|false}' % (name, (body or '')[:200]))
    return value


def plan(name, wanted, sleeping):
    """The call that brings a server from ``sleeping`` (True, False, None: no sleep mode) to ``wanted``.

    ``'sleep'``, ``'wake'`` or ``None`` (nothing to do). A server without sleep mode is never
    asleep, so ``awake`` is already true of it; ``asleep`` is refused with the fix.
    """
    if wanted not in ('asleep', 'awake'):
        raise SleepError('state must be asleep or awake, got %r' % (wanted,))
    if sleeping is None:
        if wanted == 'asleep':
            raise SleepError('%s has no sleep mode (GET /is_sleeping is 404): %s' % (name, ENABLE_HINT))
        return None
    if wanted == 'asleep':
        return None if sleeping else 'sleep'
    return 'wake' if sleeping else None


def _is_sleeping(target):
    status, dummy, body, error = target.request('GET', '/is_sleeping', timeout=10)
    return read_sleeping(target.name, status, body, error)


def _healthy(target):
    status, dummy, dummy2, error = target.request('GET', '/health', timeout=10)
    return status == 200 and not error, error or 'HTTP %s' % status


def converge(target, wanted, timeout=300, interval=2, check_mode=False, clock=time.monotonic, sleep=time.sleep):
    """Bring ``target`` to ``wanted``; returns the result dict of the module.

    Waking returns only once ``/is_sleeping`` says false and ``/health`` answers 200 (the model can
    serve again); parking once ``/is_sleeping`` says true. Raises SleepError after ``timeout`` s.
    """
    start = clock()
    was = _is_sleeping(target)
    action = plan(target.name, wanted, was)
    result = {'changed': action is not None, 'sleep_mode': was is not None, 'was_sleeping': bool(was),
              'sleeping': bool(was), 'action': action}
    if action is None or check_mode:
        if action is not None:
            result['sleeping'] = action == 'sleep'
        return result
    path = '/sleep?level=%d' % SLEEP_LEVEL if action == 'sleep' else '/wake_up'
    # vLLM answers both once the engine has done it (a wake copies the weights back to the GPU).
    status, dummy, body, error = target.request('POST', path, timeout=max(10, timeout))
    if error or status != 200:
        raise SleepError('%s: POST %s failed: %s' % (target.name, path, error or 'HTTP %s %s' % (status, (body or '')[:200])))
    while True:
        sleeping = _is_sleeping(target)
        ok, why = (False, 'still asleep') if sleeping else _healthy(target)
        done = sleeping is True if action == 'sleep' else (sleeping is False and ok)
        if done:
            result.update(sleeping=bool(sleeping), elapsed=round(clock() - start, 1))
            return result
        if clock() - start >= timeout:
            raise SleepError('%s is not %s %s s after POST %s: is_sleeping %s, /health %s'
                             % (target.name, wanted, timeout, path, sleeping, 'ok' if ok else why))
        sleep(interval)
