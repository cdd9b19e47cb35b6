"""Access and refresh tokens in Redis: issued into a grant family, stored under their
digest, found, rotated.

Each token lives at a key in its family's slot: the family's first access token under a
key named by the family, every later one (and every refresh token) under its digest and
listed in the family's member set. So a code replay (RFC 6749 §4.1.2), a refresh token
reuse (RFC 9700 §4.14.2) or a revocation (RFC 7009) finds and removes all of them at
once (``shared.storage.families``), and a family of one token costs one key.

The tokens are minted by ``shared.storage.token_minting``; their records are stored in
the compact form of ``shared.domain.token_records``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

from tessera_resource_server.jwt_verification import looks_like_jwt

from shared.domain import token_records
from shared.domain.token_records import NEVER_EXPIRES, Grant, TokenRecord
from shared.security import crypto, jwt_access_tokens
from shared.storage import families, keys, scripts, token_minting
from shared.storage.clients import Client
from shared.storage.tessera import Tessera
from shared.storage.token_minting import IssuedTokens, Minted

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

# What a GET or an MGET gives: every Tessera Redis client decodes replies to text
# (decode_responses), which redis-py's declared reply types leave open.
_Text = str | None


class Rotated(Enum):
    """A refresh token that has been exchanged already."""

    ROTATED = "rotated"


ROTATED = Rotated.ROTATED


class Rotation(Enum):
    """What became of a refresh token presented at /token (see scripts.rotate_refresh_token)."""

    ROTATED = "rotated"
    RACED = "raced"
    REUSED = "reused"
    # The spent last token of a chain whose refresh count is reached, presented again.
    EXHAUSTED = "exhausted"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class _Batch:
    """New tokens about to be stored: their keys, records and TTLs, and the response."""

    grant: Grant
    keys: list[str]
    args: list[bytes | int]  # (record, ttl, listed) per key, as scripts.issue_tokens takes them
    issued: IssuedTokens
    expires_at: float  # when the last of them expires, for the client and user indexes


def _batch(minted: Minted, *, first: bool) -> _Batch:
    """Where the minted tokens go. ``first``: the family's first tokens, whose access
    token is named by the family, so the value says which token it is."""
    family, access = minted.grant.family, minted.access_token
    place = _place(family, minted.access_token_id, jwt=minted.jwt)
    if first:
        token_keys = [place.first_key]
        args: list[bytes | int] = [_first_value(place.digest, access.record), access.ttl, 0]
    else:
        token_keys = [place.key]
        args = [token_records.encode(access.record), access.ttl, 1]
    refresh = minted.refresh_token
    if refresh is not None:
        token_keys.append(keys.refresh_token(family, crypto.digest(refresh.value)))
        args += [token_records.encode(refresh.record), refresh.ttl, 1]
    return _Batch(minted.grant, token_keys, args, minted.issued, minted.expires_at)


async def issue(
    tessera: Tessera, client: Client, grant: Grant, *, refreshable: bool
) -> IssuedTokens | None:
    """Store a new access token (and, when ``refreshable`` and the client's refresh count
    allows, a refresh token) in the grant's family.

    None when the family was revoked meanwhile, for instance by a replayed code.
    """
    refreshes = 0 if refreshable else None
    minted = token_minting.mint(tessera, client, grant, grant.scope, refreshes=refreshes)
    batch = _batch(minted, first=True)
    # Indexed first: a family may be listed with nothing left in it, never the reverse.
    stored = await scripts.issue_tokens(
        tessera.redis,
        lambda pipe: families.queue_index(pipe, grant, batch.expires_at),
        family=grant.family,
        token_keys=batch.keys,
        token_values=batch.args,
    )
    return batch.issued if stored else None


def _first_value(digest: str, record: TokenRecord) -> bytes:
    """The value at a family's first-token key, which names only the family: the token's
    digest, then its record."""
    return f"{digest} ".encode() + token_records.encode(record)


def _split_first(raw: str) -> tuple[str, str]:
    """(digest, record) of a first-token value."""
    digest, _, record = raw.partition(" ")
    return digest, record


def parse_record(raw: str | None, family: str) -> TokenRecord | None:
    """The live record stored as ``raw`` (None for none, a rotated refresh token, or an
    expired one). Reads records stored before they were compact too."""
    if raw is None or raw.startswith(keys.ROTATED_MARKER):
        return None
    record = token_records.decode(raw, family)
    # Redis expires the key; the check covers clock skew between Redis and us.
    if record.exp != NEVER_EXPIRES and record.exp <= time.time():
        return None
    return record


@dataclass(frozen=True, slots=True)
class _Place:
    """Where an access token's record is: under the family's first-token key, with the
    digest in the value, or under the digest. A JWT's record is found by its ``jti``, in
    a key space of its own, so a ``jti`` (which resource servers may log) presented as if
    it were an opaque token finds nothing."""

    family: str
    digest: str
    first_key: str
    key: str


def _place(family: str, value: str, *, jwt: bool) -> _Place:
    digest = crypto.digest(value)
    if jwt:
        return _Place(
            family,
            digest,
            keys.first_jwt_access_token(family),
            keys.jwt_access_token(family, digest),
        )
    return _Place(
        family, digest, keys.first_access_token(family), keys.access_token(family, digest)
    )


def _jwt_place(jti: object) -> _Place | None:
    if not isinstance(jti, str):
        return None
    family = families.family_of(jti)
    return _place(family, jti, jwt=True) if family else None


def _locate(tessera: Tessera, token: str) -> _Place | None:
    """Where the record of an access token is: opaque, or a JWT whose signature, ``typ``,
    issuer and expiry check out (RFC 9068 §4)."""
    if not looks_like_jwt(token):
        family = families.family_of(token)
        return _place(family, token, jwt=False) if family else None
    if tessera.key_set is None:
        return None
    claims = jwt_access_tokens.verify(tessera.key_set, token, issuer=tessera.settings.issuer)
    return _jwt_place(claims["jti"]) if claims else None


def _from_values(place: _Place, first: str | None, listed: str | None) -> TokenRecord | None:
    if first is not None:
        digest, record = _split_first(first)
        if crypto.same(digest, place.digest):
            return parse_record(record, place.family)
    return parse_record(listed, place.family)


async def _read(redis: RedisClient, place: _Place) -> TokenRecord | None:
    # The keys share the family's slot: one round trip. A revoked family's tokens are
    # gone; its tombstone is read too, so that none a revocation missed can answer (one
    # revoked by an earlier release, which knew no first-token key, in a rolling update).
    found = await redis.mget(place.first_key, place.key, keys.family_revoked(place.family))
    first, listed, revoked = cast("list[_Text]", found)
    return None if revoked else _from_values(place, first, listed)


async def find_access_token(tessera: Tessera, token: str) -> TokenRecord | None:
    """The record of a live access token, or None (unknown, expired or revoked)."""
    place = _locate(tessera, token)
    return await _read(tessera.redis, place) if place else None


async def find_refresh_token(redis: RedisClient, token: str) -> TokenRecord | Rotated | None:
    """The record of a live refresh token; ``ROTATED`` when it was rotated away (its
    reuse is for ``rotate`` to judge); None when unknown, expired or revoked."""
    family = families.family_of(token)
    if family is None:
        return None
    raw = cast("_Text", await redis.get(keys.refresh_token(family, crypto.digest(token))))
    if raw is not None and raw.startswith(keys.ROTATED_MARKER):
        return ROTATED
    return parse_record(raw, family)


async def rotate(
    tessera: Tessera,
    client: Client,
    presented: str,
    record: TokenRecord | None,
    scope: list[str],
) -> tuple[Rotation, IssuedTokens | None]:
    """Exchange a refresh token for new tokens (RFC 6749 §6), rotating it (RFC 9700
    §4.14.2). ``record`` is None when the token was already rotated away: then only the
    reuse is handled. The new access token carries ``scope``; the new refresh token keeps
    the whole grant, so a narrowed request does not narrow later ones (RFC 6749 §6)."""
    family = families.family_of(presented)
    assert family is not None  # find_refresh_token found it
    batch = None
    if record is not None:
        refreshes = record.refreshes + 1
        minted = token_minting.mint(tessera, client, record.grant, scope, refreshes=refreshes)
        batch = _batch(minted, first=False)
    new_keys, new_args = (batch.keys, batch.args) if batch else ([], [])

    def index(pipe: Any) -> None:
        if batch is not None:
            families.queue_index(pipe, batch.grant, batch.expires_at)

    settings = tessera.settings
    answer = await scripts.rotate_refresh_token(
        tessera.redis,
        index,
        refresh_token=keys.refresh_token(family, crypto.digest(presented)),
        family=family,
        token_keys=new_keys,
        client_id=client.client_id,
        grace_ms=settings.refresh_reuse_grace * 1000,
        tombstone_ttl=families.TOMBSTONE_TTL,
        token_values=new_args,
    )
    outcome = Rotation(answer)
    if outcome is Rotation.ROTATED and batch is not None:
        return outcome, batch.issued
    return outcome, None


async def find_any(tessera: Tessera, token: str) -> TokenRecord | None:
    """The record of a live access or refresh token (RFC 7009 §2.1 looks for both)."""
    record = await find_access_token(tessera, token)
    if record is None and not looks_like_jwt(token):
        found = await find_refresh_token(tessera.redis, token)
        record = found if isinstance(found, TokenRecord) else None
    return record


async def find_unverified(redis: RedisClient, token: str) -> TokenRecord | None:
    """For an administrator naming a token to revoke: the record of a live access or
    refresh token, a JWT found by its ``jti`` without checking the signature (a forgery
    can only name a token to revoke, which its holder may do anyway)."""
    if looks_like_jwt(token):
        place = _jwt_place(jwt_access_tokens.unverified_jti(token))
        return await _read(redis, place) if place else None
    family = families.family_of(token)
    if family is None:
        return None
    # An opaque access token, a refresh token, or the jti a resource server logged.
    opaque, jti = _place(family, token, jwt=False), _place(family, token, jwt=True)
    found = cast(
        "list[_Text]",
        await redis.mget(
            opaque.first_key,
            opaque.key,
            keys.refresh_token(family, opaque.digest),
            jti.first_key,
            jti.key,
        ),
    )
    return (
        _from_values(opaque, found[0], found[1])
        or parse_record(found[2], family)
        or _from_values(jti, found[3], found[4])
    )


async def live_tokens(redis: RedisClient, family_ids: list[str]) -> list[tuple[str, TokenRecord]]:
    """Every live token of the families, as (``access_token`` or ``refresh_token``,
    record), for token management."""
    async with redis.pipeline(transaction=False) as pipe:
        for family in family_ids:
            pipe.smembers(keys.family_members(family))
        member_sets = await pipe.execute()
    places = [  # (family, key, whether it is a first-token key)
        place
        for family, members in zip(family_ids, member_sets, strict=True)
        for place in [
            (family, keys.first_access_token(family), True),
            (family, keys.first_jwt_access_token(family), True),
            *((family, key, False) for key in members),
        ]
    ]
    async with redis.pipeline(transaction=False) as pipe:
        for _, key, _ in places:
            pipe.get(key)
        raws = await pipe.execute()
    found = []
    for (family, key, first), raw in zip(places, raws, strict=True):
        record = parse_record(_split_first(raw)[1] if first and raw else raw, family)
        if record is not None:  # not expired, revoked meanwhile, or rotated away
            kind = "refresh_token" if keys.is_refresh_token(key) else "access_token"
            found.append((kind, record))
    return found
