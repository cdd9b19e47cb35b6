"""Minting: the values, records and JWTs of new tokens for a grant, before they are stored.

An access token is opaque, a family value (``<family>.<secret>``), or a JWT (RFC 9068)
whose ``jti`` is such a value; either way its record is stored (``shared.storage.tokens``),
so introspection and revocation treat both alike. A refresh token is always opaque.

No I/O here. It sits in the storage layer beside the grant families it draws its values
from (``shared.storage.families``) and the client registrations whose lifetimes, token
format and refresh count it follows (``shared.storage.clients``); the signature itself
is the security layer's (``shared.security.jwt_access_tokens.sign``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared.domain.oauth_errors import server_error
from shared.domain.token_records import NEVER_EXPIRES, Grant, TokenRecord
from shared.security import jwt_access_tokens
from shared.storage import families
from shared.storage.clients import Client
from shared.storage.tessera import Tessera

log = logging.getLogger("tessera.tokens")

TOKEN_BYTES = 32  # 256 bits of entropy in every access and refresh token


@dataclass(slots=True, frozen=True)
class IssuedTokens:
    """What the token response carries (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int | None  # None: never expires
    scope: list[str]
    refresh_token: str | None
    # OpenID Connect Core §3.1.3.3: for a grant of an authentication request.
    id_token: str | None = None


@dataclass(slots=True, frozen=True)
class MintedToken:
    value: str  # what the client is given
    record: TokenRecord
    ttl: int  # how long Redis keeps the record: the token's lifetime; NEVER_EXPIRES for ever


@dataclass(slots=True, frozen=True)
class Minted:
    """New tokens for a grant: an access token and perhaps a refresh token."""

    grant: Grant
    access_token: MintedToken
    # What the access token's record is found by: the opaque token itself, or the JWT's jti.
    access_token_id: str
    jwt: bool
    refresh_token: MintedToken | None

    @property
    def issued(self) -> IssuedTokens:
        access = self.access_token
        refresh = self.refresh_token.value if self.refresh_token else None
        return IssuedTokens(access.value, access.ttl or None, access.record.scope, refresh)

    @property
    def expires_at(self) -> float:
        """When the last of them expires, for the family's indexes."""
        exp = self.access_token.record.exp
        expires_at = float("inf") if exp == NEVER_EXPIRES else exp
        if self.refresh_token is not None:
            expires_at = max(expires_at, self.refresh_token.record.exp)
        return expires_at


def mint(
    tessera: Tessera, client: Client, grant: Grant, scope: list[str], *, refreshes: int | None
) -> Minted:
    """An access token for ``scope`` and, when ``refreshes`` is not None and the client's
    refresh count allows another refresh, a refresh token for the whole grant, which has
    been refreshed ``refreshes`` times."""
    settings = tessera.settings
    now = int(time.time())
    lifetime = client.token_lifetime(settings)
    exp = NEVER_EXPIRES if lifetime == NEVER_EXPIRES else now + lifetime
    access_token_id = families.new_value(grant.family, TOKEN_BYTES)
    record = TokenRecord(
        grant.family,
        grant.client_id,
        scope,
        grant.username,
        grant.sub,
        now,
        exp,
    )
    as_jwt = client.wants_jwt(settings)
    value = _signed(tessera, client, record, access_token_id) if as_jwt else access_token_id
    refresh_token = None
    if refreshes is not None and refreshes < client.refresh_count:
        refresh_record = TokenRecord(
            grant.family,
            grant.client_id,
            grant.scope,
            grant.username,
            grant.sub,
            now,
            now + settings.refresh_token_lifetime,
            refreshes,
            # The sign-in, for the ID tokens of later refreshes; access tokens need none.
            grant.authentication,
        )
        refresh_token = MintedToken(
            families.new_value(grant.family, TOKEN_BYTES),
            refresh_record,
            settings.refresh_token_lifetime,
        )
    access_token = MintedToken(value, record, lifetime)
    return Minted(grant, access_token, access_token_id, as_jwt, refresh_token)


def check_can_sign_for(tessera: Tessera, client: Client) -> None:
    """server_error when the client is to get JWT access tokens and no signing key is
    configured: checked before a code or an interaction is used up, so the operator's
    mistake costs the client nothing."""
    if tessera.key_set is None and client.wants_jwt(tessera.settings):
        log.error("client %s wants JWT access tokens; set TESSERA_SIGNING_KEYS", client.client_id)
        raise server_error()


def _signed(tessera: Tessera, client: Client, record: TokenRecord, jti: str) -> str:
    """A JWT access token (RFC 9068 §2.2) whose ``jti`` names the stored record."""
    if tessera.key_set is None:
        raise RuntimeError(
            f"client {client.client_id} is to get JWT access tokens, "
            "but TESSERA_SIGNING_KEYS is not set"
        )
    claims = {
        "iss": tessera.settings.issuer,
        "sub": record.sub,
        "aud": tessera.settings.access_token_audience,
        "exp": record.exp,
        "iat": record.iat,
        "jti": jti,
        "client_id": record.client_id,
        "scope": " ".join(record.scope),
    }
    return jwt_access_tokens.sign(tessera.key_set, claims)
