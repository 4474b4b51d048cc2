# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Who runs a play, for the audit log (controller side, pure).

AWX/Tower injects ``awx_user_name``/``awx_job_id`` (and the older ``tower_*``) as extra vars
and sets ``JOB_ID`` in the job's environment. Anyone can pass the same names with ``-e``: a
name is credited to an AWX job only when ``JOB_ID`` agrees; otherwise the record says it came
from ``-e`` and names the controller login that ran the play.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# (variable prefix, product name), newest first.
PRODUCTS = (('awx', 'AWX'), ('tower', 'Tower'))
MAX_LEN = 120


def _clean(value):
    """One short line: extra vars are free text that ends up in a JSON audit line and status output."""
    if value is None:
        return ''
    text = ' '.join(str(value).split())
    return text[:MAX_LEN]


def operator_of(variables, environ, login):
    """``{'operator', 'source', 'user', 'job'}`` for a play.

    ``variables``: the play's variables; ``environ``: the controller's environment;
    ``login``: ``user@host`` of the controller process. ``source`` is ``awx`` or ``tower`` (a
    job of that product), ``extra-vars`` (its variables without its job), ``llmops_operator``
    (named by the caller) or ``login``.
    """
    for prefix, product in PRODUCTS:
        user = _clean(variables.get(prefix + '_user_name'))
        job = _clean(variables.get(prefix + '_job_id'))
        if user or job:
            break
    if user or job:
        if job and _clean(environ.get('JOB_ID')) == job:
            return dict(operator='%s (%s job %s)' % (user or 'unknown user', product, job),
                        source=prefix, user=user or None, job=job)
        given = ' '.join(part for part in (
            user and '%s_user_name' % prefix, job and '%s_job_id=%s' % (prefix, job)) if part)
        return dict(operator='%s (-e %s, not an %s job; login %s)' % (user or login, given, product, login),
                    source='extra-vars', user=user or None, job=job or None)
    named = _clean(variables.get('llmops_operator'))
    if named:
        return dict(operator='%s (-e llmops_operator; login %s)' % (named, login),
                    source='llmops_operator', user=named, job=None)
    return dict(operator=login, source='login', user=login, job=None)
