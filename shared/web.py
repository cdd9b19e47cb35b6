"""What every service has in common: settings and Redis on the app, health, readiness and
metrics, request logs, JSON responses, and the middleware that renders OAuthError as JSON
(RFC 6749 §5.2)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from shared import metrics
from shared.app_keys import DRAIN, METRICS, REDIS, SETTINGS, SIGNING_KEYS
from shared.errors import OAuthError, server_error
from shared.logs import request_log
from shared.redis_store import redis_context
from shared.settings import Settings
from shared.shutdown import Drain, close_connections_while_draining
from shared.signing_keys import load_key_set
from shared.transport import require_https

if TYPE_CHECKING:
    # aiohttp's own type, a Protocol that a plain Callable alias does not satisfy.
    from aiohttp.typedefs import Middleware

log = logging.getLogger("tessera.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# RFC 6749 §5.1: responses carrying tokens or credentials must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    data: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def error_response(exc: OAuthError) -> web.Response:
    headers = {"WWW-Authenticate": exc.challenge} if exc.status == 401 and exc.challenge else None
    return json_response(exc.body(), status=exc.status, headers=headers)


ErrorRenderer = Callable[[web.Request, OAuthError], web.Response]


def error_middleware(render: ErrorRenderer) -> Middleware:
    """Render OAuthError with ``render``; anything unexpected becomes server_error, with the
    stack trace in the log and never in the response."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except OAuthError as exc:
            log.info("%s %s refused: %s (%s)", request.method, request.path, exc.error, exc.cause)
            metrics.oauth_error(request, exc.error)
            return render(request, exc)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            if isinstance(exc, RedisError):
                metrics.redis_error(request, exc)
            failure = server_error()
            metrics.oauth_error(request, failure.error)
            return render(request, failure)

    return errors


# The token and introspection endpoints answer errors as JSON (RFC 6749 §5.2).
json_errors = error_middleware(lambda request, exc: error_response(exc))


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers, so this replica can serve; and it is not shutting down
    (Kubernetes then stops routing new requests here while it still serves)."""
    if request.app[DRAIN].draining:
        return json_response({"status": "draining"}, status=503)
    try:
        await request.app[REDIS].ping()
    except (RedisError, OSError) as exc:
        log.warning("not ready: Redis does not answer (%s)", exc)
        metrics.redis_error(request, exc)
        return json_response({"status": "unavailable"}, status=503)
    return json_response({"status": "ready"})


def create_base_app(
    settings: Settings, errors: Middleware, extra: Sequence[Middleware] = ()
) -> web.Application:
    """``errors`` renders every refusal, including Require HTTPS's, which comes next so
    that nothing else looks at a plain-http request."""
    # Outermost first: the request log sees the final status and gives every log line of
    # the request its id; metrics count what the error middleware rendered.
    chain: list[Middleware] = [
        request_log,
        metrics.request_metrics,
        close_connections_while_draining,
        errors,
        require_https,
        *extra,
    ]
    app = web.Application(middlewares=chain)
    app[SETTINGS] = settings
    app[METRICS] = metrics.Metrics.create()
    app[DRAIN] = Drain()
    # Loaded at start, so a bad key file stops the service with a clear message.
    app[SIGNING_KEYS] = (
        load_key_set(settings.signing_keys, settings.signing_key) if settings.signing_keys else None
    )
    app.cleanup_ctx.append(redis_context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.metrics_endpoint)
    return app
