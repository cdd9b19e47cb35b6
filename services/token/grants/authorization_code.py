"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6)."""

from __future__ import annotations

from services.token.grants.base import TokenRequest
from shared.domain.oauth_errors import invalid_grant, invalid_request
from shared.domain.token_records import Grant
from shared.security import pkce
from shared.storage import codes
from shared.storage.codes import Redemption
from shared.storage.token_minting import IssuedTokens
from shared.web.logs import security_event

GRANT_TYPE = "authorization_code"


async def handle(request: TokenRequest) -> IssuedTokens:
    code = request.params.get("code")
    if not code:
        raise invalid_request("The code parameter is required.")
    # Consumed before any other check: a code is single use even when the attempt fails,
    # so an attacker holding a code gets no second guess at its verifier.
    redeemed = await codes.redeem(request.tessera.redis, code)
    if redeemed is None:
        raise invalid_grant("unknown or expired code")
    status, record = redeemed
    client_id = request.client.client_id
    if status is Redemption.REPLAYED:
        # RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
        security_event("code_replayed", client_id=client_id, family=record.family)
        raise invalid_grant("code replayed; its grant family is revoked")
    if record.client_id != client_id:
        raise invalid_grant(f"code of client {record.client_id} redeemed by {client_id}")
    # RFC 6749 §4.1.3: redirect_uri must be identical to the authorization request's,
    # and absent when it was absent there.
    if request.params.get("redirect_uri") != record.redirect_uri:
        raise invalid_grant("redirect_uri differs from the authorization request")
    verifier = request.params.get("code_verifier")
    if record.code_challenge is not None:
        if verifier is None:
            raise invalid_grant("code_verifier missing for a code with a challenge")
        method = record.code_challenge_method or "plain"
        if not pkce.verify(verifier, record.code_challenge, method):
            raise invalid_grant("code_verifier does not match the challenge")
    elif verifier is not None:
        # RFC 9700 §4.8.2: a verifier without a challenge points at a PKCE downgrade.
        raise invalid_grant("code_verifier sent for a code issued without a challenge")
    grant = Grant(
        record.family, client_id, record.scope, record.username, record.sub, record.authentication
    )
    issued = await request.issue(grant, refreshable=True)
    if issued is None:
        raise invalid_grant("grant family revoked while the code was redeemed")
    return await request.with_id_token(issued, grant, nonce=record.nonce)
