"""The routes of Settings.routes() at run time: one llm.BackendPool per route (its own
retries, failover order and circuit breakers), chosen by the request's `model`
(qa_api.routing.resolve_model)."""

import asyncio
import logging

from qa_api.llm import InferenceError
from qa_api.routing import resolve_model

log = logging.getLogger("qa_api.router")


class Router:
    def __init__(self, routes, default_model, make_pool):
        """routes: Settings.routes(), the built-in route first (the color's own inference
        server: it alone decides readiness); make_pool(backends) -> llm.BackendPool."""
        self.default_model = default_model
        self.builtin = routes[0].model
        self.pools = {route.model: make_pool(route.backends) for route in routes}
        # GET /v1/models: the default first (clients that take the first model get it)
        self.model_names = tuple([default_model] + [m for m in self.pools if m != default_model])

    def route(self, requested):
        """(model, pool) a request goes to; raises routing.UnknownModel."""
        model = resolve_model(requested, self.model_names, self.default_model)
        return model, self.pools[model]

    @property
    def breakers(self):
        """Every backend's circuit, over all routes."""
        return [b for pool in self.pools.values() for b in pool.breakers]

    @property
    def base_url(self):
        """What the loader's log lines name: backend names (URLs may hold credentials)."""
        return self.pools[self.builtin].base_url

    def status(self):
        """/health's backends, each with the route (model) it serves; no URLs, no keys."""
        return [dict(backend, route=model) for model, pool in self.pools.items()
                for backend in pool.status()]

    async def models(self):
        """Probe every route's backends at once (each pool updates its circuits and the
        `answering` /health shows). Only the built-in route's answer counts, whichever route
        is the default: it decides readiness (a color kept cold stops its server), and an
        external provider's outage never takes the color out of rotation (requests for that
        model fail over or get a 502, the others are served)."""
        names = list(self.pools)
        results = await asyncio.gather(*(self.pools[m].models() for m in names),
                                       return_exceptions=True)
        answer = None
        for model, result in zip(names, results):
            if model == self.builtin:
                answer = result
            elif isinstance(result, BaseException) and not isinstance(result, InferenceError):
                raise result  # a bug, not a backend down
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def close(self):
        for pool in self.pools.values():
            await pool.close()
