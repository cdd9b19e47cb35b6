"""``POST /token`` as a list of small named steps (RFC 6749 §3.2, §5)."""

from __future__ import annotations

import logging

from aiohttp import web

from services.token.grants import HANDLERS
from services.token.grants.base import TokenRequest
from shared.app_keys import REDIS, SETTINGS
from shared.client_auth import authenticate_client
from shared.clients import Client
from shared.errors import OAuthError, invalid_request
from shared.forms import read_form
from shared.tokens import IssuedTokens
from shared.web import json_response

log = logging.getLogger("tessera.token")


def check_grant_type(client: Client, params: dict[str, str]) -> str:
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise invalid_request("The grant_type parameter is required.")
    if grant_type not in HANDLERS:
        raise OAuthError(
            "unsupported_grant_type",
            "The grant type is not supported by this server.",
            cause=f"grant_type {grant_type!r}",
        )
    if grant_type not in client.grants:
        raise OAuthError(
            "unauthorized_client",
            "The client is not allowed to use this grant type.",
            cause=f"client {client.client_id} not allowed {grant_type}",
        )
    return grant_type


def token_response(issued: IssuedTokens) -> web.Response:
    """RFC 6749 §5.1; json_response adds Cache-Control: no-store and Pragma: no-cache."""
    body: dict[str, object] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": " ".join(issued.scope),
    }
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    return json_response(body)


async def token(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    params = await read_form(request)
    client = await authenticate_client(request, params, redis)
    grant_type = check_grant_type(client, params)
    issued = await HANDLERS[grant_type](TokenRequest(client, params, redis, settings))
    log.info("issued %s tokens to client %s", grant_type, client.client_id)
    return token_response(issued)
