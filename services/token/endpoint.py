"""``POST /token`` as a list of small named steps (RFC 6749 §3.2, §5).

A grant type or scope name the server does not know is logged as its fingerprint
(``shared.security.fingerprint``): it may be a credential sent in the wrong field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from services.token.grants import HANDLERS, TAKE_SCOPE
from services.token.grants.base import TokenRequest
from shared.domain.oauth_errors import OAuthError, invalid_request, invalid_scope
from shared.security import fingerprint
from shared.storage import scopes, token_minting
from shared.storage.clients import Client
from shared.storage.token_minting import IssuedTokens
from shared.web import logs, metrics
from shared.web.app_keys import TESSERA
from shared.web.base_app import json_response
from shared.web.client_auth import authenticate_client
from shared.web.forms import read_form

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

# Grant types defined elsewhere that Tessera does not support, named in the log as they
# are (RFC 8628, RFC 7523, RFC 7522, RFC 8693, OpenID Connect CIBA).
OTHER_GRANT_TYPES = frozenset(
    {
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:openid:params:grant-type:ciba",
    }
)
# Scope names a refusal's log line names at most (each looked up to tell a defined one).
LOGGED_SCOPES = 3


def check_grant_type(client: Client, params: dict[str, str]) -> str:
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise invalid_request("The grant_type parameter is required.")
    if grant_type not in HANDLERS:
        raise OAuthError(
            "unsupported_grant_type",
            "The grant type is not supported by this server.",
            cause=f"grant_type {fingerprint.shown(grant_type, OTHER_GRANT_TYPES)}",
        )
    if not client.allows_grant(grant_type):
        raise OAuthError(
            "unauthorized_client",
            "The client is not allowed to use this grant type.",
            cause=f"client {client.client_id} not allowed {grant_type}",
        )
    return grant_type


async def check_scope(
    redis: RedisClient, client: Client, grant_type: str, params: dict[str, str]
) -> list[str]:
    """The scope parameter of the grants that take one, each value a well-formed scope
    token (RFC 6749 §3.3) the client is registered for; empty when absent."""
    if grant_type not in TAKE_SCOPE:
        return []
    try:
        requested = scopes.parse_requested(params.get("scope"))
    except ValueError as exc:
        raise invalid_scope(f"{exc}: {fingerprint.of(params.get('scope', ''))}") from None
    outside = [name for name in requested if name not in client.scopes]
    if outside:
        # A few names for the log, in clear when they are defined scopes (a client
        # misconfigured) and as fingerprints when not (anything a caller sent).
        shown = outside[:LOGGED_SCOPES]
        defined = await scopes.get_many(redis, shown)
        named = [fingerprint.shown(name, defined) for name in shown]
        more = f" and {len(outside) - len(shown)} more" if len(outside) > len(shown) else ""
        raise invalid_scope(f"client {client.client_id} is not registered for {named}{more}")
    return requested


def token_response(issued: IssuedTokens) -> web.Response:
    """RFC 6749 §5.1; json_response adds Cache-Control: no-store and Pragma: no-cache."""
    body: dict[str, object] = {"access_token": issued.access_token, "token_type": "Bearer"}
    if issued.expires_in is not None:  # omitted for a token that never expires
        body["expires_in"] = issued.expires_in
    body["scope"] = " ".join(issued.scope)
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    if issued.id_token:
        body["id_token"] = issued.id_token
    return json_response(body)


async def token(request: web.Request) -> web.Response:
    tessera = request.app[TESSERA]
    params = await read_form(request)
    client = await authenticate_client(request, params)
    grant_type = check_grant_type(client, params)
    scope = await check_scope(tessera.redis, client, grant_type, params)
    token_minting.check_can_sign_for(tessera, client)
    issued = await HANDLERS[grant_type](TokenRequest(client, params, tessera, scope, request))
    logs.add_to_line(request, grant_type=grant_type, client_id=client.client_id)
    metrics.grant_issued(request, grant_type)
    return token_response(issued)
