"""``/v1/scopes``: scope definitions (RFC 6749 §3.3) with the resources they cover
(``shared.storage.scopes``). Built-in scopes (OpenID Connect's, ``tessera:admin``) are
listed and shown, never changed or deleted (409)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.admin import bodies, changes, pagination
from shared.storage import management, scopes
from shared.storage.scopes import Scope
from shared.web.app_keys import REDIS
from shared.web.base_app import json_response

RESOURCE = "scope"


def view(scope: Scope) -> dict[str, Any]:
    return {
        "name": scope.name,
        "description": scope.description,
        "resources": list(scope.resources),
        "built_in": scope.built_in,
    }


async def list_scopes(request: web.Request) -> web.Response:
    found = await scopes.page(
        request.app[REDIS], after=pagination.cursor(request), limit=pagination.limit(request)
    )
    return pagination.page([view(scope) for scope in found.items], found.last)


async def create_scope(request: web.Request) -> web.Response:
    fields = bodies.Fields(await bodies.json_object(request), ("name", "description", "resources"))
    name = fields.text("name")
    description = fields.text("description")
    resources = fields.texts("resources")
    if "name" not in fields:
        fields.errors.append({"field": "name", "message": "is required"})
    fields.done()
    scope = await scopes.add(request.app[REDIS], name, description, resources)
    await changes.record(
        request, action="create", resource=RESOURCE, resource_id=name, after=view(scope)
    )
    return json_response(view(scope), status=201, headers={"Location": f"/v1/scopes/{name}"})


async def show_scope(request: web.Request) -> web.Response:
    found = await management.show_scope(request.app[REDIS], request.match_info["name"])
    return json_response({**view(found.scope), "clients": found.client_ids})


async def update_scope(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = await bodies.json_object(request, media_types=(bodies.MERGE_PATCH, bodies.JSON))
    fields = bodies.Fields(body, ("description", "resources"), patch=True)
    description = fields.text("description") if "description" in fields else None
    resources = fields.texts("resources") if "resources" in fields else None
    fields.done()
    before, after = await scopes.update(
        request.app[REDIS], name, description=description, resources=resources
    )
    await changes.record_update(
        request, resource=RESOURCE, resource_id=name, before=view(before), after=view(after)
    )
    return json_response(view(after))


async def delete_scope(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    name = request.match_info["name"]
    before = await management.show_scope(redis, name)
    await management.delete_scope(redis, name)
    await changes.record(
        request, action="delete", resource=RESOURCE, resource_id=name, before=view(before.scope)
    )
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/scopes", list_scopes)
    router.add_post("/v1/scopes", create_scope)
    router.add_get("/v1/scopes/{name}", show_scope)
    router.add_patch("/v1/scopes/{name}", update_scope)
    router.add_delete("/v1/scopes/{name}", delete_scope)
