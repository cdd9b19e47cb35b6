"""The audit trail: every administrative change (made through the admin API) as an event
in a capped Redis stream, read back by time.

An event says who (the actor), what (an action on a resource, by its id), when (the
stream entry's id, in milliseconds), and the resource's public form before and after.
It never holds a secret: a secret's digest, a password or its hash is dropped here from
whatever the caller passes (``SECRET_FIELDS``), whatever it passes. The stream holds
about ``TESSERA_AUDIT_MAX_EVENTS`` events (``XADD ... MAXLEN ~``: Redis trims whole
nodes, so a few more), the oldest dropped first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson

from shared.storage import keys

if TYPE_CHECKING:
    # redis-py's clients: administration's (the request-path client has no streams).
    from shared.storage.redis_store import AdminClient

# Never in an event, at any depth.
SECRET_FIELDS = frozenset(
    {
        "secret_hash",
        "previous_secret_hash",
        "client_secret",
        "password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # the stream entry's id: "<milliseconds>-<sequence>"
    actor: str
    action: str
    resource: str
    resource_id: str
    before: Any
    after: Any

    @property
    def time_ms(self) -> int:
        return int(self.id.partition("-")[0])


def without_secrets(value: Any) -> Any:
    """``value`` with every field named in SECRET_FIELDS left out, at any depth."""
    if isinstance(value, dict):
        return {
            name: without_secrets(item) for name, item in value.items() if name not in SECRET_FIELDS
        }
    if isinstance(value, list | tuple):
        return [without_secrets(item) for item in value]
    return value


async def record(
    redis: AdminClient,
    *,
    actor: str,
    action: str,
    resource: str,
    resource_id: str,
    before: Any,
    after: Any,
    max_events: int,
) -> Event:
    """Append an event; returns it as stored."""
    body = {
        "actor": actor,
        "action": action,
        "resource": resource,
        "resource_id": resource_id,
        "before": without_secrets(before),
        "after": without_secrets(after),
    }
    entry_id = await redis.xadd(
        keys.AUDIT, {"event": orjson.dumps(body)}, maxlen=max_events, approximate=True
    )
    return Event(id=str(entry_id), **body)


def _parse(entry_id: str, fields: dict[str, str]) -> Event:
    body = orjson.loads(fields["event"])
    return Event(
        id=entry_id,
        actor=body["actor"],
        action=body["action"],
        resource=body["resource"],
        resource_id=body["resource_id"],
        before=body.get("before"),
        after=body.get("after"),
    )


async def read(
    redis: AdminClient, *, since_ms: int | None, after: str | None, count: int
) -> list[Event]:
    """Up to ``count`` events, oldest first: those after the entry ``after`` (a previous
    page's last id), or from ``since_ms`` (milliseconds since the epoch), or all."""
    if after is not None:
        start = f"({after}"  # exclusive (XRANGE, Redis 6.2)
    elif since_ms is not None:
        start = f"{since_ms}-0"
    else:
        start = "-"
    # Replies are text: every Tessera Redis client decodes them (decode_responses).
    entries = cast(
        "list[tuple[str, dict[str, str]]]",
        await redis.xrange(keys.AUDIT, min=start, max="+", count=count),
    )
    return [_parse(entry_id, fields) for entry_id, fields in entries]


_EVENT_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")


def is_event_id(value: str) -> bool:
    """Whether ``value`` has the form of a stream entry's id, as ``read`` takes one."""
    return _EVENT_ID.fullmatch(value) is not None
