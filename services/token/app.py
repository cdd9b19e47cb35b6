"""The token service application."""

from __future__ import annotations

from aiohttp import web

from services.token.endpoint import token
from shared.settings import Settings
from shared.web import create_base_app, json_errors


def create_app(settings: Settings) -> web.Application:
    app = create_base_app(settings, [json_errors])
    app.router.add_post("/token", token)
    return app
