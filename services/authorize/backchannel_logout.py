"""Back-Channel Logout 1.0: which clients are told that a person signed out, and the
logout token each gets (§2.4). Posting it is ``backchannel_delivery``'s.

- A code of an OpenID Connect request issued to a client with a ``backchannel_logout_uri``
  records the client in the browser session (``shared.storage.session_clients``, under the
  session's ``sid``, which the client's ID tokens carry).
- Signing out (``/logout``, ``/end_session``) tells each client recorded in the session:
  ``sub`` as that client sees it and the session's ``sid``, so the client ends the sessions
  it started from this one (§2.6).
- Removing a client on the connected applications page revokes the person's every grant of
  it, in whichever browser: the client is told with ``sub`` alone, which §2.4 says means
  every session of that person at the client. Only a client that knows the person's
  ``sub`` (approved ``openid``, or recorded in this session): any other must not learn it.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from services.authorize.backchannel_delivery import BACKCHANNEL_DELIVERIES, LogoutNotice
from shared.domain.openid import BACKCHANNEL_LOGOUT_EVENT, OPENID
from shared.security import crypto, openid_tokens
from shared.storage import clients, consents, session_clients, subjects
from shared.storage.browser_sessions import SignedIn
from shared.storage.clients import Client
from shared.web.app_keys import REDIS, SETTINGS, TESSERA

log = logging.getLogger("tessera.backchannel")

# §2.4 asks for a short lifetime: the client acts on the token at once. Two minutes cover
# the attempts of a delivery (backchannel_delivery.DeliveryPolicy) and some clock skew.
LOGOUT_TOKEN_LIFETIME = 120


def logout_claims(issuer: str, client_id: str, sub: str, sid: str | None) -> dict[str, object]:
    """A logout token's claims (§2.4): never a nonce, so it cannot pass for an ID token."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME,
        "jti": crypto.random_id(),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        "sub": sub,
    }
    if sid is not None:
        claims["sid"] = sid
    return claims


async def record_relying_party(request: web.Request, client: Client, signed_in: SignedIn) -> None:
    """``client`` was issued a code of an OpenID Connect request in this session: tell it
    when the session ends. Only clients that can be told are recorded."""
    if client.backchannel_logout_uri and signed_in.sid:
        lifetime = request.app[SETTINGS].session_lifetime
        await session_clients.add(request.app[REDIS], signed_in.sid, client.client_id, lifetime)


async def tell_session_ended(request: web.Request, signed_in: SignedIn) -> None:
    """The person signed out of ``signed_in``: tell every client recorded in it (§2.7)."""
    if not signed_in.sid:  # a session stored before OpenID Connect: nothing was recorded
        return
    for client_id in await session_clients.take(request.app[REDIS], signed_in.sid):
        await _tell(request, client_id, signed_in.sub, signed_in.sid)


async def openid_approved(request: web.Request, username: str, client_id: str) -> bool:
    """Whether the person approved the ``openid`` scope for the client, which then knows
    their ``sub``. Read before the approval is forgotten (``tell_access_removed``)."""
    approval = await consents.get(request.app[REDIS], username, client_id)
    return approval is not None and OPENID in approval.scope


async def tell_access_removed(
    request: web.Request, signed_in: SignedIn, client_id: str, *, openid_approved: bool
) -> None:
    """The person removed ``client_id``'s access. Told without ``sid`` (§2.4: every
    session of the person there ends), when it knows the person: it was approved the
    ``openid`` scope, or issued an ID token's code in this session."""
    recorded = False
    if signed_in.sid:
        recorded = await session_clients.discard(request.app[REDIS], signed_in.sid, client_id)
    if openid_approved or recorded:
        await _tell(request, client_id, signed_in.sub, None)


async def _tell(request: web.Request, client_id: str, sub: str, sid: str | None) -> None:
    tessera = request.app[TESSERA]
    client = await clients.get(tessera.redis, client_id)
    if client is None or not client.backchannel_logout_uri:
        return  # deleted meanwhile: it has no session left to end
    if tessera.key_set is None:
        log.error("client %s cannot be told of a sign-out: set TESSERA_SIGNING_KEYS", client_id)
        return
    claims = logout_claims(
        tessera.settings.issuer,
        client.client_id,
        await subjects.subject_for(tessera.redis, client, sub),
        None if sid is None else await subjects.session_for(tessera.redis, client, sid),
    )
    token = openid_tokens.sign_logout_token(tessera.key_set, claims)
    request.app[BACKCHANNEL_DELIVERIES].send(
        LogoutNotice(client.client_id, client.backchannel_logout_uri, token)
    )
