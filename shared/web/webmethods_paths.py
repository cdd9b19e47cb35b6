"""webMethods Integration Server's paths of the OAuth services, served beside Tessera's own
when ``TESSERA_WEBMETHODS_PATHS`` is on, so that a client written against webMethods
Integration Server moves without a change of URL (README, "Moving from webMethods
Integration Server").

webMethods Integration Server invokes a service at ``/invoke/<folder>/<service>``; its
authorization server is the ``pub.oauth`` folder. Each of its paths here is an alias: the
handlers of Tessera's route registered again under it, so the parameters, the answers
and every check in a handler (rate limits, client authentication) are the same, as is
what a service applies to every path (Require HTTPS, the pages' security headers and
CSP, the bound on requests in flight). What looks at the path itself is told of the
aliases here: the CORS routes (``browser_routes``), and the route a request is counted
and logged under (``canonical_route``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import hdrs, web

from shared.config.settings import Settings
from shared.web.app_keys import SETTINGS
from shared.web.cors import BrowserRoutes

# Alias -> the route it serves. /introspect's alias is served by the introspect service
# like /introspect: for resource servers, inside the cluster (deploy/README.md).
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "/invoke/pub.oauth/authorize": "/authorize",
        "/invoke/pub.oauth/getToken": "/token",
        "/invoke/pub.oauth/introspectToken": "/introspect",
        "/invoke/pub.oauth/revokeToken": "/revoke",
    }
)


def canonical_route(path: str) -> str:
    """The route ``path`` (a route's path template) is counted and logged as: an alias as
    the route it serves, so dashboards and alerts on ``route="/token"`` see every token
    request whichever path it came by, and an alias adds no series of its own. The access
    line's ``path`` still says which path was called, for telling who has yet to move."""
    return ALIASES.get(path, path)


def browser_routes(routes: BrowserRoutes, settings: Settings) -> BrowserRoutes:
    """``routes`` (path -> method or ``BrowserRoute``, ``shared.web.cors``) and, when the
    aliases are on, the alias of each of them with the same methods: a browser app may
    call /token's alias as it may call /token, and answers it the same CORS headers."""
    found = dict(routes)
    if settings.webmethods_paths:
        found |= {alias: routes[path] for alias, path in ALIASES.items() if path in routes}
    return found


def add_routes(app: web.Application) -> None:
    """When the app's settings turn the aliases on, each alias of a route ``app`` serves,
    with that route's handler for each of its methods. Call it once every route is added.
    Preflights (OPTIONS) are not copied: ``browser_routes`` gives the aliases their own."""
    if not app[SETTINGS].webmethods_paths:
        return
    served = [
        (route.resource.canonical, route.method, route.handler)
        for route in app.router.routes()
        if route.resource is not None and route.method != hdrs.METH_OPTIONS
    ]
    for alias, path in ALIASES.items():
        for canonical, method, handler in served:
            if canonical == path:
                app.router.add_route(method, alias, handler)
