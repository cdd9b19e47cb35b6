"""Who calls the admin API: a bearer credential (RFC 6750 §2.1) on every request but the
OpenAPI document's.

Either the bootstrap credential, ``TESSERA_ADMIN_TOKEN`` (actor ``bootstrap``), or an
access token Tessera issued that carries the scope ``tessera:admin``
(``shared.domain.tessera_scopes``), opaque or JWT, of a client still registered and
enabled (actor ``client:<id>``, and `` user:<username>`` when a person approved it).
Anything else is 401 with ``WWW-Authenticate``; a valid token without the scope is 403
(RFC 6750 §3.1 ``insufficient_scope``). An ID token is no access token (its ``typ`` is not
``at+jwt``, RFC 9068 §4) and is refused as any other bad credential.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from services.admin.problems import Problem
from shared.domain.tessera_scopes import ADMIN
from shared.security.crypto import digest, same
from shared.storage import clients, tokens
from shared.web.app_keys import SETTINGS, TESSERA
from shared.web.logs import add_to_line, security_event

REALM = 'Bearer realm="tessera-admin"'
# What anyone may read: the description of the API.
PUBLIC_PATHS = frozenset({"/openapi.json"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, as the audit trail names them."""

    name: str


ACTOR: web.RequestKey[Actor] = web.RequestKey("tessera_admin_actor")
BOOTSTRAP = Actor("bootstrap")


def _unauthorized(cause: str) -> Problem:
    return Problem(
        401,
        "The admin API needs a bearer credential: the admin token, or an access token "
        f"with the scope {ADMIN}.",
        headers={"WWW-Authenticate": REALM},
        cause=cause,
    )


def _credential(request: web.Request) -> str | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


async def _actor(request: web.Request, credential: str) -> Actor:
    bootstrap = request.app[SETTINGS].admin_token
    # Digests compared, so the comparison's time does not tell the token's length either.
    if bootstrap and same(digest(credential), digest(bootstrap)):
        return BOOTSTRAP
    tessera = request.app[TESSERA]
    record = await tokens.find_access_token(tessera, credential)
    if record is None:
        raise _unauthorized("not the admin token, nor a live access token")
    # As introspection answers (RFC 7662 §2.2): a token of a disabled or deleted client
    # is not active.
    owner = await clients.get(tessera.redis, record.client_id)
    if owner is None or not owner.enabled:
        raise _unauthorized("an access token of a client deleted or disabled")
    # The scope counts while the client is still allowed it, and only in a token the
    # client holds for itself (client credentials): no person's token is an admin's.
    if ADMIN not in record.scope or ADMIN not in owner.scopes or record.username is not None:
        raise Problem(
            403,
            f"The admin API takes an access token with the scope {ADMIN} that a client "
            "allowed it holds for itself (client credentials).",
            headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{ADMIN}"'},
            cause=f"an access token of client {record.client_id} without {ADMIN} for itself",
        )
    return Actor(f"client:{record.client_id}")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    credential = _credential(request)
    if credential is None:
        raise _unauthorized("no bearer credential")
    try:
        actor = await _actor(request, credential)
    except Problem as refused:
        if refused.status == 401:
            security_event("admin_auth_failed", remote=request.remote)
        raise
    request[ACTOR] = actor
    add_to_line(request, actor=actor.name)
    return await handler(request)
