"""Grants and the records of the tokens issued from them, and the compact form a token
record is stored in. No I/O: ``shared.storage.tokens`` decides where a record goes.

A record is stored as a compact JSON array (see ``encode``), since Redis holds one per
live token; records stored before that, as named JSON, are read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shared.domain import records

# An access token lifetime (and a record's ``exp``) of 0 means the token never expires,
# as webMethods Integration Server allows.
NEVER_EXPIRES = 0


@dataclass(slots=True, frozen=True)
class Authentication:
    """How the person of an OpenID Connect grant signed in, for its ID tokens: the time
    (Core §2 auth_time), the session's id (sid), and the profile claims the request's
    ``claims`` parameter placed in the ID token (§5.5), among those approved."""

    auth_time: int
    sid: str
    id_token_claims: tuple[str, ...] = ()

    def encode(self) -> list[object]:
        return [self.auth_time, self.sid, *self.id_token_claims]

    @classmethod
    def decode(cls, found: object) -> Authentication | None:
        if not isinstance(found, list) or len(found) < 2:
            return None
        auth_time, sid, *names = found
        return cls(auth_time, sid, tuple(names))


@dataclass(slots=True, frozen=True)
class Grant:
    """What a grant family's tokens stand for: a client, a subject, and the approved scope."""

    family: str
    client_id: str
    scope: list[str]
    # The approving person; None when the client acts for itself (client credentials).
    username: str | None
    sub: str
    # Set for a grant of an OpenID Connect authentication request (the openid scope).
    authentication: Authentication | None = None


@dataclass(slots=True)
class TokenRecord:
    family: str
    client_id: str
    scope: list[str]
    username: str | None
    sub: str
    iat: int
    exp: int  # NEVER_EXPIRES (0) for an access token that never expires
    # Refresh tokens: how many times the chain has been refreshed so far.
    refreshes: int = 0
    authentication: Authentication | None = None

    @property
    def grant(self) -> Grant:
        return Grant(
            self.family, self.client_id, self.scope, self.username, self.sub, self.authentication
        )


def encode(record: TokenRecord) -> bytes:
    """``[client_id, scope, iat, lifetime, username, sub, refreshes, authentication]``,
    with the scope space-delimited as on the wire, lifetime 0 for never, and the trailing
    fields left out where they say nothing: no username (the client acts for itself), a
    sub that is the client's own, no refreshes, no OpenID Connect sign-in (only refresh
    tokens carry one). The family is in the key. Redis holds one record per live token:
    about 70 bytes for a client credentials token, where named JSON took 250."""
    lifetime = NEVER_EXPIRES if record.exp == NEVER_EXPIRES else record.exp - record.iat
    fields: list[object] = [
        record.client_id,
        " ".join(record.scope),
        record.iat,
        lifetime,
        record.username,
        None if record.sub == record.client_id else record.sub,
        record.refreshes,
        record.authentication.encode() if record.authentication else None,
    ]
    while fields[-1] in (None, 0) and len(fields) > 4:
        fields.pop()
    return orjson.dumps(fields)


def decode(raw: str | bytes, family: str) -> TokenRecord:
    """The record ``encode`` made, of a token of ``family``; or one stored as named JSON
    by an earlier release, its unknown fields ignored (``shared.domain.records``)."""
    found = orjson.loads(raw)
    if isinstance(found, dict):
        return records.from_dict(TokenRecord, found)
    return _from_fields(found, family)


_FIELDS = 8  # encode's, of this release


def _from_fields(found: list[Any], family: str) -> TokenRecord:
    # Fields encode left out take None; a newer release's appended ones are ignored.
    padded = [*found, *[None] * (_FIELDS - len(found))][:_FIELDS]
    client_id, scope, iat, lifetime, username, sub, refreshes, authentication = padded
    exp = NEVER_EXPIRES if lifetime == NEVER_EXPIRES else iat + lifetime
    # Scope tokens hold no space (RFC 6749 §3.3).
    return TokenRecord(
        family,
        client_id,
        scope.split(),
        username,
        sub or client_id,
        iat,
        exp,
        refreshes or 0,
        Authentication.decode(authentication),
    )
