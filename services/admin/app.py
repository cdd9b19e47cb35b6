"""The admin API application (``/v1`` and ``/openapi.json``), served by the token service
process on its own port (``services.token.__main__``), never on the public one.

Middleware, outermost first: the request's log line, metrics and request id
(``shared.web.request_middleware``, counting into the token service's metrics when given
them, so its ``/metrics`` shows the admin requests too), problem details for every
refusal (``problems``), then the credential (``auth``). Require HTTPS does not apply:
the port is reached inside the cluster only, through its NetworkPolicy, as the
services' probes and metrics are.
"""

from __future__ import annotations

from aiohttp import web

from services.admin import approvals, audit, auth, clients, openapi, problems, scopes, tokens, users
from services.admin.store import admin_redis
from shared.config.settings import Settings
from shared.web.app_keys import SETTINGS
from shared.web.forms import well_formed_query
from shared.web.log_fingerprints import fingerprint_key_context
from shared.web.metrics import METRICS, Metrics
from shared.web.request_middleware import InFlight, request_middleware
from shared.web.shutdown import DRAIN, Drain


def _overloaded(request: web.Request) -> web.Response:
    return problems.response(
        problems.Problem(
            503, "Too many requests in flight; try again shortly.", headers={"Retry-After": "1"}
        )
    )


def create_app(settings: Settings, app_metrics: Metrics | None = None) -> web.Application:
    """The admin API; ``app_metrics``, the serving process's metrics (a registry of its
    own when not given)."""
    app_metrics = app_metrics or Metrics.create()
    drain = Drain()
    in_flight = InFlight(settings.max_in_flight)
    app = web.Application(
        middlewares=[
            request_middleware(app_metrics, drain, in_flight, _overloaded),
            problems.problem_details,
            # A query string that cannot be read is refused before any handler reads it.
            well_formed_query,
            auth.authenticate,
        ]
    )
    app[SETTINGS] = settings
    app[METRICS] = app_metrics
    app[DRAIN] = drain
    app.cleanup_ctx.append(admin_redis)
    app.cleanup_ctx.append(fingerprint_key_context)
    openapi.add_routes(app)
    for resource in (clients, scopes, users, approvals, tokens, audit):
        resource.add_routes(app.router)
    return app
