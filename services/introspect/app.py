"""The introspection service application (RFC 7662), and the scope definitions resource
servers enforce (``GET /scopes``)."""

from __future__ import annotations

import logging

from aiohttp import web

from shared.config.settings import Settings
from shared.domain.oauth_errors import invalid_client, invalid_request
from shared.domain.token_records import NEVER_EXPIRES
from shared.storage import scopes, tokens
from shared.storage.clients import Client
from shared.web import webmethods_paths
from shared.web.app_keys import REDIS, TESSERA
from shared.web.base_app import create_base_app, json_error, json_response
from shared.web.client_auth import authenticate_client
from shared.web.client_cache import CLIENTS, client_cache
from shared.web.client_changes import follow_client_changes
from shared.web.forms import read_form

log = logging.getLogger("tessera.introspect")

INACTIVE = {"active": False}


async def _resource_server(request: web.Request, params: dict[str, str]) -> Client:
    """The calling resource server: an authenticated client with the introspection
    permission."""
    caller = await authenticate_client(request, params)
    # RFC 7662 §2.1: the endpoint requires authorization; only clients registered with
    # the introspection permission may learn about tokens.
    if not caller.introspect:
        raise invalid_client(f"client {caller.client_id} lacks the introspection permission")
    return caller


async def introspect(request: web.Request) -> web.Response:
    tessera = request.app[TESSERA]
    params = await read_form(request)
    await _resource_server(request, params)
    token = params.get("token")
    if token is None:
        raise invalid_request("The token parameter is required.")
    # token_type_hint (RFC 7662 §2.1) is only a hint; only access tokens are
    # introspected, so it never changes the answer.
    record = await tokens.find_access_token(tessera, token)
    if record is None:
        return json_response(INACTIVE)
    # RFC 7662 §2.2: a token of a disabled or deleted client is not active.
    owner = await request.app[CLIENTS].get(record.client_id)
    if owner is None or not owner.enabled:
        return json_response(INACTIVE)
    body: dict[str, object] = {
        "active": True,
        "scope": " ".join(record.scope),
        "client_id": record.client_id,
        "token_type": "Bearer",
        "iat": record.iat,
        "sub": record.sub,
        "iss": tessera.settings.issuer,
    }
    if record.exp != NEVER_EXPIRES:  # RFC 7662 §2.2: exp is optional; absent, no expiry
        body["exp"] = record.exp
    if record.username is not None:
        body["username"] = record.username
        # webMethods Integration Server's name for the approving user.
        body["owner_id"] = record.username
    return json_response(body)


async def scope_definitions(request: web.Request) -> web.Response:
    """``GET /scopes``: every scope definition with the resources it covers, for resource
    servers that enforce them (``tessera_resource_server``). No RFC defines this, and no
    metadata field names it (RFC 8414 §2 has none), so it is found by convention: beside
    /introspect, for the same callers. Resource servers learn the definitions here
    rather than from Redis, which only Tessera reads."""
    redis = request.app[REDIS]
    # The same callers as /introspect, authenticated with client_secret_basic (a GET has
    # no form for client_secret_post).
    await _resource_server(request, {})
    found = await scopes.list_all(redis)
    return json_response({"scopes": [scope.view() for scope in found]})


def create_app(settings: Settings) -> web.Application:
    app = create_base_app(settings, json_error)
    app.cleanup_ctx.append(follow_client_changes(client_cache))
    app.router.add_post("/introspect", introspect)
    app.router.add_get("/scopes", scope_definitions)
    webmethods_paths.add_routes(app)
    return app
