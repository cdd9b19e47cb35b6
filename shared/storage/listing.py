"""Pages of a listing, read through an index set rather than by scanning Redis.

Clients, scopes and people are each listed in a set of their names (``keys.CLIENT_INDEX``
...). A page is the names after the last one of the previous page, in sorted order,
whose records pass the listing's filters: so a page is never short but at the end, and
a record added or removed meanwhile neither repeats nor hides another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from shared.domain import records

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

Item = TypeVar("Item")
Fetch = Callable[[list[str]], Awaitable[list[Item | None]]]


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    items: list[Item]
    # The name of the last record looked at, when more may follow; None at the end.
    last: str | None


async def page(
    names: Iterable[str],
    *,
    after: str | None,
    limit: int,
    fetch: Fetch[Item],
    keep: Callable[[Item], bool] = lambda item: True,
) -> Page[Item]:
    """Up to ``limit`` records (``fetch`` reads them by name, None for one gone) of the
    sorted ``names`` after ``after`` that ``keep`` passes, read ``limit`` at a time."""
    pending = sorted(name for name in set(names) if after is None or name > after)
    found: list[Item] = []
    position = 0
    while position < len(pending) and len(found) < limit:
        batch = pending[position : position + limit - len(found)]
        for record in await fetch(batch):
            if record is not None and keep(record):
                found.append(record)
        position += len(batch)
    more = position < len(pending)
    return Page(found, pending[position - 1] if more else None)


def json_records(redis: RedisClient, cls: type[Item], key: Callable[[str], str]) -> Fetch[Item]:
    """A ``fetch`` for ``page``: the records stored as JSON under ``key(name)``, one GET
    each, pipelined (on a Redis Cluster they lie in many slots)."""

    async def fetch(batch: list[str]) -> list[Item | None]:
        async with redis.pipeline(transaction=False) as pipe:
            for name in batch:
                pipe.get(key(name))
            raws = await pipe.execute()
        return [records.from_json(cls, raw) if raw else None for raw in raws]

    return fetch


def page_of(
    listed: list[Item], key: Callable[[Item], str], *, after: str | None, limit: int
) -> Page[Item]:
    """A page of records already read (a person's approvals, a client's tokens), ordered
    by ``key``, after the record whose key is ``after``."""
    ordered = sorted((item for item in listed if after is None or key(item) > after), key=key)
    items = ordered[:limit]
    return Page(items, key(items[-1]) if len(ordered) > limit else None)
