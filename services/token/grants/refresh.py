"""The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2).

Every use returns a new refresh token and retires the one presented; presenting a
retired one again revokes the whole grant family. Of two concurrent uses of one refresh
token exactly one succeeds (one Lua script marks the token and stores the new ones). The
client's refresh count bounds how many times a chain may be refreshed: the last refresh
returns no new refresh token, and the spent one, which RFC 6749 §6 lets the client keep,
is then merely refused if presented again (no newer token exists for a thief to hold).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from services.token.grants.base import TokenRequest
from shared.domain.oauth_errors import invalid_grant, invalid_request, invalid_scope
from shared.domain.token_records import TokenRecord
from shared.storage import families, tokens
from shared.storage.token_minting import IssuedTokens
from shared.storage.tokens import Rotation
from shared.web.logs import security_event

GRANT_TYPE = "refresh_token"

log = logging.getLogger("tessera.token")


async def handle(request: TokenRequest) -> IssuedTokens:
    presented = request.params.get("refresh_token")
    if presented is None:
        raise invalid_request("The refresh_token parameter is required.")
    client = request.client
    found = await tokens.find_refresh_token(request.tessera.redis, presented)
    if found is None:
        raise invalid_grant("unknown, expired or revoked refresh token")
    record = found if isinstance(found, TokenRecord) else None
    scope: list[str] = []
    if record is not None:
        # Checked before the token is used up: a client's mistake costs it nothing.
        if record.client_id != client.client_id:
            # RFC 6749 §6: bound to the client it was issued to.
            raise invalid_grant(f"refresh token of client {record.client_id}")
        if record.refreshes >= client.refresh_count:
            raise invalid_grant(
                f"refresh count {client.refresh_count} of client {client.client_id} reached"
            )
        # RFC 6749 §6: the scope may narrow, never widen; absent, it is the grant's.
        scope = request.scope or record.scope
        if not set(scope) <= set(record.scope):
            raise invalid_scope("refresh asked for scope beyond the original grant")
        if not set(scope) <= set(client.scopes):
            raise invalid_scope("the client is no longer allowed part of the grant's scope")
    outcome, issued = await tokens.rotate(request.tessera, client, presented, record, scope)
    if issued is not None:
        assert record is not None  # only a live token is rotated
        # Core §12.2 with RFC 6749 §6: the ID token of the scope this refresh asked for.
        return await request.with_id_token(issued, replace(record.grant, scope=issued.scope))
    family = families.family_of(presented)
    if outcome is Rotation.REUSED:
        # RFC 9700 §4.14.2: one of the two holders is an attacker; the family is revoked.
        security_event("refresh_token_reused", client_id=client.client_id, family=family)
    elif outcome is Rotation.RACED:
        # Most likely the client's own retry, but an attacker's too: logged as such.
        security_event("refresh_token_raced", client_id=client.client_id, family=family)
    elif outcome is Rotation.EXHAUSTED:
        # Not a reuse: the client kept the token the chain's last refresh did not replace.
        raise invalid_grant(
            f"refresh token exhausted: the chain's last refresh (count {client.refresh_count}) "
            "was made; the client must start a new grant"
        )
    raise invalid_grant(f"refresh token {outcome.value}")
