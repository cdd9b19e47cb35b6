"""``/v1/approvals``: people's remembered approvals of clients, as their
connected-applications page lists them. Removing one is what removing the application
there does: the approval is forgotten (the next request asks again) and the grants the
client holds for that person are revoked (``management.revoke_user_client``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.admin import changes, pagination
from services.admin.problems import invalid
from shared.domain.domain_errors import NotFound
from shared.storage import consents, listing, management
from shared.web.app_keys import REDIS

RESOURCE = "approval"


def view(approval: management.Approval) -> dict[str, Any]:
    return {
        "username": approval.username,
        "client_id": approval.consent.client_id,
        "scope": approval.consent.scope,
        "granted_at": approval.consent.first_approved,
        "last_used_at": approval.consent.last_used,
    }


def _key(approval: management.Approval) -> str:
    # Usernames hold no control characters (shared.storage.users): NUL parts them.
    return f"{approval.username}\0{approval.consent.client_id}"


async def list_approvals(request: web.Request) -> web.Response:
    username = request.query.get("username")
    client_id = request.query.get("client_id")
    if username is None and client_id is None:
        raise invalid("name a username, a client_id or both", "username")
    found = await management.list_approvals(
        request.app[REDIS], username=username, client_id=client_id
    )
    page = listing.page_of(
        found, _key, after=pagination.cursor(request), limit=pagination.limit(request)
    )
    return pagination.page([view(approval) for approval in page.items], page.last)


async def delete_approval(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    username, client_id = request.match_info["username"], request.match_info["client_id"]
    approval = await consents.get(redis, username, client_id)
    if approval is None:
        raise NotFound(
            "approval", f"{username}/{client_id}", f"{username!r} has not approved {client_id!r}"
        )
    await management.revoke_user_client(redis, username, client_id)
    before = view(management.Approval(username, approval))
    await changes.record(
        request,
        action="delete",
        resource=RESOURCE,
        resource_id=f"{username}/{client_id}",
        before=before,
    )
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/approvals", list_approvals)
    router.add_delete("/v1/approvals/{username}/{client_id}", delete_approval)
