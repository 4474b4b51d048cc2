"""A stand-in OpenAI inference server (stdlib, in a thread) whose answers a test holds
back until it releases them: what concurrency limits need, without a model.

``mode`` injects a fault into chat requests (GET /models always answers): "ok", "500",
"400" (a refused parameter), "close" (the connection closed before any answer), "hang"
(no answer at all), "hang_stream" (stream headers, then nothing), "midstream" (one token
of a stream, then the connection drops). ``content`` is what "ok" answers."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self, mode="ok", content="ok", port=0):
        self.mode, self.content = mode, content
        self.release = threading.Event()
        self.calls = 0  # chat requests received
        self.seen = []  # (model, Authorization header) of each chat request
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.base_url = "http://127.0.0.1:%d/v1" % self.server.server_address[1]

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def reset(self):
        """Hold answers again and count calls from zero (between tests of one module)."""
        self.release.clear()
        with self._lock:
            self.calls = 0
            self.seen = []

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_calls(self, count, timeout=30.0):
        deadline = time.monotonic() + timeout
        while self.calls < count:
            assert time.monotonic() < deadline, "inference got %d calls, not %d" % (self.calls, count)
            time.sleep(0.02)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._json({"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.calls += 1
                    fake.seen.append((request.get("model"), self.headers.get("Authorization")))
                fake.release.wait(60)
                mode = fake.mode
                if mode == "500":
                    self._status(500, {"error": {"message": "model crashed"}})
                    return
                if mode == "400":
                    self._status(400, {"error": {"message": "temperature: invalid value"}})
                    return
                if mode == "close":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == "hang":
                    time.sleep(30)
                    return
                if request.get("stream") and mode in ("hang_stream", "midstream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    if mode == "midstream":
                        event = {"choices": [{"delta": {"content": "partial"}, "finish_reason": None}]}
                        self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                        self.wfile.flush()
                        time.sleep(0.2)
                        self.connection.shutdown(socket.SHUT_RDWR)
                    else:
                        time.sleep(30)
                    self.close_connection = True
                    return
                if not request.get("stream"):
                    self._json({"choices": [{"message": {"role": "assistant", "content": fake.content},
                                             "finish_reason": "stop"}], "usage": None})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for piece in (fake.content[:1], fake.content[1:]):
                    event = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        return Handler
