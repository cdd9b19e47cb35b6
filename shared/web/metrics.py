"""Prometheus metrics of one service: requests by route and status, their latency, grants
issued, OAuth errors and Redis errors, served at ``GET /metrics`` in the Prometheus text
exposition format.

Each application gets a registry of its own (``Metrics.create``), kept on the app under
``METRICS``. Production runs one application per process, so nothing is lost against the
process-wide default registry; but the tests build many applications in one process, and
with the default registry the second application would fail to register its metrics
(``Duplicated timeseries``), while module-level metrics would mix the counts of every
application. A per-app registry keeps each app's numbers its own.

Label values are bounded, so the number of time series stays bounded whatever clients
send: a route is its path template from the router (never the raw path), an unmatched
path is ``UNMATCHED``, and a method outside the standard set is ``OTHER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from shared.web.webmethods_paths import canonical_route

# The classic text format (version 0.0.4), which every Prometheus server reads; the
# library's newer default names a 1.0.0 format that older scrapers do not know.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

# No ``*_created`` series beside each counter: Prometheus does not need them, and they
# would double the series a scrape carries. (A process-wide switch of the library.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

UNMATCHED = "unmatched"
OTHER_METHOD = "OTHER"
# RFC 9110 §9 methods plus PATCH (RFC 5789); anything else a client invents is OTHER.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# A client that goes away before the answer: nginx's convention, so dashboards agree.
CLIENT_CLOSED_REQUEST = 499


# A request's two series: its count by status, and its duration.
_RequestSeries = tuple[Counter, Histogram]


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    request_duration: Histogram
    requests_in_flight: Gauge
    overload_refusals: Counter
    rate_limit_refusals: Counter
    grants_issued: Counter
    oauth_errors: Counter
    redis_errors: Counter
    redis_unavailable: Gauge
    redis_unavailable_seconds: Counter
    admin_changes: Counter
    # The labelled children of ``requests`` and ``request_duration`` by (method, route,
    # status), looked up once each: ``labels()`` costs more than counting.
    _request_series: dict[tuple[str, str, int], _RequestSeries] = field(default_factory=dict)
    # The children of ``grants_issued`` by grant type, likewise.
    _grant_series: dict[str, Counter] = field(default_factory=dict)

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        # Memory, CPU, open files, GC and the Python version of this process.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        return cls(
            registry=registry,
            requests=Counter(
                "tessera_http_requests",
                "HTTP requests answered, by method, route template and status.",
                ["method", "route", "status"],
                registry=registry,
            ),
            request_duration=Histogram(
                "tessera_http_request_duration_seconds",
                "Time from the request reaching the application to its response.",
                ["method", "route"],
                registry=registry,
            ),
            requests_in_flight=Gauge(
                "tessera_http_requests_in_flight",
                "Requests being served now, probes and scrapes excepted "
                "(TESSERA_MAX_IN_FLIGHT is the most allowed).",
                registry=registry,
            ),
            overload_refusals=Counter(
                "tessera_overload_refusals",
                "Requests answered 503 at once because TESSERA_MAX_IN_FLIGHT were in flight.",
                registry=registry,
            ),
            rate_limit_refusals=Counter(
                "tessera_rate_limit_refusals",
                "Requests answered 429 by a per-client-address rate limit, by limit.",
                ["limit"],
                registry=registry,
            ),
            grants_issued=Counter(
                "tessera_grants_issued",
                "Grants that issued tokens, by grant type.",
                ["grant_type"],
                registry=registry,
            ),
            oauth_errors=Counter(
                "tessera_oauth_errors",
                "OAuth error responses, by error code (RFC 6749 §4.1.2.1, §5.2).",
                ["error"],
                registry=registry,
            ),
            redis_errors=Counter(
                "tessera_redis_errors",
                "Redis failures seen by requests and readiness checks, by exception type.",
                ["error"],
                registry=registry,
            ),
            redis_unavailable=Gauge(
                "tessera_redis_unavailable",
                "Redis servers this process cannot reach now (it answers 503 meanwhile).",
                registry=registry,
            ),
            redis_unavailable_seconds=Counter(
                "tessera_redis_unavailable_seconds",
                "Seconds Redis servers were unreachable from this process, counted when each "
                "comes back.",
                registry=registry,
            ),
            admin_changes=Counter(
                "tessera_admin_changes",
                "Changes made through the admin API, by resource and action (the audit "
                "trail's events).",
                ["resource", "action"],
                registry=registry,
            ),
        )

    def count_grant(self, grant_type: str) -> None:
        series = self._grant_series.get(grant_type)
        if series is None:
            series = self._grant_series[grant_type] = self.grants_issued.labels(grant_type)
        series.inc()

    def count_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count an answered request and its duration. The labels must be bounded
        (``method_label``, ``route_template``)."""
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.request_duration.labels(method, route),
            )
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)


METRICS: web.AppKey[Metrics] = web.AppKey("metrics")


def route_template(request: web.Request) -> str:
    """The matched route's path template (``/authorize``, ``/static``), or ``UNMATCHED``;
    webMethods Integration Server's paths as the route they serve (``canonical_route``)."""
    resource = request.match_info.route.resource
    return canonical_route(resource.canonical) if resource is not None else UNMATCHED


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


def grant_issued(request: web.Request, grant_type: str) -> None:
    """Count a grant that issued tokens. ``grant_type`` must be one the server supports
    (never a raw client parameter), so the label stays bounded."""
    request.app[METRICS].count_grant(grant_type)


def oauth_error(request: web.Request, error: str) -> None:
    """Count an OAuth error answered to a client; ``error`` is the RFC error code."""
    request.app[METRICS].oauth_errors.labels(error).inc()


def admin_change(request: web.Request, resource: str, action: str) -> None:
    """Count a change made through the admin API; ``resource`` and ``action`` are the
    API's own names (never input), so the labels stay bounded."""
    request.app[METRICS].admin_changes.labels(resource, action).inc()


def rate_limited(request: web.Request, limit: str) -> None:
    """Count a refusal by the rate limit named ``limit`` (a fixed name, never input)."""
    request.app[METRICS].rate_limit_refusals.labels(limit).inc()


def redis_error(request: web.Request, exc: BaseException) -> None:
    """Count a failed Redis call, labelled by the exception's type (``ConnectionError``,
    ``TimeoutError``, ``ResponseError``...)."""
    request.app[METRICS].redis_errors.labels(type(exc).__name__).inc()


async def metrics_endpoint(request: web.Request) -> web.Response:
    """``GET /metrics``: this service's metrics for a Prometheus scraper."""
    # Rendering walks a few hundred samples in memory: microseconds, no I/O.
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": TEXT_FORMAT})
