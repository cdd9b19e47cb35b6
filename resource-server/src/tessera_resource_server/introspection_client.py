"""Asking Tessera about a token: the resource server's side of RFC 7662.

``POST`` the token to the introspection endpoint (§2.1) with the resource server's own
client credentials as ``client_secret_basic`` (RFC 6749 §2.3.1: both parts
form-urlencoded, then Base64), and read the JSON answer (§2.2). An answer that the
endpoint could not give (unreachable, a timeout, 5xx, our credentials refused, not JSON)
is TesseraUnavailable, never "inactive": the token may be good, and the log says why.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import orjson

from tessera_resource_server.challenges import TesseraUnavailable


def basic_credentials(client_id: str, client_secret: str) -> str:
    """The Authorization value of client_secret_basic (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def call_tessera(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    authorization: str | None,
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One call to Tessera (authenticated unless ``authorization`` is None) answered by a
    JSON object, else TesseraUnavailable whose cause names the URL and what went wrong
    (never the form, which holds the token)."""
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        async with session.request(method, url, data=form, headers=headers) as response:
            body = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise _unavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    if status in (400, 401, 403) and authorization is not None:
        # Our own credentials or request were refused (RFC 7662 §2.3): a configuration
        # fault of this server (wrong secret, a client without --introspect), not the
        # caller's token.
        raise _unavailable(
            f"{method} {url} refused this resource server ({status}); check its client_id, "
            "client_secret and that the client was registered with --introspect"
        )
    if status != 200:
        raise _unavailable(f"{method} {url} answered {status}")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _unavailable(f"{method} {url} answered 200 without JSON") from None
    if not isinstance(parsed, dict):
        raise _unavailable(f"{method} {url} answered 200 with JSON that is not an object")
    return parsed


async def introspect(
    session: aiohttp.ClientSession, url: str, authorization: str, token: str
) -> dict[str, Any]:
    """The introspection answer for ``token`` (RFC 7662 §2.2), ``active`` a boolean."""
    # token_type_hint (§2.1): resource servers only ever see access tokens.
    answer = await call_tessera(
        session, "POST", url, authorization, {"token": token, "token_type_hint": "access_token"}
    )
    if not isinstance(answer.get("active"), bool):
        raise _unavailable(f"POST {url} answered without a boolean active (RFC 7662 §2.2)")
    return answer


def _unavailable(cause: str) -> TesseraUnavailable:
    # Logged once, by whoever decides what it means (the middleware: a 503).
    return TesseraUnavailable(cause)
