# -*- coding: utf-8 -*-
"""A color that restarts with a new address is served again within seconds, with no manual reload.

nginx 1.22 resolves upstream names only when it loads its config; the gateway image's
watcher re-resolves them every 2 s and reloads. The test stops the active qa-api,
parks throwaway containers on the network until one holds its old address, starts it
again (so it gets a new address) and measures how long the gateway takes to serve it after it answers.
"""
import time

from _gateway_stack import docker, inspect, logs

LIMIT_S = 10  # watcher interval 2 s + nginx -t + reload, with margin for a loaded 2-core host


def address(stack, name):
    return inspect(name, '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % stack.network)


def wait(predicate, seconds, step=0.2):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return time.time()
        time.sleep(step)
    return None


def test_restarted_color_with_a_new_address_is_served_again(stack):
    active = stack.state()['active']
    qa = '%s-qa-%s' % (stack.service, active)
    thief = '%s-gwtest-ipthief' % stack.service
    before = address(stack, qa)
    # The full /health (operator key) answers 200 while qa-api still loads, like the direct
    # check below; without a key the gateway answers readiness (503 until ready).
    operator = {'Authorization': 'Bearer %s' % stack.operator_key()}
    assert stack.health_color(operator) == (200, active, active)
    thieves = []
    try:
        docker('stop', qa, timeout=400)
        # Docker hands a restarted container its old address when it is free, and new
        # addresses lowest first: park throwaway containers until one holds the old one.
        image = inspect(stack.gateway, '{{.Config.Image}}')
        for number in range(12):
            docker('run', '-d', '--name', '%s-%d' % (thief, number), '--network', stack.network, image, 'sleep', '600')
            if address(stack, '%s-%d' % (thief, number)) == before:
                break
        thieves = ['%s-%d' % (thief, n) for n in range(number + 1)]
        for spare in thieves[:-1]:
            docker('rm', '-f', spare)
        started = time.time()
        docker('start', qa)
        after = address(stack, qa)
        assert after != before, 'qa-api kept address %s: the test proves nothing' % before

        def answers_directly():
            out = docker('exec', stack.gateway, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                         '--max-time', '2', 'http://%s:8000/health' % after, check=False)
            return out == '200'

        direct = wait(answers_directly, 300)
        assert direct, '%s did not answer on %s within 300 s' % (qa, after)
        served = wait(lambda: stack.health_color(operator) == (200, active, active), 30)
        print('\nqa-api %s -> %s (old address now %s); answered %.1f s after docker start; '
              'gateway served it %.2f s after that (%.1f s after docker start)'
              % (before, after, 'taken' if address(stack, thieves[-1]) == before else 'free', direct - started,
                 (served or time.time()) - direct, (served or time.time()) - started))
        assert served, 'gateway did not serve %s within 30 s after it answered on %s' % (qa, after)
        assert served - direct < LIMIT_S
        assert 'nginx reloaded' in logs(stack.gateway, started - 1), 'the watcher logged no reload'
    finally:
        for name in thieves:
            docker('rm', '-f', name, check=False)
        docker('start', qa, check=False)
        # Served is not ready: the color answered its full /health while still loading. The next
        # tests' clients must not meet it loading (CI: two 503 "service not ready: loading").
        ready = wait(lambda: stack.health_color()[0] == 200, 300, step=1)
    assert ready, '%s was not ready (readiness through the gateway) within 300 s of its restart' % qa
