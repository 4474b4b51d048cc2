# -*- coding: utf-8 -*-
"""A new gateway image is deployed under streaming load with no refused, failed or truncated request.

The gateway role hands over from the serving nginx container to a new one in the same
network namespace (docs/gateway-updates.md). The test builds an image that differs from
the running one only by a label, runs the role with it while the openai SDK streams
through the gateway and a second client opens a new TLS connection every few
milliseconds, then hands back to the original image the same way.
"""
import subprocess
import sys
import threading
import time
import uuid

from _gateway_stack import REPO, docker, inspect

sys.path.insert(0, str(REPO / 'tests' / 'bench'))
from loadgen import LoadGen, summarize  # noqa: E402  pylint: disable=wrong-import-position


class Connector:
    """New-connection requests to the gateway's own /gateway/health: refusals show at once."""

    def __init__(self, stack, threads=2, max_seconds=400, max_requests=60000):
        self.stack = stack
        self.ok = 0
        self.failures = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._left = max_requests
        self._deadline = time.time() + max_seconds
        self._threads = [threading.Thread(target=self._run, daemon=True) for dummy in range(threads)]

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self):
        while not self._stop.is_set() and time.time() < self._deadline:
            with self._lock:
                if self._left <= 0:
                    return
                self._left -= 1
            try:
                status = self.stack.request('/gateway/health', timeout=10)[0]
                error = None if status == 200 else 'HTTP %s' % status
            except (OSError, ValueError) as exc:
                error = '%s: %s' % (type(exc).__name__, exc)
            with self._lock:
                if error:
                    self.failures.append((time.time(), error))
                else:
                    self.ok += 1
            time.sleep(0.02)


def test_new_gateway_image_under_streaming_load(stack):
    original = inspect(stack.gateway, '{{.Config.Image}}')
    holder = inspect(stack.holder, '{{.Id}}')
    tag = 'llmops/gateway:gwtest-handover-%s' % uuid.uuid4().hex[:8]
    proc = subprocess.run(['docker', 'build', '-q', '-t', tag, '-'], input='FROM %s\nLABEL llmops.test.handover="%s"\n'
                          % (original, tag), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    gen = LoadGen(base_url='https://127.0.0.1:%d/v1' % stack.port, api_key=stack.api_key() or 'none',
                  cacert=stack.cacert, workers=2, stream_share=0.5, max_tokens=16,
                  max_seconds=400, max_requests=4000).start()
    connector = Connector(stack).start()
    windows = []
    try:
        time.sleep(3)
        for image in (tag, original):
            before = inspect(stack.gateway, '{{.Id}}')
            started = time.time()
            # The play waits 5 s for the replaced gateway; it finishes its streams on its own.
            stack.gateway_role(image, gateway_drain_wait=5)
            windows.append((started, time.time()))
            assert inspect(stack.gateway, '{{.Image}}') == docker('image', 'inspect', '-f', '{{.Id}}', image)
            assert inspect(stack.gateway, '{{.Id}}') != before, 'the gateway container was not replaced'
            assert inspect(stack.holder, '{{.Id}}') == holder, 'the port holder was replaced (ports closed)'
            time.sleep(2)
    finally:
        results = gen.stop()
        connector.stop()
        if windows and len(windows) < 2:
            stack.gateway_role(original)
        docker('rmi', '-f', tag, check=False)  # a tag only: a stopped old gateway may still use it
    summary = summarize(results)
    streams_across = [sum(1 for r in results if r.kind == 'stream' and r.start < end and r.end > begin)
                      for begin, end in windows]
    print('\nhandovers (s): %s; load: %s; streams spanning each handover: %s; new connections: %d ok, %d failed %s'
          % ([round(end - begin, 1) for begin, end in windows], summary, streams_across,
             connector.ok, len(connector.failures), connector.failures[:3]))
    assert summary['requests_total'] > 0 and connector.ok > 0
    assert summary['requests_failed'] == 0, summary
    assert summary['streams_truncated'] == 0, summary
    assert not connector.failures, connector.failures[:5]
    assert all(count > 0 for count in streams_across), 'no stream was in flight during a handover'
    # A replaced gateway still finishing a long stream when the play ended stops by itself.
    prefix = '%s-gateway-old-' % stack.service
    old = docker('ps', '-a', '--filter', 'name=' + prefix, '--format', '{{.Names}}').split()
    deadline = time.time() + 120
    while any(inspect(name, '{{.State.Running}}') == 'true' for name in old) and time.time() < deadline:
        time.sleep(1)
    for name in old:
        assert inspect(name, '{{.State.Status}} {{.State.ExitCode}}') == 'exited 0', name
        docker('rm', name)
    assert not docker('ps', '-a', '--filter', 'name=%s-gateway-next' % stack.service, '-q')
