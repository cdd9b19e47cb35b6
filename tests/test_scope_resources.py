"""Scope definitions that list the resources they cover ("METHOD /path/{var}", as
webMethods Integration Server's scopes list folders and services): defined with
``tessera scope add --resource``, shown by ``scope show``, and served to resource servers
at the introspection service's ``GET /scopes`` with the same client authentication and
permission as /introspect."""

from __future__ import annotations

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.storage import scopes
from tests.assertions import assert_invalid_client, assert_no_store
from tests.command_line import assert_refused, tessera
from tests.flows import admin_json
from tests.records import make_client, make_resource_server, make_scope, unique
from tests.replies import Reply, basic_auth, basic_auth_for
from tests.stack import Stack


async def get_scopes(
    http: aiohttp.ClientSession, stack: Stack, headers: dict[str, str] | None
) -> Reply:
    async with http.get(f"{stack.introspect}/scopes", headers=headers) as r:
        return Reply(r.status, r.headers, await r.json(content_type=None))


async def test_scope_add_with_resources_and_show(stack: Stack, http: aiohttp.ClientSession) -> None:
    name = unique("notes:read")

    run = await tessera(
        stack,
        "scope", "add", name, "--description", "Read your notes",
        "--resource", "GET /notes",
        "--resource", "get /notes/{note_id}",
        "--resource", "GET /notes",
    )  # fmt: skip

    assert run.status == 0, run.stderr
    # Methods upper-cased, duplicates dropped, order kept.
    record = {
        "name": name,
        "description": "Read your notes",
        "resources": ["GET /notes", "GET /notes/{note_id}"],
    }
    status, admin_view = await admin_json(http, "GET", f"{stack.admin}/v1/scopes/{name}")
    assert (status, admin_view) == (200, {**record, "built_in": False, "clients": []})
    shown = (await tessera(stack, "scope", "show", name)).stdout.splitlines()
    at = shown.index("resources    GET /notes")
    assert shown[at + 1] == "             GET /notes/{note_id}"
    as_json = (await tessera(stack, "scope", "show", name, "-o", "json")).json()
    assert as_json["resources"] == ["GET /notes", "GET /notes/{note_id}"]
    listed = (await tessera(stack, "scope", "list", "-o", "json")).json()
    assert {**record, "built_in": False} in listed


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("/notes", "is not 'METHOD /path/template'"),
        ("FETCH /notes", "is not 'METHOD /path/template'"),
        ("HEAD /notes", "is not 'METHOD /path/template'"),
        ("GET notes", "the path must start with /"),
        ("GET /notes/{id:\\d+}", "no regular expressions"),
        ("GET /notes/{id}x", "the path must start with /"),
        ("GET /notes//x", "the path must start with /"),
        ("GET /notes?x=1", "the path must start with /"),
        ("GET /no tes", "the path must start with /"),
    ],
)
async def test_a_bad_resource_is_refused_and_nothing_written(
    stack: Stack, resource: str, message: str
) -> None:
    name = unique("notes:read")
    args = ["scope", "add", name, "--description", "x", "--resource", resource]

    await assert_refused(stack, args, message)


async def test_resource_servers_read_the_definitions_at_get_scopes(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    plain = await make_scope(redis)
    covering = unique("notes:write")
    await scopes.add(redis, covering, "Write notes", ["POST /notes", "DELETE /notes/{note_id}"])
    api = await make_resource_server(redis, [plain])

    reply = await get_scopes(http, stack, basic_auth_for(api))

    assert reply.status == 200, reply.body
    assert_no_store(reply)
    listed = {scope["name"]: scope for scope in reply.body["scopes"]}
    assert listed[plain] == {"name": plain, "description": "Read things"}
    assert listed[covering] == {
        "name": covering,
        "description": "Write notes",
        "resources": ["POST /notes", "DELETE /notes/{note_id}"],
    }


async def test_get_scopes_needs_a_client_allowed_to_introspect(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    not_allowed = await make_client(redis, [scope])
    api = await make_resource_server(redis, [scope])
    assert api.secret

    for headers in (
        None,
        basic_auth_for(not_allowed),
        basic_auth(api.client_id, "not-the-secret"),
        {"Authorization": f"Bearer {api.secret}"},
    ):
        reply = await get_scopes(http, stack, headers)
        assert_invalid_client(reply)
