"""``/v1/tokens``: the live access and refresh tokens (webMethods Integration Server's
Tokens page), found through the grant families' indexes, never by value (Tessera does not
store one); revoking by token, by client or by person revokes whole grant families
(``shared.storage.management``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from services.admin import bodies, changes, pagination
from services.admin.problems import invalid
from shared.storage import listing, management
from shared.storage.management import TokenInfo
from shared.web.app_keys import REDIS
from shared.web.base_app import json_response

RESOURCE = "token"


def _key(token: TokenInfo) -> str:
    # Issued-at first, so the pages go oldest first; zero-padded to sort as numbers.
    return f"{token.issued_at:012d}:{token.family}:{token.kind}"


async def list_tokens(request: web.Request) -> web.Response:
    found = await management.list_tokens(
        request.app[REDIS],
        client_id=request.query.get("client_id"),
        username=request.query.get("username"),
    )
    page = listing.page_of(
        found, _key, after=pagination.cursor(request), limit=pagination.limit(request)
    )
    items: list[dict[str, Any]] = [dataclasses.asdict(token) for token in page.items]
    return pagination.page(items, page.last)


async def revoke(request: web.Request) -> web.Response:
    """Exactly one of ``token``, ``client_id`` or ``username``."""
    redis = request.app[REDIS]
    names = ("token", "client_id", "username")
    fields = bodies.Fields(await bodies.json_object(request), names)
    given = {name: fields.text(name) for name in names if name in fields}
    fields.done()
    if len(given) != 1:
        raise invalid("Give exactly one of token, client_id or username.")
    ((name, value),) = given.items()
    if name == "token":
        revoked = int(await management.revoke_token(redis, value))
        # The event names no token: only that one was revoked.
        resource_id = "(a token)"
    elif name == "client_id":
        revoked = await management.revoke_client_tokens(redis, value)
        resource_id = f"client:{value}"
    else:
        revoked = await management.revoke_user_tokens(redis, value)
        resource_id = f"user:{value}"
    if revoked:
        await changes.record(
            request,
            action="revoke",
            resource=RESOURCE,
            resource_id=resource_id,
            after={"revoked_grants": revoked},
        )
    return json_response({"revoked_grants": revoked})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/tokens", list_tokens)
    router.add_post("/v1/tokens/revoke", revoke)
