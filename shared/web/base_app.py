"""What every service has in common: settings and Redis on the app, health, readiness and
metrics, request logs, JSON responses, and the middleware that renders OAuthError (as JSON,
RFC 6749 §5.2, or as the authorize service's page), Redis being away as 503
``temporarily_unavailable``, and anything else as ``server_error``."""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from redis import exceptions as redis_exceptions
from redis.exceptions import RedisError

from shared.config.settings import Settings
from shared.domain.oauth_errors import OAuthError, server_error, temporarily_unavailable
from shared.security import fingerprint
from shared.security.signing_keys import KeySet, load_key_set
from shared.storage import redis_access
from shared.storage.redis_access.errors import is_unavailable
from shared.storage.tessera import Tessera
from shared.web import metrics
from shared.web.app_keys import REDIS, SETTINGS, TESSERA
from shared.web.cors import BrowserRoutes, add_preflight_routes, cors_middleware
from shared.web.forms import well_formed_query
from shared.web.log_fingerprints import fingerprint_key_context
from shared.web.logs import TRACE_ATTRIBUTE, add_to_line, logged_method
from shared.web.metrics import METRICS
from shared.web.recent_refusals import CLIENT_AUTH_REFUSALS, RecentRefusals
from shared.web.request_middleware import InFlight, request_middleware
from shared.web.shutdown import DRAIN, Drain
from shared.web.transport import require_https

if TYPE_CHECKING:
    # aiohttp's own type, a Protocol that a plain Callable alias does not satisfy.
    from aiohttp.typedefs import Middleware

log = logging.getLogger("tessera.web")

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
    # A 401 carries its challenge (RFC 7235 §4.1); a protected resource's 400 and 403 may
    # too (RFC 6750 §3).
    headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else None
    return json_response(exc.body(), status=exc.status, headers=headers)


ErrorRenderer = Callable[[web.Request, OAuthError], web.Response]


def json_error(request: web.Request, exc: OAuthError) -> web.Response:
    """The token and introspection services answer errors as JSON (RFC 6749 §5.2)."""
    return error_response(exc)


# While Redis refuses every request fails alike: one line now and then says so; each
# request's access line names the failure, and tessera_redis_errors counts it.
UNAVAILABLE_LOG_SECONDS = 10.0


def redis_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis cannot serve for now, which a client may retry shortly
    (``shared.storage.redis_access.errors.is_unavailable``), as opposed to a bug."""
    return is_unavailable(exc)


def logged_by_the_redis_client(exc: BaseException) -> bool:
    """A server that cannot be reached: the Redis client logs it once going and once
    coming back (a LOADING reply comes from a server that is reached)."""
    return isinstance(exc, redis_exceptions.ConnectionError) and not isinstance(
        exc, redis_exceptions.BusyLoadingError
    )


@dataclass(slots=True)
class _Every:
    """True at most once every ``seconds``."""

    seconds: float
    last: float = -math.inf

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


def render_error(request: web.Request, render: ErrorRenderer, exc: OAuthError) -> web.Response:
    """Count ``exc`` and answer it with ``render``, with Retry-After when it has one."""
    metrics.oauth_error(request, exc.error)
    response = render(request, exc)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _sent_values(request: web.Request) -> list[str]:
    """What the caller sent: the path's segments, the query, headers, cookies and the
    form fields of the body (aiohttp's copy of it; none if reading it fails again)."""
    sent = [*request.rel_url.raw_path.split("/"), *request.path.split("/")]
    sent += [*request.query.keys(), *request.query.values(), *request.headers.values()]
    sent += request.cookies.values()
    try:
        body = (await request.read()).decode(errors="replace")
    except Exception:  # whatever made the request fail may fail again
        body = ""
    for name, value in parse_qsl(body, keep_blank_values=True):
        sent += (name, value)
    return sent + [unquote(value) for value in sent]


async def log_failure(request: web.Request, exc: Exception) -> None:
    """Log an unexpected exception with its stack trace. Its frames are code; its
    messages may quote what the caller sent, which shows there as its fingerprint."""
    sent = await _sent_values(request)
    trace = "".join(
        chunk if chunk.startswith('  File "') else fingerprint.scrub(chunk, sent)
        for chunk in traceback.format_exception(exc)
    )
    log.error(
        "%s %s failed",
        logged_method(request),
        metrics.route_template(request),
        exc_info=exc,
        extra={TRACE_ATTRIBUTE: trace.rstrip()},
    )


def error_middleware(render: ErrorRenderer) -> Middleware:
    """Render OAuthError with ``render``; Redis being unavailable becomes 503
    temporarily_unavailable without a stack trace; anything else unexpected becomes
    server_error, with the stack trace in the log and never in the response. Lines name
    the route, never the path (which may hold a credential pasted into the URL)."""
    warn_unavailable = _Every(UNAVAILABLE_LOG_SECONDS)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except OAuthError as exc:
            route = metrics.route_template(request)
            method = logged_method(request)
            log.info("%s %s refused: %s (%s)", method, route, exc.error, exc.cause)
            return render_error(request, render, exc)
        except web.HTTPException:
            raise
        except Exception as exc:
            if isinstance(exc, RedisError):
                metrics.redis_error(request, exc)
            if not redis_unavailable(exc):
                await log_failure(request, exc)
                return render_error(request, render, server_error())
            add_to_line(request, redis_error=type(exc).__name__)
            if not logged_by_the_redis_client(exc) and warn_unavailable.due():
                log.warning(
                    "Redis unavailable (%s: %s): answering 503 temporarily_unavailable; "
                    "tessera_redis_errors counts every failure",
                    type(exc).__name__,
                    exc,
                )
            return render_error(request, render, temporarily_unavailable("Redis unavailable"))

    return errors


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers, so this replica can serve; and it is not shutting down
    (Kubernetes then stops routing new requests here while it still serves)."""
    if request.app[DRAIN].draining:
        return json_response({"status": "draining"}, status=503)
    try:
        # Sent here, not through storage (tests/test_layers.py allows it): the question
        # is the connection itself, not any record.
        await request.app[REDIS].ping()
    except (RedisError, OSError) as exc:
        # Probed every few seconds: an outage the Redis client logged is not logged again.
        level = logging.DEBUG if logged_by_the_redis_client(exc) else logging.WARNING
        log.log(level, "not ready: Redis does not answer (%s)", exc)
        metrics.redis_error(request, exc)
        return json_response({"status": "unavailable"}, status=503)
    return json_response({"status": "ready"})


def redis_context(
    key_set: KeySet | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The service's request-path client, alone and in the app's ``Tessera`` with the
    settings and ``key_set``; its outages show in the metrics."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings, metrics = app[SETTINGS], app[METRICS]

        def up(seconds: float) -> None:
            metrics.redis_unavailable.dec()
            metrics.redis_unavailable_seconds.inc(seconds)

        redis = redis_access.connect(
            settings.redis_url,
            timeout=settings.redis_timeout_ms / 1000,
            outages=redis_access.Outages(down=metrics.redis_unavailable.inc, up=up),
        )
        app[REDIS] = redis
        app[TESSERA] = Tessera(settings, redis, key_set)
        yield
        await redis.aclose()

    return context


def create_base_app(
    settings: Settings,
    render: ErrorRenderer,
    extra: Sequence[Middleware] = (),
    browser_routes: BrowserRoutes | None = None,
) -> web.Application:
    """``render`` answers every refusal (JSON, or the authorize service's page), Require
    HTTPS's included, which comes next so that nothing else looks at a plain-http
    request. ``browser_routes`` (path -> method) answer cross-origin requests from the
    allowed browser origins (``shared.web.cors``): the app must then follow client changes
    with ``browser_origins.browser_origins``. A malformed query string is refused before
    any handler reads it (``shared.web.forms``)."""
    app_metrics = metrics.Metrics.create()
    drain = Drain()
    in_flight = InFlight(settings.max_in_flight)
    app_metrics.requests_in_flight.set_function(lambda: in_flight.count)

    def overloaded(request: web.Request) -> web.Response:
        app_metrics.overload_refusals.inc()
        add_to_line(request, refused="overload")
        return render_error(request, render, temporarily_unavailable("too many in flight"))

    # Outermost first: the request middleware sees the final status (what the error
    # middleware rendered) and gives every log line of the request its id; CORS adds its
    # headers to what the error middleware rendered too.
    chain: list[Middleware] = [
        request_middleware(app_metrics, drain, in_flight, overloaded),
        *([cors_middleware(browser_routes)] if browser_routes else []),
        error_middleware(render),
        require_https,
        well_formed_query,
        *extra,
    ]
    app = web.Application(middlewares=chain)
    app[SETTINGS] = settings
    app[METRICS] = app_metrics
    app[DRAIN] = drain
    app[CLIENT_AUTH_REFUSALS] = RecentRefusals()
    # Loaded at start, so a bad key file stops the service with a clear message.
    key_set = (
        load_key_set(settings.signing_keys, settings.signing_key) if settings.signing_keys else None
    )
    app.cleanup_ctx.append(redis_context(key_set))
    app.cleanup_ctx.append(fingerprint_key_context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.metrics_endpoint)
    if browser_routes:
        add_preflight_routes(app.router, browser_routes)
    return app
