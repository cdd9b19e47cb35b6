"""What every service has in common: settings and Redis on the app, health and readiness,
JSON responses, and the middleware that renders OAuthError as JSON (RFC 6749 §5.2)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from shared.app_keys import REDIS, SETTINGS, SIGNING_KEYS
from shared.errors import OAuthError, server_error
from shared.redis_store import redis_context
from shared.settings import Settings
from shared.signing_keys import load_key_set
from shared.transport import require_https

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
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def error_middleware(render: ErrorRenderer) -> Middleware:
    """Render OAuthError with ``render``; anything unexpected becomes server_error, with the
    stack trace in the log and never in the response."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except OAuthError as exc:
            log.info("%s %s refused: %s (%s)", request.method, request.path, exc.error, exc.cause)
            return render(request, exc)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return render(request, server_error())

    return errors


# The token and introspection endpoints answer errors as JSON (RFC 6749 §5.2).
json_errors = error_middleware(lambda request, exc: error_response(exc))


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers, so this replica can serve."""
    try:
        await request.app[REDIS].ping()
    except (RedisError, OSError) as exc:
        log.warning("not ready: Redis does not answer (%s)", exc)
        return json_response({"status": "unavailable"}, status=503)
    return json_response({"status": "ready"})


def create_base_app(
    settings: Settings, errors: Middleware, extra: Sequence[Middleware] = ()
) -> web.Application:
    """``errors`` renders every refusal, including Require HTTPS's, which comes next so
    that nothing else looks at a plain-http request."""
    app = web.Application(middlewares=[errors, require_https, *extra])
    app[SETTINGS] = settings
    # Loaded at start, so a bad key file stops the service with a clear message.
    app[SIGNING_KEYS] = load_key_set(settings.signing_keys) if settings.signing_keys else None
    app.cleanup_ctx.append(redis_context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
