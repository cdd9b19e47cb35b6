"""Issuing ID tokens (OpenID Connect Core §2, §3.1.3.3) for the grants of authentication
requests: at the code's redemption, and again at each refresh (§12.2) with the same
``sub`` and ``auth_time``, without the nonce, which belongs to the authentication request.

The profile claims the ``scope`` asks for are the UserInfo endpoint's (§5.4: an access
token is issued beside); an ID token carries only those the ``claims`` parameter asked
for by name in its ``id_token`` member (§5.5), and among them only those an approved
scope covers (``user_claims.approved_claims``).
"""

from __future__ import annotations

import time

from shared.domain import user_claims
from shared.domain.openid import AMR_PASSWORD, OPENID
from shared.domain.token_records import Grant
from shared.security import openid_tokens
from shared.storage import subjects, users
from shared.storage.clients import Client
from shared.storage.tessera import Tessera


async def id_token_for(
    tessera: Tessera, client: Client, grant: Grant, *, access_token: str, nonce: str | None
) -> str | None:
    """The ID token of ``grant`` issued beside ``access_token``; None for a grant of a
    request without the openid scope."""
    authentication = grant.authentication
    if authentication is None or OPENID not in grant.scope or grant.username is None:
        return None
    key_set, settings = tessera.key_set, tessera.settings
    if key_set is None:
        raise RuntimeError("an OpenID Connect grant without TESSERA_SIGNING_KEYS")
    now = int(time.time())
    claims: dict[str, object] = {}
    # Among those asked for, the ones the grant's scope still covers (a refresh may narrow).
    asked = user_claims.approved_claims(grant.scope, authentication.id_token_claims)
    if asked:
        # Standard profile claims only (user_claims.released): none of them is one of the
        # protocol's below, so none can replace them. A username made anew since is
        # another person (another sub): nothing of theirs goes in.
        user = await users.get(tessera.redis, grant.username)
        if user is not None and user.sub == grant.sub:
            claims.update(user_claims.released(user.claims, user.updated_at, asked))
    claims.update(
        {
            "iss": settings.issuer,
            "sub": await subjects.subject_for(tessera.redis, client, grant.sub),
            "aud": client.client_id,
            "exp": now + settings.id_token_lifetime,
            "iat": now,
            "auth_time": authentication.auth_time,
            # Core §2: azp, the party the token was issued to; here always the audience.
            "azp": client.client_id,
            "amr": AMR_PASSWORD,
            "sid": await subjects.session_for(tessera.redis, client, authentication.sid),
            "at_hash": openid_tokens.token_hash(key_set, access_token),
        }
    )
    if nonce is not None:
        claims["nonce"] = nonce
    return openid_tokens.sign_id_token(key_set, claims)
