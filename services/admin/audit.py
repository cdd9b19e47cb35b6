"""``/v1/audit``: the audit trail of changes made through the admin API
(``services.admin.changes``), oldest first, from ``?since=`` (seconds since the epoch or
an RFC 3339 date-time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.admin import pagination
from services.admin.problems import invalid
from services.admin.store import ADMIN_REDIS
from shared.storage import audit


def view(event: audit.Event) -> dict[str, Any]:
    moment = datetime.fromtimestamp(event.time_ms / 1000, UTC)
    return {
        "id": event.id,
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "actor": event.actor,
        "action": event.action,
        "resource": event.resource,
        "resource_id": event.resource_id,
        "before": event.before,
        "after": event.after,
    }


def since_ms(raw: str | None) -> int | None:
    """``since`` in milliseconds: a number of seconds, or an RFC 3339 date-time."""
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise invalid(
                "since must be seconds since the epoch or an RFC 3339 date-time", "since"
            ) from None
        if moment.tzinfo is None:
            raise invalid("since needs a time zone offset (RFC 3339 §5.6)", "since") from None
        seconds = moment.timestamp()
    if not 0 <= seconds < 1e11:  # NaN fails too
        raise invalid("since is out of range", "since")
    return int(seconds * 1000)


async def list_events(request: web.Request) -> web.Response:
    limit = pagination.limit(request)
    after = pagination.cursor(request)
    if after is not None and not audit.is_event_id(after):
        raise invalid("cursor is not one this API handed out", "cursor")
    events = await audit.read(
        request.app[ADMIN_REDIS],
        since_ms=since_ms(request.query.get("since")),
        after=after,
        count=limit + 1,
    )
    more = len(events) > limit
    events = events[:limit]
    return pagination.page([view(event) for event in events], events[-1].id if more else None)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/audit", list_events)
