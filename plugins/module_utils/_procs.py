# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which process holds a lease: the play's ansible-playbook process and its start time (/proc).

A pid alone can be reused; the start time in clock ticks after boot names one process.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

# Commands whose main process lives as long as the play that runs a module.
PLAY_COMMANDS = ('ansible-playbook', 'ansible-runner')


def _proc(pid, name):
    """Text of /proc/<pid>/<name>, or None when the process (or /proc) is not there."""
    try:
        with open('/proc/%d/%s' % (pid, name), 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return None


def start_ticks(pid):
    """Start time of a running process in clock ticks after boot (/proc/<pid>/stat field 22), or None.

    A zombie (exited, not yet reaped by its parent) does not run: None.
    """
    stat = _proc(pid, 'stat')
    if not stat:
        return None
    try:
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rindex(')') + 2:].split()
        return None if fields[0] in ('Z', 'X') else int(fields[19])
    except (ValueError, IndexError):
        return None


def _parent(pid):
    ppid = [line.split()[1:] for line in (_proc(pid, 'status') or '').splitlines() if line.startswith('PPid:')]
    return int(ppid[0][0]) if ppid and ppid[0] and ppid[0][0].isdigit() else None


def _is_play(cmdline):
    """``python3 .../ansible-playbook ...`` or ``.../ansible-playbook ...`` (and ansible-runner)."""
    argv = [arg for arg in (cmdline or '').split('\0') if arg]
    return any(os.path.basename(arg) in PLAY_COMMANDS for arg in argv[:2])


def play_pid(pid=None):
    """The ansible-playbook (or ansible-runner) process running this module, or None.

    A module runs in a short-lived python process, below a shell and a worker that
    ansible-playbook forked for the task; forks keep the parent's command line, so the
    play's main process is the highest of the consecutive ancestors with that command
    line (the nearest play: a play started from inside another play is its own).
    Over SSH, or in a container, the chain does not reach the controller: None.
    """
    pid = os.getpid() if pid is None else pid
    found = None
    for dummy in range(64):
        parent = _parent(pid)
        if not parent or parent == pid:
            break
        cmdline = _proc(parent, 'cmdline')
        if found is not None and cmdline != _proc(found, 'cmdline'):
            break
        if _is_play(cmdline):
            found = parent
        pid = parent
    return found


def alive(pid, started):
    """True while process ``pid`` runs and is the one that started at ``started`` (a reused pid is not)."""
    ticks = start_ticks(pid)
    return ticks is not None and (started is None or ticks == started)
