"""Every change made through the admin API, recorded three ways: an event in the audit
stream (``shared.storage.audit``, listed at ``/v1/audit``), one JSON line on the logger
``tessera.audit``, and the counter ``tessera_admin_changes_total{resource,action}``.
None of them holds a secret: the records are passed in their public form, and the stream
drops secret fields whatever it is passed.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from services.admin.auth import ACTOR
from services.admin.store import ADMIN_REDIS
from shared.storage import audit
from shared.web import metrics
from shared.web.app_keys import SETTINGS
from shared.web.logs import FIELDS_ATTRIBUTE

log = logging.getLogger("tessera.audit")


async def record(
    request: web.Request,
    *,
    action: str,
    resource: str,
    resource_id: str,
    before: Any = None,
    after: Any = None,
) -> None:
    """Record a change made (``action`` and ``resource`` are fixed names of the API)."""
    event = await audit.record(
        request.app[ADMIN_REDIS],
        actor=request[ACTOR].name,
        action=action,
        resource=resource,
        resource_id=resource_id,
        before=before,
        after=after,
        max_events=request.app[SETTINGS].audit_max_events,
    )
    fields = {
        "event_id": event.id,
        "actor": event.actor,
        "action": action,
        "resource": resource,
        "resource_id": resource_id,
        "before": event.before,
        "after": event.after,
    }
    log.info("%s %s %s", action, resource, resource_id, extra={FIELDS_ATTRIBUTE: fields})
    metrics.admin_change(request, resource, action)


async def record_update(
    request: web.Request, *, resource: str, resource_id: str, before: Any, after: Any
) -> None:
    """Record an update, unless it changed nothing that the public form shows."""
    if before != after:
        await record(
            request,
            action="update",
            resource=resource,
            resource_id=resource_id,
            before=before,
            after=after,
        )
