"""Changing a record stored as JSON without losing a concurrent change: read it, make the
change, and write the result only if the record is still as read (one script,
``scripts.replace_record``); else read it again and make the change anew."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import orjson

from shared.domain import records
from shared.domain.domain_errors import Conflict, NotFound
from shared.storage import scripts

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

Record = TypeVar("Record")

# How often a change is made anew when something else changed the record between the
# read and the write.
CHANGE_ATTEMPTS = 5


async def change(
    redis: RedisClient,
    key: str,
    cls: type[Record],
    changed: Callable[[Record], Awaitable[Record]],
    *,
    kind: str,
    name: str,
    encode: Callable[[Record], bytes] = orjson.dumps,
) -> tuple[Record, Record]:
    """(before, after) of the record at ``key``, after storing ``changed`` of it (given a
    copy of its own to change). NotFound (``kind``, ``name``) when there is none,
    Conflict when it kept changing."""
    for _ in range(CHANGE_ATTEMPTS):
        raw = await redis.get(key)
        if not raw:
            raise NotFound(kind, name)
        before = records.from_json(cls, raw)
        after = await changed(records.from_json(cls, raw))
        if await scripts.replace_record(redis, record=key, expected=raw, replaced=encode(after)):
            return before, after
    raise Conflict(f"{kind} {name!r} kept changing meanwhile; try again")
