# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-ins the pure tests share."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class Clock(object):
    """A fake clock: call it for the time, ``sleep`` advances it (no real waiting)."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
