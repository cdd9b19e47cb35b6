"""Access and refresh tokens: issued into a grant family, stored under their digest.

Each token lives at a key in its family's slot: the family's first access token under a
key named by the family, every later one (and every refresh token) under its digest and
listed in the family's member set. So a code replay (RFC 6749 §4.1.2), a refresh token
reuse (RFC 9700 §4.14.2) or a revocation (RFC 7009) finds and removes all of them at
once, and a family of one token costs one key. The family is also listed under its
client and its user, so token management can find it.

Records are stored as compact JSON arrays (see ``_encode``), since Redis holds one per
live token.

An access token is opaque (``<family>.<secret>``) or a JWT (RFC 9068) whose ``jti`` has
that form; either way its record is stored, so introspection and revocation treat both
alike.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import orjson
from tessera_resource_server.jwt_verification import looks_like_jwt

from shared.config.settings import Settings
from shared.domain import records
from shared.domain.errors import server_error
from shared.security import crypto, jwt_access_tokens
from shared.security.signing_keys import KeySet
from shared.storage import families, keys, scripts
from shared.storage.clients import NEVER_EXPIRES, Client

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

log = logging.getLogger("tessera.tokens")

TOKEN_BYTES = 32  # 256 bits of entropy in every access and refresh token


@dataclass(slots=True, frozen=True)
class Grant:
    """What a family's tokens stand for: a client, a subject, and the approved scope."""

    family: str
    client_id: str
    scope: list[str]
    # The approving person; None when the client acts for itself (client credentials).
    username: str | None
    sub: str


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

    @property
    def grant(self) -> Grant:
        return Grant(self.family, self.client_id, self.scope, self.username, self.sub)


@dataclass(slots=True, frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int | None  # None: never expires
    scope: list[str]
    refresh_token: str | None


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


def _new_batch(
    settings: Settings,
    client: Client,
    grant: Grant,
    scope: list[str],
    key_set: KeySet | None,
    refreshes: int | None,
    *,
    first: bool,
) -> _Batch:
    """Mint an access token for ``scope`` and, when ``refreshes`` is not None and the
    client's refresh count allows another refresh, a refresh token for the whole grant,
    which has been refreshed ``refreshes`` times. ``first``: the family's first tokens."""
    now = int(time.time())
    lifetime = client.token_lifetime(settings)
    exp = NEVER_EXPIRES if lifetime == NEVER_EXPIRES else now + lifetime
    stored = families.new_value(grant.family, TOKEN_BYTES)
    as_jwt = client.wants_jwt(settings)
    access_token = (
        _signed(settings, client, grant, scope, key_set, stored, now, exp) if as_jwt else stored
    )
    record = TokenRecord(grant.family, grant.client_id, scope, grant.username, grant.sub, now, exp)
    place = _place(grant.family, stored, jwt=as_jwt)
    if first:
        # Named by the family, so the value says which token it is.
        token_keys = [place.first_key]
        args: list[bytes | int] = [_first_value(place.digest, record), lifetime, 0]
    else:
        token_keys = [place.key]
        args = [_encode(record), lifetime, 1]
    expires_at = float("inf") if exp == NEVER_EXPIRES else exp
    refresh_token = None
    if refreshes is not None and refreshes < client.refresh_count:
        refresh_token = families.new_value(grant.family, TOKEN_BYTES)
        refresh_exp = now + settings.refresh_token_lifetime
        refresh_record = TokenRecord(
            grant.family,
            grant.client_id,
            grant.scope,
            grant.username,
            grant.sub,
            now,
            refresh_exp,
            refreshes,
        )
        token_keys.append(keys.refresh_token(grant.family, crypto.digest(refresh_token)))
        args += [_encode(refresh_record), settings.refresh_token_lifetime, 1]
        expires_at = max(expires_at, refresh_exp)
    issued = IssuedTokens(access_token, lifetime or None, scope, refresh_token)
    return _Batch(grant, token_keys, args, issued, expires_at)


def check_can_sign_for(client: Client, settings: Settings, key_set: KeySet | None) -> None:
    """server_error when the client is to get JWT access tokens and no signing key is
    configured: checked before a code or an interaction is used up, so the operator's
    mistake costs the client nothing."""
    if key_set is None and client.wants_jwt(settings):
        log.error("client %s wants JWT access tokens; set TESSERA_SIGNING_KEYS", client.client_id)
        raise server_error()


def _signed(
    settings: Settings,
    client: Client,
    grant: Grant,
    scope: list[str],
    key_set: KeySet | None,
    jti: str,
    now: int,
    exp: int,
) -> str:
    """A JWT access token (RFC 9068 §2.2) whose ``jti`` names the stored record."""
    if key_set is None:
        raise RuntimeError(
            f"client {client.client_id} is to get JWT access tokens, "
            "but TESSERA_SIGNING_KEYS is not set"
        )
    claims = {
        "iss": settings.issuer,
        "sub": grant.sub,
        "aud": settings.access_token_audience,
        "exp": exp,
        "iat": now,
        "jti": jti,
        "client_id": grant.client_id,
        "scope": " ".join(scope),
    }
    return jwt_access_tokens.sign(key_set, claims)


def _indexes(grant: Grant) -> list[str]:
    indexes = [keys.client_families(grant.client_id)]
    if grant.username is not None:
        indexes.append(keys.user_families(grant.username))
    return indexes


# When this process last dropped the expired families of an index. Dropping them at
# every issuance cost a command each time a busy client was issued a token; once a
# second keeps an index within a second's expiries of its live families.
PRUNE_SECONDS = 1.0
_pruned_at: dict[str, float] = {}
_PRUNED_AT_ENTRIES = 10_000


def _index(pipe: RedisClient, grant: Grant, expires_at: float) -> None:
    """List the family under its client and user, scored by when its last token expires
    (GT: a rotation only ever extends it), dropping the families whose time has passed so
    an index holds no more than the live ones."""
    now = time.time()
    for index in _indexes(grant):
        if now - _pruned_at.get(index, 0.0) >= PRUNE_SECONDS:
            if len(_pruned_at) >= _PRUNED_AT_ENTRIES:
                _pruned_at.clear()
            _pruned_at[index] = now
            pipe.zremrangebyscore(index, "-inf", f"({int(now)}")
        pipe.zadd(index, {grant.family: expires_at}, gt=True)


async def index_grant(redis: RedisClient, grant: Grant, expires_at: float) -> None:
    """List a family under its client and person before anything of it is stored (an
    approval's code), so that revoking by person or client finds it, and its tombstone
    then keeps the code from ever being exchanged."""
    async with redis.pipeline(transaction=False) as pipe:
        _index(pipe, grant, expires_at)
        await pipe.execute()


async def issue(
    redis: RedisClient,
    settings: Settings,
    client: Client,
    grant: Grant,
    *,
    key_set: KeySet | None,
    refreshable: bool,
) -> IssuedTokens | None:
    """Store a new access token (and, when ``refreshable`` and the client's refresh count
    allows, a refresh token) in the grant's family.

    None when the family was revoked meanwhile, for instance by a replayed code.
    """
    refreshes = 0 if refreshable else None
    batch = _new_batch(settings, client, grant, grant.scope, key_set, refreshes, first=True)
    # Indexed first: a family may be listed with nothing left in it, never the reverse.
    stored = await scripts.issue_tokens(
        redis,
        lambda pipe: _index(pipe, grant, batch.expires_at),
        family=grant.family,
        token_keys=batch.keys,
        token_values=batch.args,
    )
    return batch.issued if stored else None


def _encode(record: TokenRecord) -> bytes:
    """``[client_id, scope, iat, lifetime, username, sub, refreshes]``, with the scope
    space-delimited as on the wire, lifetime 0 for never, and the trailing fields left
    out where they say nothing: no username (the client acts for itself), a sub that is
    the client's own, no refreshes. The family is in the key. Redis holds one record per
    live token: about 70 bytes for a client credentials token, where named JSON took 250."""
    lifetime = NEVER_EXPIRES if record.exp == NEVER_EXPIRES else record.exp - record.iat
    fields: list[object] = [
        record.client_id,
        " ".join(record.scope),
        record.iat,
        lifetime,
        record.username,
        None if record.sub == record.client_id else record.sub,
        record.refreshes,
    ]
    while fields[-1] in (None, 0) and len(fields) > 4:
        fields.pop()
    return orjson.dumps(fields)


def _decode(found: list[Any], family: str) -> TokenRecord:
    client_id, scope, iat, lifetime, username, sub, refreshes = [*found, None, None, 0][:7]
    exp = NEVER_EXPIRES if lifetime == NEVER_EXPIRES else iat + lifetime
    # Scope tokens hold no space (RFC 6749 §3.3).
    return TokenRecord(
        family, client_id, scope.split(), username, sub or client_id, iat, exp, refreshes or 0
    )


def _first_value(digest: str, record: TokenRecord) -> bytes:
    """The value at a family's first-token key, which names only the family: the token's
    digest, then its record."""
    return f"{digest} ".encode() + _encode(record)


def _split_first(raw: str) -> tuple[str, str]:
    """(digest, record) of a first-token value."""
    digest, _, record = raw.partition(" ")
    return digest, record


def parse_record(raw: str | None, family: str) -> TokenRecord | None:
    """The live record stored as ``raw`` (None for none, a rotated refresh token, or an
    expired one). Reads records stored before they were compact too."""
    if raw is None or raw.startswith(keys.ROTATED_MARKER):
        return None
    found = orjson.loads(raw)
    record = (
        records.from_dict(TokenRecord, found) if isinstance(found, dict) else _decode(found, family)
    )
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


def _locate(token: str, key_set: KeySet | None, settings: Settings) -> _Place | None:
    """Where the record of an access token is: opaque, or a JWT whose signature, ``typ``,
    issuer and expiry check out (RFC 9068 §4)."""
    if not looks_like_jwt(token):
        family = families.family_of(token)
        return _place(family, token, jwt=False) if family else None
    if key_set is None:
        return None
    claims = jwt_access_tokens.verify(key_set, token, issuer=settings.issuer)
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
    first, listed, revoked = await redis.mget(
        place.first_key, place.key, keys.family_revoked(place.family)
    )
    return None if revoked else _from_values(place, first, listed)


async def find_access_token(
    redis: RedisClient, settings: Settings, token: str, key_set: KeySet | None
) -> TokenRecord | None:
    """The record of a live access token, or None (unknown, expired or revoked)."""
    place = _locate(token, key_set, settings)
    return await _read(redis, place) if place else None


async def find_refresh_token(redis: RedisClient, token: str) -> TokenRecord | Rotated | None:
    """The record of a live refresh token; ``ROTATED`` when it was rotated away (its
    reuse is for ``rotate`` to judge); None when unknown, expired or revoked."""
    family = families.family_of(token)
    if family is None:
        return None
    raw = await redis.get(keys.refresh_token(family, crypto.digest(token)))
    if raw is not None and raw.startswith(keys.ROTATED_MARKER):
        return ROTATED
    return parse_record(raw, family)


async def rotate(
    redis: RedisClient,
    settings: Settings,
    client: Client,
    presented: str,
    record: TokenRecord | None,
    scope: list[str],
    key_set: KeySet | None,
) -> tuple[Rotation, IssuedTokens | None]:
    """Exchange a refresh token for new tokens (RFC 6749 §6), rotating it (RFC 9700
    §4.14.2). ``record`` is None when the token was already rotated away: then only the
    reuse is handled. The new access token carries ``scope``; the new refresh token keeps
    the whole grant, so a narrowed request does not narrow later ones (RFC 6749 §6)."""
    family = families.family_of(presented)
    assert family is not None  # find_refresh_token found it
    batch = None
    if record is not None:
        batch = _new_batch(
            settings, client, record.grant, scope, key_set, record.refreshes + 1, first=False
        )
    new_keys, new_args = (batch.keys, batch.args) if batch else ([], [])

    def index(pipe: RedisClient) -> None:
        if batch is not None:
            _index(pipe, batch.grant, batch.expires_at)

    answer = await scripts.rotate_refresh_token(
        redis,
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


async def find_any(
    redis: RedisClient, settings: Settings, token: str, key_set: KeySet | None
) -> TokenRecord | None:
    """The record of a live access or refresh token (RFC 7009 §2.1 looks for both)."""
    record = await find_access_token(redis, settings, token, key_set)
    if record is None and not looks_like_jwt(token):
        found = await find_refresh_token(redis, token)
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
    found = await redis.mget(
        opaque.first_key,
        opaque.key,
        keys.refresh_token(family, opaque.digest),
        jti.first_key,
        jti.key,
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


async def revoke(redis: RedisClient, record: TokenRecord) -> None:
    """Revoke the grant a token belongs to, and take it out of its client's and user's
    index."""
    await revoke_family(redis, record.family)
    async with redis.pipeline(transaction=False) as pipe:
        for index in _indexes(record.grant):
            pipe.zrem(index, record.family)
        await pipe.execute()


async def revoke_family(redis: RedisClient, family: str) -> bool:
    """Delete every token of the family and keep anything more from being issued into it.
    False when nothing of it was left to delete."""
    deleted = await scripts.revoke_family(
        redis, family=family, tombstone_ttl=families.TOMBSTONE_TTL
    )
    return bool(deleted)
