"""Authorization codes (RFC 6749 §4.1.2): created on approval, redeemed once at /token."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

import orjson

from shared.domain import records
from shared.domain.token_records import Authentication, Grant
from shared.security import crypto
from shared.storage import families, keys, scripts
from shared.storage.tessera import Tessera

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

CODE_BYTES = 32  # 256 bits; RFC 6749 §10.10 asks for at least 128


@dataclass(slots=True)
class CodeRecord:
    family: str
    client_id: str
    # The redirect_uri parameter given at /authorize, or None when it was absent.
    redirect_uri: str | None
    username: str
    sub: str
    scope: list[str]
    code_challenge: str | None
    code_challenge_method: str | None
    # An OpenID Connect authentication request's (Core §3.1.2.1): how the person signed
    # in, and the nonce to echo in the ID token (§3.1.3.6). None otherwise.
    authentication: Authentication | None = None
    nonce: str | None = None


class Redemption(Enum):
    FRESH = "fresh"
    REPLAYED = "replayed"


async def create(tessera: Tessera, record: CodeRecord) -> str:
    """Store the record under the code's digest, with the code lifetime as TTL."""
    redis, settings = tessera.redis, tessera.settings
    code = families.new_value(record.family, CODE_BYTES)
    # Indexed before it exists, as tokens are: a person removing the app from their
    # connected applications, or a client's deletion, must reach a code not yet used.
    grant = Grant(record.family, record.client_id, record.scope, record.username, record.sub)
    await families.index(redis, grant, time.time() + settings.code_lifetime)
    key = keys.code(record.family, crypto.digest(code))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, "record", orjson.dumps(record))
        pipe.expire(key, settings.code_lifetime)
        await pipe.execute()
    return code


async def redeem(redis: RedisClient, code: str) -> tuple[Redemption, CodeRecord] | None:
    """Consume a code atomically. A second redemption revokes the whole family.

    None when the code is unknown or expired.
    """
    family = families.family_of(code)
    if family is None:
        return None
    result = await scripts.redeem_code(
        redis,
        code=keys.code(family, crypto.digest(code)),
        family=family,
        tombstone_ttl=families.TOMBSTONE_TTL,
    )
    if not result:
        return None
    status, raw = result
    code_record = records.from_json(CodeRecord, raw)
    found = code_record.authentication
    if isinstance(found, dict):  # orjson stores the nested dataclass as an object
        authentication = records.from_dict(Authentication, found)
        names = tuple(authentication.id_token_claims)  # a JSON array reads as a list
        code_record.authentication = replace(authentication, id_token_claims=names)
    return Redemption(status), code_record
