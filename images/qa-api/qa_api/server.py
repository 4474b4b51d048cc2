"""Run the service under uvicorn (one worker) with graceful SIGTERM draining.

uvicorn alone closes its listening socket on SIGTERM; here the first SIGTERM
(or SIGINT) only marks the service "draining": readiness answers 503 at once,
in-flight requests and streams finish, then uvicorn shuts down. The wait is
bounded by QA_DRAIN_TIMEOUT. A second SIGINT forces the exit.
"""

import logging
import os
import signal
import time

import uvicorn

from qa_api.app import create_app
from qa_api.config import Settings
from qa_api.privacy import install_log_redaction

log = logging.getLogger("qa_api.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config, state, drain_timeout):
        super().__init__(config)
        self.service_state = state
        self.drain_timeout = drain_timeout

    def handle_exit(self, sig, frame):
        state = self.service_state
        if state.draining:
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        state.start_draining()
        log.warning("signal %d: draining %d in-flight request(s) (at most %.0fs)",
                    sig, state.inflight, self.drain_timeout)

    async def on_tick(self, counter):
        state = self.service_state
        if state.draining and not self.should_exit:
            waited = time.monotonic() - state.draining_since
            if state.inflight <= 0:
                log.warning("drained after %.1fs: shutting down", waited)
                self.should_exit = True
            elif waited >= self.drain_timeout:
                log.warning("drain timeout %.0fs with %d request(s) in flight: shutting down",
                            self.drain_timeout, state.inflight)
                self.should_exit = True
        return await super().on_tick(counter)


def main():
    logging.basicConfig(level=os.environ.get("QA_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if settings.pii_redact:  # every line written from here on: no phone, ID, card, e-mail
        install_log_redaction()
    app = create_app(settings)
    config = uvicorn.Config(app, host=os.environ.get("QA_HOST", "0.0.0.0"),
                            port=int(os.environ.get("QA_PORT", "8000")), workers=1,
                            log_config=None, timeout_graceful_shutdown=5,
                            timeout_keep_alive=75, server_header=False)
    server = DrainingServer(config, app.state.service, settings.drain_timeout)
    server.run()


if __name__ == "__main__":
    main()
