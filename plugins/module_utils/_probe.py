# -*- coding: utf-8 -*-
# Copyright (c) llmops.bluegreen contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Probe a color's qa-api (or inference server): wait until ready, ask scored questions.

The scoring functions are pure (no Docker, no network) so they are unit tested
alone. A ``Target`` reaches a server either from inside its container
(``docker exec`` + python3 urllib, nothing published) or over a URL.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re
import time
import unicodedata

from ansible.module_utils.six import string_types
from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

# One guarded import of the Docker SDK for the collection (module_utils/_gateway.py).
from ansible_collections.llmops.bluegreen.plugins.module_utils._gateway import HAS_DOCKER

if HAS_DOCKER:
    import docker
    from docker.errors import DockerException, NotFound

BYPASS_HEADERS = {'X-QA-Cache': 'bypass'}
LOG_LINES = 20
TIMELINE_MAX = 40


class ProbeError(Exception):
    """The probe cannot go on or its verdict is negative; the message says why, ``details``
    holds what was learnt until then (returned with the failure)."""

    def __init__(self, message, **details):
        Exception.__init__(self, message)
        self.details = details


# ---------------------------------------------------------------- scoring (pure)

def normalize(text):
    """Width- and case-insensitive form: NFKC (full-width to half-width), casefold, single spaces."""
    return re.sub(r'\s+', ' ', unicodedata.normalize('NFKC', text or '')).strip().casefold()


def _fact_regex(fact):
    """Spaces in a fact match any spacing ("14 天" = "14天"); an alphanumeric edge is a word edge,
    so "1 hour" is not found in "11 hours" nor "80" in "51820"."""
    words = [re.escape(w) for w in normalize(fact).split(' ')]
    body = r'\s*'.join(words)
    if re.match(r'[0-9a-z]', words[0][:1]):
        body = r'(?<![0-9a-z])' + body
    if re.search(r'[0-9]$', words[-1]):
        body += r'(?![0-9])'
    return re.compile(body)


def alternatives(fact):
    return [fact] if isinstance(fact, string_types) else list(fact)


def find_fact(text, fact):
    """The alternative of ``fact`` (a string or a list of alternatives) found in ``text``, or None."""
    norm = normalize(text)
    for alt in alternatives(fact):
        if _fact_regex(alt).search(norm):
            return alt
    return None


def split_answer(text):
    """``(answer without its Sources line, [cited file names])``: facts must be in what the model said."""
    lines = (text or '').rstrip().split('\n')
    if lines and lines[-1].startswith('Sources:'):
        cited = [s.strip() for s in lines[-1][len('Sources:'):].split(',') if s.strip() and s.strip() != 'none']
        return '\n'.join(lines[:-1]).strip(), cited
    return (text or '').strip(), []


def validate_questions(questions):
    """Checked copy of a question set; raises ProbeError naming the first bad entry."""
    if not questions:
        raise ProbeError('the question set is empty')
    checked = []
    for number, item in enumerate(questions, 1):
        if not isinstance(item, dict) or not isinstance(item.get('question'), string_types) or not item['question'].strip():
            raise ProbeError('question %d has no text: %r' % (number, item))
        facts = item.get('expect_facts') or []
        if not isinstance(facts, list) or not facts:
            raise ProbeError('question %d (%s) needs a non-empty list expect_facts' % (number, item['question']))
        for fact in facts:
            alts = alternatives(fact) if isinstance(fact, (list, string_types)) else None
            if not alts or not all(isinstance(a, string_types) and a.strip() for a in alts):
                raise ProbeError('question %d (%s): a fact must be a string or a list of strings, got %r'
                                 % (number, item['question'], fact))
        checked.append({'question': item['question'], 'expect_facts': facts,
                        'expect_source': item.get('expect_source') or None,
                        'language': item.get('language') or None})
    return checked


def score_answer(question, text, sources=None):
    """One row of the gate table: facts found in the answer text, and whether the source is cited."""
    answer, cited = split_answer(text)
    found, missing = [], []
    for fact in question['expect_facts']:
        hit = find_fact(answer, fact)
        (found if hit is not None else missing).append(hit if hit is not None else alternatives(fact)[0])
    expected = question.get('expect_source')
    cited_files = cited + [s.get('source') for s in sources or [] if isinstance(s, dict)]
    return {
        'question': question['question'], 'language': question.get('language'),
        'score': round(float(len(found)) / len(question['expect_facts']), 4),
        'facts_found': found, 'facts_missing': missing,
        'expect_source': expected,
        'source_cited': (expected in cited_files) if expected else None,
        'answer': answer,
    }


def passed(row, pass_score=1.0, require_source=False):
    if row.get('error'):
        return False
    return row['score'] >= pass_score and (not require_source or row['source_cited'] is not False)


def pass_rate(rows, pass_score=1.0, require_source=False):
    if not rows:
        return 0.0
    return round(float(sum(1 for r in rows if passed(r, pass_score, require_source))) / len(rows), 4)


def gate_verdict(rate, baseline_rate, threshold, margin, color='new', baseline_color='active'):
    """``(ok, message)``: refused under ``threshold`` or more than ``margin`` under the baseline."""
    both = '%s pass rate %.2f' % (color, rate)
    if baseline_rate is not None:
        both += ', %s %.2f' % (baseline_color, baseline_rate)
    if rate < threshold:
        return False, 'quality gate refused %s: %s is under the threshold %.2f' % (color, both, threshold)
    if baseline_rate is not None and rate < baseline_rate - margin - 1e-9:
        return False, ('quality gate refused %s: %s; more than the margin %.2f under %s'
                       % (color, both, margin, baseline_color))
    return True, 'quality gate passed: %s (threshold %.2f, margin %.2f)' % (both, threshold, margin)


def latency(rows):
    """``{p50, max, mean}`` seconds of the answered rows (errors left out), or None when none answered."""
    seconds = sorted(row['seconds'] for row in rows or [] if not row.get('error') and row.get('seconds') is not None)
    if not seconds:
        return None
    return {'p50': seconds[(len(seconds) - 1) // 2], 'max': seconds[-1],
            'mean': round(sum(seconds) / len(seconds), 2)}


def format_table(rows, color, baseline_rows=None, baseline_color=None):
    """Printable lines, the A/B view: per question the score, source and seconds of each color, then latency."""
    head = '%-6s %-4s %-6s' % (color, 'src', 's')
    if baseline_rows is not None:
        head += ' %-6s %-4s %-6s' % (baseline_color, 'src', 's')
    lines = [head + ' lang question / missing facts']

    def cell(row):
        mark = {True: 'yes', False: 'no', None: '-'}[row.get('source_cited')]
        secs = '-' if row.get('seconds') is None else '%.2f' % row['seconds']
        return '%-6s %-4s %-6s' % ('ERR' if row.get('error') else '%.2f' % row['score'], mark, secs)

    for index, row in enumerate(rows):
        line = cell(row)
        if baseline_rows is not None:
            line += ' ' + cell(baseline_rows[index])
        missing = row.get('error') or ', '.join(row['facts_missing'])
        line += ' %-4s %s%s' % (row.get('language') or '-', row['question'], ' | missing: ' + missing if missing else '')
        lines.append(line)
    for name, which in ((color, rows), (baseline_color, baseline_rows)):
        if which is not None:
            summary = latency(which)
            text = 'no answer' if summary is None else 'p50 %(p50).2f s, max %(max).2f s, mean %(mean).2f s' % summary
            lines.append('%s latency: %s' % (name, text))
    return lines


def check_expectations(report, expect):
    """``[(name, expected, reported)]`` for every non-empty expectation /health contradicts."""
    reported = {'kb_checksum': (report.get('kb') or {}).get('checksum'), 'model': report.get('model'),
                'version': report.get('version'), 'release': report.get('release')}
    return [(name, value, reported.get(name)) for name, value in sorted((expect or {}).items())
            if value and reported.get(name) != value]


def metric_value(text, name):
    """Value of an unlabelled Prometheus sample, or None."""
    for line in (text or '').splitlines():
        if line.startswith(name + ' '):
            return float(line.split()[1])
    return None


# ---------------------------------------------------------------- transport

# Runs inside the container: one plain-HTTP request to the server there (no proxy from the
# container's environment is involved), its outcome as one JSON line.
_EXEC_PROGRAM = r'''
import http.client, json, sys, urllib.parse
method, url, body, headers, timeout, bearer_file = sys.argv[1:7]
parts = urllib.parse.urlsplit(url)
headers = dict(json.loads(headers), **({"Content-Type": "application/json"} if body else {}))
try:
    if bearer_file:  # the key is read here: it never leaves the container
        with open(bearer_file) as handle:
            headers["Authorization"] = "Bearer " + handle.read().strip()
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=float(timeout))
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    conn.request(method, target, body=body.encode() if body else None, headers=headers)
    resp = conn.getresponse()
    out = {"status": resp.status, "headers": dict(resp.getheaders()), "body": resp.read().decode("utf-8", "replace")}
except Exception as exc:
    out = {"status": None, "error": "%s: %s" % (type(exc).__name__, exc)}
print(json.dumps(out))
'''


class Target(object):
    """A server reached inside its container (``container``, over plain HTTP) or at ``url``."""

    def __init__(self, container=None, url=None, port=8000, headers=None, validate_certs=True, client=None,
                 bearer_file=None):
        self.name = container or url
        # A file inside the container whose content is the bearer token (container targets only).
        self.bearer_file = bearer_file or ''
        if self.bearer_file and not container:
            raise ProbeError('bearer_file is read inside a container: give container, not url')
        self.url = (url or 'http://127.0.0.1:%d' % port).rstrip('/')
        self.headers = headers or {}
        self.validate_certs = validate_certs
        self.container = None
        if container:
            try:
                self.container = (client or docker.from_env()).containers.get(container)
            except NotFound:
                raise ProbeError('container %s does not exist' % container)
            except DockerException as exc:
                raise ProbeError('cannot reach the Docker engine: %s' % exc)

    def state(self):
        """Docker's view ``{status, exit_code, restarts, ...}``, or None for a URL target."""
        if self.container is None:
            return None
        try:
            self.container.reload()
        except NotFound:
            raise ProbeError('container %s was removed' % self.name)
        except DockerException as exc:
            raise ProbeError('cannot inspect %s: %s' % (self.name, exc))
        attrs = self.container.attrs
        state = attrs.get('State') or {}
        return {'status': 'restarting' if state.get('Restarting') else state.get('Status'),
                'exit_code': state.get('ExitCode'), 'oom_killed': state.get('OOMKilled'),
                'error': state.get('Error') or None, 'restarts': attrs.get('RestartCount', 0)}

    def logs(self, lines=LOG_LINES):
        try:
            return self.container.logs(tail=lines).decode('utf-8', 'replace').rstrip()
        except DockerException as exc:
            return '(logs unavailable: %s)' % exc

    def request(self, method, path, body=None, headers=None, timeout=10):
        """``(status or None, headers (lower-case), body text, error)``."""
        all_headers = dict(self.headers, **(headers or {}))
        data = json.dumps(body) if body is not None else ''
        if self.container is not None:
            argv = ['python3', '-c', _EXEC_PROGRAM, method, self.url + path, data, json.dumps(all_headers), str(timeout),
                    self.bearer_file]
            try:
                rc, (out, err) = self.container.exec_run(argv, demux=True)
            except DockerException as exc:
                return None, {}, '', 'docker exec failed: %s' % exc
            out, err = (out or b'').decode('utf-8', 'replace'), (err or b'').decode('utf-8', 'replace')
            try:
                result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                return None, {}, '', 'probe in %s failed (rc %s): %s' % (self.name, rc, (err or out).strip()[-300:])
            return (result.get('status'), dict((k.lower(), v) for k, v in (result.get('headers') or {}).items()),
                    result.get('body', ''), result.get('error'))
        if data:
            all_headers['Content-Type'] = 'application/json'
        try:
            resp = open_url(self.url + path, data=data or None, method=method, headers=all_headers,
                            timeout=timeout, validate_certs=self.validate_certs)
            status, resp_headers, text = resp.getcode(), resp.headers, resp.read()
        except HTTPError as exc:
            status, resp_headers, text = exc.code, exc.headers, exc.read()
        except (URLError, IOError, OSError) as exc:
            return None, {}, '', str(exc)
        return (status, dict((k.lower(), v) for k, v in resp_headers.items()),
                text.decode('utf-8', 'replace'), None)

    def get_json(self, path, timeout=5):
        status, dummy, text, error = self.request('GET', path, timeout=timeout)
        if error or status is None:
            return None, error or 'no answer'
        try:
            return json.loads(text), None if status == 200 else 'HTTP %s' % status
        except ValueError:
            return None, 'HTTP %s, not JSON: %r' % (status, text[:200])


# ---------------------------------------------------------------- wait

def _stopped(target, state, restarts0):
    status = state['status']
    if status == 'running' and state['restarts'] == restarts0:
        return None
    why = 'restarted %d times' % (state['restarts'] - restarts0) if status == 'running' else status
    return ('%s stopped while waiting for it to become ready: %s, exit code %s%s%s. Last log lines:\n%s'
            % (target.name, why, state['exit_code'], ', OOM killed' if state['oom_killed'] else '',
               ', ' + state['error'] if state['error'] else '', target.logs()))


def wait_ready(target, endpoint='health', timeout=600, interval=3, clock=time.monotonic, sleep=time.sleep):
    """Poll until ready; returns ``(report, timeline)``. Raises ProbeError at once when the
    container stops or restarts, or /health says ``error``; after ``timeout`` when never ready."""
    start = clock()
    timeline, last = [], None
    first = target.state()
    restarts0 = first['restarts'] if first else 0
    while True:
        state = target.state()
        if state is not None:
            stopped = _stopped(target, state, restarts0)
            if stopped:
                raise ProbeError(stopped, timeline=timeline)
        if endpoint == 'models':
            report, error = target.get_json('/v1/models')
            status = 'ready' if report is not None and error is None else 'loading'
            if (error or '').startswith(('HTTP 401', 'HTTP 403')):
                # Waiting cannot fix a key: say so at once.
                raise ProbeError('%s refuses the probe (%s): the server requires an API key; give the probe '
                                 'the key file inside the container (bearer_file), the one the server reads'
                                 % (target.name, error), timeline=timeline)
        else:
            report, error = target.get_json('/health')
            status = (report or {}).get('status') or 'unreachable'
        detail = error or (report or {}).get('detail') or (report or {}).get('error')
        elapsed = round(clock() - start, 1)
        if (status, detail) != last:
            entry = {'t': elapsed, 'status': status, 'detail': detail}
            # Bounded: a server whose detail changes every poll keeps the latest in the last slot.
            timeline[len(timeline) if len(timeline) < TIMELINE_MAX else -1:] = [entry]
            last = (status, detail)
        if status == 'ready':
            return report, timeline
        if status == 'error':
            raise ProbeError('%s reports status error: %s' % (target.name, (report or {}).get('error')),
                             report=report, timeline=timeline)
        if elapsed >= timeout:
            raise ProbeError('%s did not become ready within %s s: last status %s (%s)'
                             % (target.name, timeout, status, detail or 'no detail'), report=report, timeline=timeline)
        sleep(interval)


# ---------------------------------------------------------------- gate

def ask(target, question, model, max_tokens, timeout=180):
    """Ask one question without the cache; a scored row (with ``error`` when there is no answer)."""
    body = {'model': model, 'temperature': 0, 'max_tokens': max_tokens,
            'messages': [{'role': 'user', 'content': question['question']}]}
    started = time.time()
    status, headers, text, error = target.request('POST', '/v1/chat/completions', body, BYPASS_HEADERS, timeout)
    content, sources = '', []
    if not error and status != 200:
        error = 'HTTP %s: %s' % (status, text[:200])
    if not error:
        try:
            reply = json.loads(text)
            content, sources = reply['choices'][0]['message']['content'] or '', reply.get('sources') or []
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            error = 'not a chat completion (%s): %r' % (exc, text[:200])
    row = score_answer(question, content, sources)
    row.update(seconds=round(time.time() - started, 2), cache=headers.get('x-cache'), error=error)
    if not error and row['cache'] == 'HIT':
        raise ProbeError('%s answered "%s" from its cache: the gate must score the model' % (target.name, question['question']))
    return row


def cache_hits(target):
    """qa_cache_hits_total of the target, or None when /metrics does not say."""
    status, dummy, text, error = target.request('GET', '/metrics')
    return metric_value(text, 'qa_cache_hits_total') if status == 200 and not error else None
