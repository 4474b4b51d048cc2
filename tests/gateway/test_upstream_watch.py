# -*- coding: utf-8 -*-
"""A color that restarts with a new address is served again within seconds, with no manual reload.

nginx 1.22 resolves upstream names only when it loads its config; the gateway image's
watcher re-resolves them every 2 s and reloads. The test stops the active qa-api,
parks a throwaway container on the network (so its old address is taken), starts it
again and measures how long the gateway takes to serve it after it answers.
"""
import time

from _stack import docker, inspect, logs

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
    assert stack.health_color() == (200, active, active)
    docker('rm', '-f', thief, check=False)
    try:
        docker('stop', qa, timeout=400)
        # Take the old address when the network allows choosing it; else any address.
        image = inspect(stack.gateway, '{{.Config.Image}}')
        if docker('run', '-d', '--name', thief, '--network', stack.network, '--ip', before,
                  image, 'sleep', '600', check=False) == '':
            docker('rm', '-f', thief, check=False)
            docker('run', '-d', '--name', thief, '--network', stack.network, image, 'sleep', '600')
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
        served = wait(lambda: stack.health_color() == (200, active, active), 30)
        print('\nqa-api %s -> %s; answered %.1f s after docker start; gateway served it %.2f s after that'
              % (before, after, direct - started, (served or time.time()) - direct))
        assert served, 'gateway did not serve %s within 30 s after it answered on %s' % (qa, after)
        assert served - direct < LIMIT_S
        assert 'nginx reloaded' in logs(stack.gateway, started - 1), 'the watcher logged no reload'
    finally:
        docker('rm', '-f', thief, check=False)
        docker('start', qa, check=False)
