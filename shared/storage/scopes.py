"""Scope definitions (RFC 6749 §3.3): a name, the description shown on the approval page,
and optionally the resources the scope covers.

Resources follow webMethods Integration Server, whose scope definitions list the folders
and services (URL templates) a scope grants: here each is an HTTP method and an aiohttp
path template, ``GET /notes/{note_id}``. Tessera itself never enforces them; resource
servers fetch the definitions from the introspection service (``GET /scopes``) and may
enforce them with ``tessera_resource_server``, whose ``scope_resources`` module holds
their grammar: Tessera checks a definition with the same parser that enforces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from tessera_resource_server.scope_resources import parse_resource

from shared.domain import records
from shared.domain.domain_errors import Conflict, Invalid, NotFound
from shared.domain.openid import STANDARD_SCOPES
from shared.domain.tessera_scopes import TESSERA_SCOPES
from shared.storage import keys, listing, record_changes

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(slots=True)
class Scope:
    name: str
    description: str = ""
    # "METHOD /path/template" strings, each valid for parse_resource.
    resources: list[str] = field(default_factory=list)

    @property
    def built_in(self) -> bool:
        return self.name in BUILT_IN

    def view(self) -> dict[str, Any]:
        """The stored and shown form. ``resources`` only when there are some, so a scope
        without them keeps the record older releases read (those before
        ``records.from_json`` refused a record with a field they did not know)."""
        shown: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.resources:
            shown["resources"] = list(self.resources)
        return shown


# OpenID Connect's scopes (``shared.domain.openid``) and Tessera's own
# (``shared.domain.tessera_scopes``), defined by Tessera itself: never stored, never
# added, changed or deleted.
BUILT_IN: dict[str, Scope] = {
    name: Scope(name=name, description=description)
    for name, description in {**STANDARD_SCOPES, **TESSERA_SCOPES}.items()
}


def is_scope_token(name: str) -> bool:
    return _SCOPE_TOKEN.fullmatch(name) is not None


def parse_scope(value: str | None) -> list[str]:
    """Split a space-delimited scope parameter, dropping duplicates, keeping order."""
    if not value:
        return []
    return list(dict.fromkeys(value.split(" ")))


# More scopes than any client is registered for: a request naming more is refused before
# any name is looked up, so that one request cannot cost a command per name it carries.
MAX_REQUESTED = 100


def parse_requested(value: str | None) -> list[str]:
    """A request's scope parameter (RFC 6749 §3.3: scope-tokens, each separated by one
    space) as ``parse_scope`` splits it; empty when absent. Invalid when a token is
    malformed, so that a malformed name is refused before it is looked up anywhere."""
    requested = parse_scope(value)
    if len(requested) > MAX_REQUESTED:
        raise Invalid(f"more than {MAX_REQUESTED} scopes requested")
    if not all(is_scope_token(name) for name in requested):
        # Not the value: a caller may have put anything there (README, "Logs").
        raise Invalid("malformed scope parameter")
    return requested


def _parsed_resources(resources: list[str]) -> list[str]:
    try:
        parsed = [str(parse_resource(value)) for value in resources]
    except ValueError as exc:  # parse_resource is the resource servers' too: plain ValueError
        raise Invalid(str(exc), field="resources") from None
    return list(dict.fromkeys(parsed))


async def add(
    redis: RedisClient, name: str, description: str, resources: list[str] | None = None
) -> Scope:
    if not is_scope_token(name):
        raise Invalid(
            f"scope name {name!r} is not a valid scope token (RFC 6749 §3.3)", field="name"
        )
    parsed = _parsed_resources(resources or [])
    if name in BUILT_IN:
        raise Conflict(f"scope {name!r} is built in")
    scope = Scope(name=name, description=description, resources=parsed)
    if not await redis.set(keys.scope(name), orjson.dumps(scope.view()), nx=True):
        raise Conflict(f"scope {name!r} already exists")
    await redis.sadd(keys.SCOPE_INDEX, name)
    return scope


async def get(redis: RedisClient, name: str) -> Scope | None:
    return (await get_many(redis, [name])).get(name)


async def get_many(redis: RedisClient, names: list[str]) -> dict[str, Scope]:
    """The defined scopes among ``names`` (undefined ones are simply absent); the built-in
    ones cost no command."""
    found = {name: BUILT_IN[name] for name in names if name in BUILT_IN}
    stored = [name for name in names if name not in BUILT_IN]
    if not stored:
        return found
    async with redis.pipeline(transaction=False) as pipe:
        for name in stored:
            pipe.get(keys.scope(name))
        raws = await pipe.execute()
    found.update(
        (name, records.from_json(Scope, raw)) for name, raw in zip(stored, raws, strict=True) if raw
    )
    return {name: found[name] for name in names if name in found}


async def names(redis: RedisClient) -> list[str]:
    """The defined scopes' names, built-in ones included, sorted."""
    return sorted({*BUILT_IN, *await redis.smembers(keys.SCOPE_INDEX)})


async def list_all(redis: RedisClient) -> list[Scope]:
    listed = await names(redis)
    found = await get_many(redis, listed)
    return [found[name] for name in listed if name in found]


async def delete(redis: RedisClient, name: str) -> None:
    """Remove a definition. Callers check first that no client is registered for it."""
    if name in BUILT_IN:
        raise Conflict(f"scope {name!r} is built in and cannot be deleted")
    if not await redis.delete(keys.scope(name)):
        raise NotFound("scope", name)
    await redis.srem(keys.SCOPE_INDEX, name)


async def update(
    redis: RedisClient,
    name: str,
    *,
    description: str | None = None,
    resources: list[str] | None = None,
) -> tuple[Scope, Scope]:
    """Change a definition's description and/or resources; (before, after). Conflict for
    a built-in scope, NotFound for an undefined one."""
    if name in BUILT_IN:
        raise Conflict(f"scope {name!r} is built in and cannot be changed")
    parsed = None if resources is None else _parsed_resources(resources)

    async def changed(before: Scope) -> Scope:
        return Scope(
            name=name,
            description=before.description if description is None else description,
            resources=before.resources if parsed is None else parsed,
        )

    return await record_changes.change(
        redis,
        keys.scope(name),
        Scope,
        changed,
        kind="scope",
        name=name,
        encode=lambda scope: orjson.dumps(scope.view()),
    )


async def page(redis: RedisClient, *, after: str | None, limit: int) -> listing.Page[Scope]:
    """A page of the definitions, built-in ones included, by name."""

    async def fetch(batch: list[str]) -> list[Scope | None]:
        found = await get_many(redis, batch)
        return [found.get(name) for name in batch]

    return await listing.page(await names(redis), after=after, limit=limit, fetch=fetch)
