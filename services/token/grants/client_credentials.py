"""The client credentials grant (RFC 6749 §4.4): the client acts for itself."""

from __future__ import annotations

from services.token.grants.base import TokenRequest
from shared.domain.oauth_errors import OAuthError
from shared.domain.token_records import Grant
from shared.storage import families
from shared.storage.token_minting import IssuedTokens

GRANT_TYPE = "client_credentials"


async def handle(request: TokenRequest) -> IssuedTokens:
    client = request.client
    if client.is_public:
        # RFC 6749 §4.4: confidential clients only. Registration refuses the combination;
        # this holds even if a record says otherwise.
        raise OAuthError(
            "unauthorized_client",
            "The client is not allowed to use this grant type.",
            cause=f"public client {client.client_id} asked for client_credentials",
        )
    # The client is the subject (RFC 9068 §2.2: sub names the client when no resource
    # owner is involved). Each request is a grant family of its own.
    grant = Grant(
        family=families.new_family(),
        client_id=client.client_id,
        scope=request.scope_or_default(),
        username=None,
        sub=client.client_id,
    )
    # RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
    issued = await request.issue(grant, refreshable=False)
    assert issued is not None  # a new family cannot have been revoked
    return issued
