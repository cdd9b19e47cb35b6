"""What a grant handler receives and returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from shared.domain.oauth_errors import invalid_scope
from shared.domain.token_records import Grant
from shared.storage import id_tokens, tokens
from shared.storage.clients import Client
from shared.storage.tessera import Tessera
from shared.storage.token_minting import IssuedTokens


@dataclass(slots=True, frozen=True)
class TokenRequest:
    """A token request whose client is authenticated and allowed the grant type."""

    client: Client
    params: dict[str, str]
    tessera: Tessera
    # The scope parameter, parsed and within the client's scopes; empty when absent.
    scope: list[str]
    # The HTTP request, for what few grants need of it (the password grant: the client's
    # address, the process's password checks).
    http: web.Request

    async def issue(self, grant: Grant, *, refreshable: bool) -> IssuedTokens | None:
        """Tokens for ``grant`` to this request's client; None when its family was revoked
        meanwhile (see tokens.issue)."""
        return await tokens.issue(self.tessera, self.client, grant, refreshable=refreshable)

    async def with_id_token(
        self, issued: IssuedTokens, grant: Grant, *, nonce: str | None = None
    ) -> IssuedTokens:
        """``issued`` with the ID token of an OpenID Connect grant (Core §3.1.3.3, §12.2)."""
        id_token = await id_tokens.id_token_for(
            self.tessera, self.client, grant, access_token=issued.access_token, nonce=nonce
        )
        return issued if id_token is None else dataclasses.replace(issued, id_token=id_token)

    def scope_or_default(self) -> list[str]:
        """RFC 6749 §3.3: without a scope parameter the client's default scopes apply, and
        a client without any is refused."""
        scope = self.scope or self.client.default_scopes
        if not scope:
            raise invalid_scope("no scope requested and the client has no default scope")
        return scope


GrantHandler = Callable[[TokenRequest], Awaitable[IssuedTokens]]
