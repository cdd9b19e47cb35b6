"""Scope definitions (RFC 6749 §3.3): a name and the description shown on the approval page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from shared import keys

if TYPE_CHECKING:
    from shared.redis_store import RedisClient

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(slots=True)
class Scope:
    name: str
    description: str = ""


def is_scope_token(name: str) -> bool:
    return _SCOPE_TOKEN.fullmatch(name) is not None


def parse_scope(value: str | None) -> list[str]:
    """Split a space-delimited scope parameter, dropping duplicates, keeping order."""
    if not value:
        return []
    return list(dict.fromkeys(value.split(" ")))


async def add(redis: RedisClient, name: str, description: str) -> Scope:
    if not is_scope_token(name):
        raise ValueError(f"scope name {name!r} is not a valid scope token (RFC 6749 §3.3)")
    scope = Scope(name=name, description=description)
    if not await redis.set(keys.scope(name), orjson.dumps(scope), nx=True):
        raise ValueError(f"scope {name!r} already exists")
    await redis.sadd(keys.SCOPE_INDEX, name)
    return scope


async def get_many(redis: RedisClient, names: list[str]) -> dict[str, Scope]:
    """The defined scopes among ``names`` (undefined ones are simply absent)."""
    if not names:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(keys.scope(name))
        raws = await pipe.execute()
    return {name: Scope(**orjson.loads(raw)) for name, raw in zip(names, raws, strict=True) if raw}


async def list_all(redis: RedisClient) -> list[Scope]:
    names = sorted(await redis.smembers(keys.SCOPE_INDEX))
    found = await get_many(redis, names)
    return [found[name] for name in names if name in found]


async def delete(redis: RedisClient, name: str) -> None:
    """Remove a definition. Callers check first that no client is registered for it."""
    if not await redis.delete(keys.scope(name)):
        raise ValueError(f"no scope {name!r}")
    await redis.srem(keys.SCOPE_INDEX, name)
