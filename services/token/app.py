"""The token service application: /token, /revoke, /jwks.json and /userinfo. The same
process serves the admin API on a port of its own (``services.token.__main__``)."""

from __future__ import annotations

from aiohttp import web

from services.token import userinfo
from services.token.endpoint import token
from services.token.jwks import jwks
from services.token.revocation import revoke
from shared.config.settings import Settings
from shared.web import webmethods_paths
from shared.web.base_app import create_base_app, json_error
from shared.web.browser_origins import browser_origins
from shared.web.client_cache import client_cache
from shared.web.client_changes import follow_client_changes
from shared.web.cors import BrowserRoute, BrowserRoutes
from shared.web.password_checks import password_checks_context

# What browser-based clients call themselves (shared.web.cors).
# /userinfo takes the access token in the Authorization header (RFC 6750 §2.1).
BROWSER_ROUTES: BrowserRoutes = {
    "/token": "POST",
    "/revoke": "POST",
    "/jwks.json": "GET",
    userinfo.PATH: BrowserRoute("GET, POST", headers="Authorization, Content-Type"),
}


def create_app(settings: Settings) -> web.Application:
    browser_routes = webmethods_paths.browser_routes(BROWSER_ROUTES, settings)
    app = create_base_app(settings, json_error, browser_routes=browser_routes)
    app.cleanup_ctx.append(follow_client_changes(client_cache, browser_origins))
    app.cleanup_ctx.append(password_checks_context)  # the password grant
    app.router.add_post("/token", token)
    app.router.add_post("/revoke", revoke)
    app.router.add_get("/jwks.json", jwks)
    userinfo.add_routes(app)
    webmethods_paths.add_routes(app)
    return app
