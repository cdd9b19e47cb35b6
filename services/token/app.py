"""The token service application: /token, /revoke, /jwks.json and the admin API."""

from __future__ import annotations

from aiohttp import web

from services.token import admin_api
from services.token.endpoint import token
from services.token.jwks import jwks
from services.token.revocation import revoke
from shared.client_cache import client_cache_context
from shared.password_checks import password_checks_context
from shared.settings import Settings
from shared.web import create_base_app, json_error


def create_app(settings: Settings) -> web.Application:
    admin = [admin_api.require_admin_token] if settings.admin_token else []
    app = create_base_app(settings, json_error, admin)
    app.cleanup_ctx.append(client_cache_context)
    app.cleanup_ctx.append(password_checks_context)  # the password grant
    app.router.add_post("/token", token)
    app.router.add_post("/revoke", revoke)
    app.router.add_get("/jwks.json", jwks)
    if settings.admin_token:
        admin_api.add_routes(app)
    return app
