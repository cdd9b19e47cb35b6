"""``/v1/users``: the people who sign in (resource owners), their OpenID Connect profile
claims (Core §5.1), whether they may sign in, their password and sign-in limits.

Disabling a person revokes their tokens and refuses their sign-ins as a wrong password
would be; deleting one also forgets their approvals
(``shared.storage.management``). ``locked`` says that a sign-in limit holds the username
now (``shared.web.login_throttle``); ``POST .../unlock`` clears the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from services.admin import bodies, changes, pagination
from services.admin.problems import invalid
from shared.domain.domain_errors import Invalid
from shared.storage import management, users
from shared.storage.users import User
from shared.web import login_throttle
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.base_app import json_response

RESOURCE = "user"

# Users whose sign-in limits a listing checks at once.
LOCK_CHECKS_AT_ONCE = 16


async def view(request: web.Request, user: User) -> dict[str, Any]:
    locked = await login_throttle.locked(request.app[REDIS], request.app[SETTINGS], user.username)
    return {**_record(user), "locked": locked}


def _record(user: User) -> dict[str, Any]:
    """What the audit trail keeps of a person: never the password's hash."""
    return user.public_view()


@contextlib.contextmanager
def _claims_named() -> Iterator[None]:
    """A refused claim (``shared.domain.user_claims``, whose message names it) as the
    field ``claims``."""
    try:
        yield
    except Invalid as exc:
        if exc.field is not None:
            raise
        raise Invalid(exc.message, field="claims") from None


async def list_users(request: web.Request) -> web.Response:
    enabled = request.query.get("enabled")
    if enabled is not None and enabled not in ("true", "false"):
        raise invalid("enabled must be true or false", "enabled")
    found = await users.page(
        request.app[REDIS],
        after=pagination.cursor(request),
        limit=pagination.limit(request),
        enabled=None if enabled is None else enabled == "true",
    )
    # Each view asks Redis a few questions (the sign-in limits): a few at a time, so that
    # a page of 500 never takes more connections than the Redis client holds.
    checks = asyncio.Semaphore(LOCK_CHECKS_AT_ONCE)

    async def bounded_view(user: User) -> dict[str, Any]:
        async with checks:
            return await view(request, user)

    shown = await asyncio.gather(*(bounded_view(user) for user in found.items))
    return pagination.page(shown, found.last)


async def create_user(request: web.Request) -> web.Response:
    fields = bodies.Fields(
        await bodies.json_object(request), ("username", "password", "claims", "enabled")
    )
    username = fields.text("username")
    password = fields.text("password")
    claims = fields.object("claims")
    enabled = fields.boolean("enabled", True)
    for required in ("username", "password"):
        if required not in fields:
            fields.errors.append({"field": required, "message": "is required"})
    fields.done()
    with _claims_named():
        user = await users.add(
            request.app[REDIS],
            username,
            password,
            request.app[SETTINGS].password_hashing,
            claims=claims,
            enabled=enabled,
        )
    await changes.record(
        request, action="create", resource=RESOURCE, resource_id=username, after=_record(user)
    )
    return json_response(
        await view(request, user), status=201, headers={"Location": f"/v1/users/{username}"}
    )


async def show_user(request: web.Request) -> web.Response:
    user = await users.existing(request.app[REDIS], request.match_info["username"])
    return json_response(await view(request, user))


async def update_user(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    username = request.match_info["username"]
    body = await bodies.json_object(request, media_types=(bodies.MERGE_PATCH, bodies.JSON))
    fields = bodies.Fields(body, ("claims", "enabled"), patch=True)
    claims = fields.object("claims")
    enabled = fields.boolean("enabled", True) if "enabled" in fields else None
    fields.done()
    before = after = await users.existing(redis, username)
    if claims:
        with _claims_named():
            after = await users.update_claims(redis, username, claims)
    if enabled is not None and enabled != after.enabled:
        _, after = await management.set_user_enabled(redis, username, enabled)
    await changes.record_update(
        request,
        resource=RESOURCE,
        resource_id=username,
        before=_record(before),
        after=_record(after),
    )
    return json_response(await view(request, after))


async def delete_user(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    user, _ = await management.delete_user(request.app[REDIS], username)
    await changes.record(
        request, action="delete", resource=RESOURCE, resource_id=username, before=_record(user)
    )
    return web.Response(status=204)


async def set_password(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    fields = bodies.Fields(await bodies.json_object(request), ("password",))
    password = fields.text("password")
    if "password" not in fields:
        fields.errors.append({"field": "password", "message": "is required"})
    fields.done()
    await users.set_password(
        request.app[REDIS], username, password, request.app[SETTINGS].password_hashing
    )
    # The event says that it changed, never what to.
    await changes.record(request, action="set_password", resource=RESOURCE, resource_id=username)
    return web.Response(status=204)


async def unlock(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    username = request.match_info["username"]
    await users.existing(redis, username)
    await login_throttle.unlock(redis, username)
    await changes.record(request, action="unlock", resource=RESOURCE, resource_id=username)
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/users", list_users)
    router.add_post("/v1/users", create_user)
    router.add_get("/v1/users/{username}", show_user)
    router.add_patch("/v1/users/{username}", update_user)
    router.add_delete("/v1/users/{username}", delete_user)
    router.add_put("/v1/users/{username}/password", set_password)
    router.add_post("/v1/users/{username}/unlock", unlock)
