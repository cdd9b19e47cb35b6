"""Client authentication at the token and introspection endpoints (RFC 6749 §2.3).

``client_secret_basic`` (HTTP Basic, RFC 6749 §2.3.1), ``client_secret_post`` (the
credentials in the form), or ``none`` for a public client identified by ``client_id``
alone. A client must use one method only.

A client id that names no client is logged as its fingerprint: it may be the secret, sent
as the id (in the form, or in Basic with the two swapped).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from aiohttp import web

from shared.domain.oauth_errors import OAuthError, invalid_client, invalid_request
from shared.security import fingerprint
from shared.storage.clients import SECRET_METHODS, Client
from shared.web import address_limits
from shared.web.app_keys import SETTINGS
from shared.web.client_address import limit_subject
from shared.web.client_cache import CLIENTS
from shared.web.logs import security_event
from shared.web.recent_refusals import CLIENT_AUTH_REFUSALS

if TYPE_CHECKING:
    from shared.web.client_cache import ClientCache

# What /token and /introspect accept from confidential clients; public clients use "none".
SECRET_AUTH_METHODS = list(SECRET_METHODS)
CLIENT_AUTH_LIMIT = "client-auth"


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        # Not the value: a header without a space would be a secret in the log.
        raise invalid_client("Authorization header is not Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:  # binascii.Error, non-ASCII input, UnicodeDecodeError
        raise invalid_client("malformed Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise invalid_client("malformed Basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(request: web.Request, form: dict[str, str]) -> Client:
    """The authenticated client, or OAuthError ``invalid_client`` (401), logged as a
    security event. An address that failed ``client_auth_failure_rate`` times is refused
    with 429 until the window ends, without a secret compared (README, "Rate limits")."""
    refusals = request.app[CLIENT_AUTH_REFUSALS]
    # Only when this process refused someone lately: clients that authenticate pay nothing.
    if refusals.any_held() and (left := refusals.refused(_subject(request))) is not None:
        raise address_limits.refusal(request, CLIENT_AUTH_LIMIT, left)
    try:
        return await _authenticate(request, form, request.app[CLIENTS])
    except OAuthError as exc:
        if exc.error != "invalid_client":
            raise
        security_event("client_auth_failed", reason=exc.cause)
        rate = request.app[SETTINGS].client_auth_failure_rate
        retry_after = await address_limits.count_address(request, CLIENT_AUTH_LIMIT, rate)
        if retry_after is None:
            raise
        refusals.refuse(_subject(request), retry_after)
        raise address_limits.refusal(request, CLIENT_AUTH_LIMIT, retry_after) from None


def _subject(request: web.Request) -> str:
    return limit_subject(request, request.app[SETTINGS])


async def _authenticate(request: web.Request, form: dict[str, str], cache: ClientCache) -> Client:
    basic = _basic_credentials(request)
    if basic is not None:
        if "client_secret" in form:
            raise invalid_request(
                "Use one client authentication method only.", "both Basic and client_secret"
            )
        client_id, secret = basic
        if form.get("client_id", client_id) != client_id:
            raise invalid_request("client_id does not match the authenticated client.")
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id:
        raise invalid_client("no client identification")
    client = await cache.get(client_id)
    if client is None:
        raise invalid_client(f"unknown client {fingerprint.of(client_id)}")
    if not client.enabled:
        raise invalid_client(f"client {client_id!r} is disabled")
    if client.is_public:
        if secret:
            raise invalid_client(f"public client {client_id!r} presented a secret")
    elif not secret or not client.secret_matches(secret):
        raise invalid_client(f"wrong or missing secret for client {client_id!r}")
    return client
