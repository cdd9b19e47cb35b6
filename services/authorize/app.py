"""The authorize service application: pages, their security headers, and metadata."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.authorize import authorization_endpoint, connected_apps, consent, login, logout
from services.authorize.backchannel_delivery import deliveries_context
from services.authorize.end_session import END_SESSION_PATH, end_session
from services.authorize.metadata import (
    METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    metadata,
    openid_configuration,
)
from services.authorize.responses import render
from shared.config.settings import Settings
from shared.domain.oauth_errors import OAuthError
from shared.web import webmethods_paths
from shared.web.base_app import create_base_app
from shared.web.browser_origins import browser_origins
from shared.web.client_changes import follow_client_changes
from shared.web.password_checks import password_checks_context

log = logging.getLogger("tessera.authorize")

HERE = Path(__file__).parent

# What browser-based clients call themselves (shared.web.cors): the metadata only. Never the
# pages: a browser is sent to them, and RFC 9700 §2.6 forbids CORS at /authorize.
BROWSER_ROUTES = {METADATA_PATH: "GET", OPENID_CONFIGURATION_PATH: "GET"}

# Pages are never framed (clickjacking of the approval page, RFC 6749 §10.13) and load
# nothing but our own stylesheet and, over https, the configured logo.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' https:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Codes travel in redirect URLs; never leak them in a Referer header.
    "Referrer-Policy": "no-referrer",
}


def _error_page(request: web.Request, exc: OAuthError) -> web.Response:
    # Errors that cannot go back to the client are shown to the person as a page.
    return render(request, "error.html", {"error": exc}, status=exc.status)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


def template_loader(settings: Settings) -> jinja2.BaseLoader:
    """The built-in templates, each replaced by the file of the same name in
    TESSERA_TEMPLATE_DIR when there is one; an override may extend a built-in one."""
    built_in = jinja2.FileSystemLoader(HERE / "templates")
    if not settings.template_dir:
        return built_in
    return jinja2.ChoiceLoader([jinja2.FileSystemLoader(settings.template_dir), built_in])


def create_app(settings: Settings) -> web.Application:
    app = create_base_app(settings, _error_page, browser_routes=BROWSER_ROUTES)
    app.cleanup_ctx.append(follow_client_changes(browser_origins))
    app.cleanup_ctx.append(password_checks_context)  # the login page
    # Logout tokens for the clients of a session that ends (Back-Channel Logout 1.0).
    app.cleanup_ctx.append(deliveries_context)
    aiohttp_jinja2.setup(
        app,
        loader=template_loader(settings),
        # On for every template, an operator's overrides included, whatever their file
        # name: client names and descriptions are the client's words (RFC 6749 §10.14).
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    )
    app.on_response_prepare.append(_security_headers)
    app.router.add_route("GET", "/authorize", authorization_endpoint.authorize)
    app.router.add_route("POST", "/authorize", authorization_endpoint.authorize)
    app.router.add_get("/authorize/resume", authorization_endpoint.resume)
    app.router.add_get("/login", login.login_page)
    app.router.add_post("/login", login.login_submit)
    app.router.add_get("/consent", consent.consent_page)
    app.router.add_post("/consent", consent.consent_submit)
    app.router.add_get(connected_apps.CONNECTED_APPS, connected_apps.connected_apps_page)
    app.router.add_post(connected_apps.CONNECTED_APPS, connected_apps.connected_apps_revoke)
    app.router.add_get("/logout", logout.logout_page)
    app.router.add_post("/logout", logout.logout_submit)
    # RP-Initiated Logout 1.0 §2: GET and POST. A page, so never in BROWSER_ROUTES (CORS).
    app.router.add_get(END_SESSION_PATH, end_session)
    app.router.add_post(END_SESSION_PATH, end_session)
    app.router.add_get(METADATA_PATH, metadata)
    app.router.add_get(OPENID_CONFIGURATION_PATH, openid_configuration)
    add_static_files(app)
    webmethods_paths.add_routes(app)
    return app


def add_static_files(app: web.Application) -> None:
    """A fixed route for each file of ``static/`` (the stylesheet): no path a caller
    makes up reaches the file system, where a name too long for it was a server error
    (and the traceback quoted the name, which might be a credential)."""
    for path in sorted((HERE / "static").iterdir()):

        async def serve(request: web.Request, path: Path = path) -> web.FileResponse:
            return web.FileResponse(path)

        app.router.add_get(f"/static/{path.name}", serve)
