"""Cross-origin requests (the Fetch standard's CORS protocol) from browser-based clients.

RFC 9700 §2.6 (and OAuth 2.0 for Browser-Based Applications): the endpoints a browser
app calls itself may support CORS, the token endpoint, metadata and ``jwks_uri``; the
authorization endpoint must not, a browser is sent there. So a service names the routes
it opens, each with the one method browsers use there (``/token``, ``/revoke``,
``/jwks.json``, ``/.well-known/oauth-authorization-server`` and
``/.well-known/openid-configuration``), or the two of the UserInfo endpoint
(``/userinfo``, OpenID Connect Core §5.3: GET and POST); nothing else ever answers
a cross-origin request: not /introspect, not the admin API, not the pages.

On those routes a request whose ``Origin`` is one of a public client's registered
redirect URIs (``shared.web.browser_origins``) gets ``Access-Control-Allow-Origin`` with that
origin, never ``*`` and never an origin merely echoed, and its preflight (an OPTIONS
route of each) is answered. No ``Access-Control-Allow-Credentials``: tokens travel in
bodies, never in cookies, so a browser sends these requests without credentials. Request
headers: ``Content-Type`` alone, since a public client names itself with ``client_id``
in the form (RFC 6749 §2.3.1's Basic scheme carries a secret it does not have), but
``/userinfo``'s ``Authorization`` too, which carries the access token (RFC 6750 §2.1),
a header the page sets itself and no credential the browser adds (Fetch's credentials
mode stays "omit" or "same-origin"); nothing is exposed beyond the safelisted response
headers. A request without ``Origin`` (every server-to-server call) costs one header
lookup and no frame of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from shared.web.browser_origins import BROWSER_ORIGINS
from shared.web.logs import add_to_line

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

ALLOWED_HEADERS = "Content-Type"
# How long a browser may reuse a preflight's answer. A client deleted meanwhile is still
# refused: the actual request's answer then carries no Access-Control-Allow-Origin.
PREFLIGHT_MAX_AGE = "600"
REFUSED = "origin not allowed"


@dataclass(frozen=True, slots=True)
class BrowserRoute:
    """A route browsers call with more than one method, or with request headers beyond
    ``Content-Type`` (the UserInfo endpoint's ``Authorization``, RFC 6750 §2.1); a route
    given as a method alone allows that method and ``Content-Type``."""

    methods: str
    headers: str = ALLOWED_HEADERS


# Path -> the method browsers use there, or a BrowserRoute.
BrowserRoutes = Mapping[str, str | BrowserRoute]


def vary_on_origin(headers: Mapping[str, str]) -> dict[str, str]:
    """``Vary: Origin`` for a cacheable answer of a CORS route, on every answer, with or
    without ``Origin``: a cache must not give one origin's answer (or the answer to a
    request without Origin) to another (Fetch standard, "CORS protocol and HTTP caches")."""
    return {**headers, hdrs.VARY: hdrs.ORIGIN}


def _allows(request: web.Request, origin: str) -> bool:
    if request.app[BROWSER_ORIGINS].allows(origin):
        return True
    # Why, on the request's log line; not the origin itself: a caller's text, anything.
    add_to_line(request, cors=REFUSED)
    return False


def _add_vary(response: web.StreamResponse) -> None:
    vary = response.headers.get(hdrs.VARY)
    if vary is None:
        response.headers[hdrs.VARY] = hdrs.ORIGIN
    elif hdrs.ORIGIN.lower() not in vary.lower():
        response.headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}"


def cors_middleware(routes: BrowserRoutes) -> Middleware:
    """``Access-Control-Allow-Origin`` on the answers of ``routes`` (path -> the method
    browsers use) to allowed origins. Placed outside the error middleware, so error
    answers carry it too and a browser app can read why it was refused."""

    async def answer(request: web.Request, handler: Handler, origin: str) -> web.StreamResponse:
        allowed = _allows(request, origin)
        response = await handler(request)
        if allowed:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        _add_vary(response)
        return response

    # Not a coroutine function: a request without Origin (every server-to-server call)
    # is handed on as it is, without a frame of its own to await.
    @web.middleware
    def cors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or request.path not in routes or request.method == hdrs.METH_OPTIONS:
            return handler(request)
        return answer(request, handler, origin)

    return cors


def add_preflight_routes(router: web.UrlDispatcher, routes: BrowserRoutes) -> None:
    """An OPTIONS route for each of ``routes``, answering the browser's preflight."""
    for path, route in routes.items():
        allowed = route if isinstance(route, BrowserRoute) else BrowserRoute(route)
        router.add_route(hdrs.METH_OPTIONS, path, _preflight(allowed.methods, allowed.headers))


def _preflight(method: str, allowed_headers: str) -> Handler:
    async def preflight(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers:
            # A plain OPTIONS request: what the resource allows (RFC 9110 §9.3.7).
            return web.Response(status=204, headers={hdrs.ALLOW: f"{method}, OPTIONS"})
        if not _allows(request, origin):
            # Without the headers the browser refuses the actual request; 403 says so.
            return web.Response(status=403, headers={hdrs.VARY: hdrs.ORIGIN})
        # The browser checks the method and headers it wants against these itself.
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: method,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: allowed_headers,
                hdrs.ACCESS_CONTROL_MAX_AGE: PREFLIGHT_MAX_AGE,
                hdrs.VARY: hdrs.ORIGIN,
            },
        )

    return preflight
