"""A vLLM test double: NOT vLLM. No GPU is lent here, so the sleep-mode tests talk to this.

A real HTTP server (standard library only, runs with the python3 of any image the repo builds)
answering like vLLM's OpenAI server does for what the collection uses: /health, /v1/models,
/v1/chat/completions (503 while asleep, as vLLM's protected endpoints), and, only when started
as vLLM needs it (``--enable-sleep-mode`` AND ``VLLM_SERVER_DEV_MODE=1``), POST /sleep?level=N,
POST /wake_up and GET /is_sleeping; otherwise those are 404 like vLLM's.

For the tests: a wake takes ``--wake-seconds`` (the call returns when done, as vLLM's does),
then /health stays 503 ``--health-lag`` seconds more; GET /_calls lists every request
(method, path, wall time, whether it is asleep after it, the status answered), also printed on stdout, so a test can check what was
called and in which order.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATE = {'sleeping': False, 'level': None, 'healthy_at': 0.0}
CALLS = []
LOCK = threading.Lock()


def make_handler(args, sleep_mode):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *dummy):
            pass

        def reply(self, status, body=None):
            data = b'' if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def reply_and_record(self, status, body=None):
            call = {'method': self.command, 'path': self.path, 't': time.time(), 'asleep': STATE['sleeping'],
                    'status': status}
            with LOCK:
                CALLS.append(call)
            # Also on stdout: `docker logs` still has the calls after the container stopped.
            print(json.dumps(call), flush=True)
            self.reply(status, body)

        def authorized(self):
            # Like vLLM's VLLM_API_KEY middleware: only /v1 paths need the key.
            key = os.environ.get('VLLM_API_KEY')
            if not key or not self.path.startswith('/v1'):
                return True
            return self.headers.get('Authorization') == 'Bearer ' + key

        def do_GET(self):  # noqa: N802
            path = urlsplit(self.path).path
            if path == '/_calls':
                with LOCK:
                    return self.reply(200, list(CALLS))
            if not self.authorized():
                return self.reply_and_record(401, {'error': 'Unauthorized'})
            if path == '/health':
                return self.reply_and_record(200 if time.monotonic() >= STATE['healthy_at'] else 503)
            if path == '/v1/models':
                return self.reply_and_record(200, {'object': 'list', 'data': [{'id': args.served_model_name, 'object': 'model'}]})
            if path == '/is_sleeping' and sleep_mode:
                return self.reply_and_record(200, {'is_sleeping': STATE['sleeping']})
            return self.reply_and_record(404, {'detail': 'Not Found'})

        def do_POST(self):  # noqa: N802
            parts = urlsplit(self.path)
            length = int(self.headers.get('Content-Length') or 0)
            if length:
                self.rfile.read(length)
            if not self.authorized():
                return self.reply_and_record(401, {'error': 'Unauthorized'})
            if parts.path == '/sleep' and sleep_mode:
                time.sleep(args.sleep_seconds)
                STATE.update(sleeping=True, level=int(parse_qs(parts.query).get('level', ['1'])[0]))
                return self.reply_and_record(200)
            if parts.path == '/wake_up' and sleep_mode:
                time.sleep(args.wake_seconds)
                STATE.update(sleeping=False, healthy_at=time.monotonic() + args.health_lag)
                return self.reply_and_record(200)
            if parts.path == '/v1/chat/completions':
                if STATE['sleeping']:
                    return self.reply_and_record(503, {'error': 'model is sleeping'})
                answer = {'id': 'double', 'object': 'chat.completion', 'model': args.served_model_name,
                          'choices': [{'index': 0, 'finish_reason': 'stop',
                                       'message': {'role': 'assistant', 'content': 'double'}}]}
                return self.reply_and_record(200, answer)
            return self.reply_and_record(404, {'detail': 'Not Found'})
    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--served-model-name', default='qwen2.5-7b-instruct')
    parser.add_argument('--enable-sleep-mode', action='store_true')
    parser.add_argument('--sleep-seconds', type=float, default=0.5)
    parser.add_argument('--wake-seconds', type=float, default=2.0)
    parser.add_argument('--health-lag', type=float, default=2.0)
    # vLLM's other arguments (as the role renders them) are accepted and ignored.
    args, dummy = parser.parse_known_args()
    sleep_mode = args.enable_sleep_mode and os.environ.get('VLLM_SERVER_DEV_MODE') == '1'
    ThreadingHTTPServer(('0.0.0.0', args.port), make_handler(args, sleep_mode)).serve_forever()


if __name__ == '__main__':
    main()
