"""Tessera's scope definitions as the resource server's policy (tessera_resource_server
.scope_rules): a scope lists the resources it covers, "METHOD /path/{var}"; the resource
server fetches them from the introspection service's GET /scopes and matches each
request's method and route template. Any covering scope admits; a route no scope covers
is refused (default-deny); only scopes under the configured prefix count."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis
from tessera_resource_server import (
    ACCESS_TOKEN,
    RESOURCE_SERVER,
    ResourceServerSettings,
    protect,
    public,
    requires_scope,
)

from shared.storage import scopes
from tests.assertions import assert_token_response
from tests.flows import token_request
from tests.records import Registered, make_client, make_resource_server, unique
from tests.resource_servers import assert_challenge, call, nowhere, rs_settings
from tests.stack import Stack

ApiClient = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Names:
    """This test's scopes, under a prefix of its own."""

    prefix: str

    @property
    def read(self) -> str:
        return f"{self.prefix}read"

    @property
    def write(self) -> str:
        return f"{self.prefix}write"

    @property
    def admin(self) -> str:
        return f"{self.prefix}admin"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"


def things_app(settings: ResourceServerSettings, names: Names) -> web.Application:
    async def show(request: web.Request) -> web.Response:
        token = request[ACCESS_TOKEN]
        return web.json_response({"id": request.match_info["thing_id"], "sub": token.sub})

    async def add(request: web.Request) -> web.Response:
        return web.json_response({"added": True}, status=201)

    async def forgotten(request: web.Request) -> web.Response:
        return web.json_response({"reached": True})

    @public
    async def landing(request: web.Request) -> web.Response:
        return web.json_response({"hello": "anyone"})

    @requires_scope(names.audit)
    async def audit_log(request: web.Request) -> web.Response:
        return web.json_response({"log": []})

    app = web.Application()
    app.router.add_get("/things/{thing_id}", show)
    app.router.add_post("/things", add)
    app.router.add_get("/forgotten", forgotten)
    app.router.add_get("/", landing)
    app.router.add_get("/audit", audit_log)
    protect(app, settings)
    return app


@dataclass(frozen=True)
class Mapped:
    names: Names
    client: Registered
    api: Registered
    outside: str


async def define(redis: Redis) -> Mapped:
    names = Names(f"{unique('map')}:")
    await scopes.add(redis, names.read, "Read things", ["GET /things/{thing_id}", "GET /audit"])
    await scopes.add(redis, names.write, "Add things", ["POST /things"])
    await scopes.add(redis, names.admin, "Everything", ["GET /things/{thing_id}", "POST /things"])
    await scopes.add(redis, names.audit, "Read the audit log")
    # Another API's scope covering one of these paths: outside the prefix, it counts not.
    outside = unique("other")
    await scopes.add(redis, outside, "Another API", ["GET /forgotten"])
    all_names = [names.read, names.write, names.admin, names.audit, outside]
    client = await make_client(redis, all_names, grants=["client_credentials"])
    api = await make_resource_server(redis, [names.read])
    return Mapped(names, client, api, outside)


async def token_for(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, scope: str
) -> str:
    form = {"grant_type": "client_credentials", "scope": scope}
    reply = await token_request(http, stack, client, form)
    assert_token_response(reply, refresh=False, scope=scope)
    return str(reply.body["access_token"])


Start = Callable[..., Awaitable[ApiClient]]


@pytest.fixture
def things(aiohttp_client: AiohttpClient, stack: Stack) -> Start:
    async def start(mapped: Mapped, **overrides: Any) -> ApiClient:
        options = {
            "enforce_scope_resources": True,
            "scope_prefix": mapped.names.prefix,
            **overrides,
        }
        settings = rs_settings(stack, mapped.api, **options)
        client: ApiClient = await aiohttp_client(things_app(settings, mapped.names))
        return client

    return start


async def test_a_covering_scope_admits_and_the_challenge_names_the_others(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, things: Start
) -> None:
    mapped = await define(redis)
    names = mapped.names
    api = await things(mapped)
    reader = await token_for(http, stack, mapped.client, names.read)
    admin = await token_for(http, stack, mapped.client, names.admin)

    shown = await call(api, "GET", "/things/42", reader)
    assert shown.status == 200, shown.body
    assert shown.body == {"id": "42", "sub": mapped.client.client_id}
    assert (await call(api, "HEAD", "/things/42", reader)).status == 200  # HEAD is GET's
    # Two scopes cover POST /things; either admits, and the challenge names both.
    refused = await call(api, "POST", "/things", reader)
    assert_challenge(refused, 403, "insufficient_scope", scope=f"{names.admin} {names.write}")
    assert (await call(api, "POST", "/things", admin)).status == 201
    assert (await call(api, "GET", "/things/7", admin)).status == 200


async def test_a_route_no_scope_covers_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, things: Start
) -> None:
    mapped = await define(redis)
    api = await things(mapped)
    # Every scope there is, the other API's one (which lists GET /forgotten) included.
    everything = await token_for(
        http, stack, mapped.client, f"{mapped.names.admin} {mapped.names.read} {mapped.outside}"
    )

    # Default-deny: no scope under the prefix names the route, so no token reaches it.
    uncovered = await call(api, "GET", "/forgotten", everything)
    assert_challenge(uncovered, 403, "insufficient_scope", scope=None)
    # The token is checked first: without one, a 401 as anywhere else.
    assert_challenge(await call(api, "GET", "/forgotten"), 401, None)
    # @public routes need no token and no scope; unknown paths are 404 to a good token.
    assert (await call(api, "GET", "/")).body == {"hello": "anyone"}
    assert (await call(api, "GET", "/no-such-thing", everything)).status == 404


async def test_the_mapping_and_a_decorator_must_both_agree(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, things: Start
) -> None:
    mapped = await define(redis)
    names = mapped.names
    api = await things(mapped)

    # The mapping admits GET /audit with read, the decorator also wants audit.
    reader = await token_for(http, stack, mapped.client, names.read)
    assert_challenge(
        await call(api, "GET", "/audit", reader), 403, "insufficient_scope", names.audit
    )
    auditor = await token_for(http, stack, mapped.client, names.audit)
    assert_challenge(
        await call(api, "GET", "/audit", auditor), 403, "insufficient_scope", names.read
    )
    both = await token_for(http, stack, mapped.client, f"{names.read} {names.audit}")
    assert (await call(api, "GET", "/audit", both)).status == 200


async def test_enforcement_without_a_prefix_warns_at_start_up_of_the_risk(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    things: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mapped = await define(redis)
    warning = "enforce_scope_resources is on with an empty scope_prefix"

    with caplog.at_level(logging.WARNING, logger="tessera.resource_server"):
        unprefixed = await things(mapped, scope_prefix="")
    warned = [r for r in caplog.records if warning in r.getMessage()]
    assert [r.levelno for r in warned] == [logging.WARNING]
    assert "set scope_prefix" in warned[0].getMessage()

    # The risk it warns of: a token for another API only, whose scope lists GET /forgotten
    # (test_a_route_no_scope_covers_is_refused: 403 with the prefix), gets through.
    other_api = await token_for(http, stack, mapped.client, mapped.outside)
    assert (await call(unprefixed, "GET", "/forgotten", other_api)).status == 200

    # With a prefix, or without enforcement, nothing to warn of.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tessera.resource_server"):
        await things(mapped)
        await things(mapped, scope_prefix="", enforce_scope_resources=False)
    assert not [r for r in caplog.records if "scope_prefix" in r.getMessage()]


async def test_new_definitions_are_fetched_periodically(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, things: Start
) -> None:
    mapped = await define(redis)
    api = await things(mapped, scopes_refresh_seconds=0.2)
    late = f"{mapped.names.prefix}late"
    await scopes.add(redis, late, "Reach the forgotten route", ["GET /forgotten"])
    client = await make_client(redis, [late], grants=["client_credentials"])
    token = await token_for(http, stack, client, late)

    deadline = time.monotonic() + 5
    answer = await call(api, "GET", "/forgotten", token)
    while answer.status == 403 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        answer = await call(api, "GET", "/forgotten", token)
    assert answer.status == 200, answer.body


async def test_without_the_definitions_it_answers_503_and_is_not_ready(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, things: Start
) -> None:
    mapped = await define(redis)
    api = await things(mapped, scopes_endpoint=f"{nowhere()}/scopes", timeout_seconds=1)
    reader = await token_for(http, stack, mapped.client, mapped.names.read)

    answer = await call(api, "GET", "/things/1", reader)

    assert answer.status == 503, answer.body
    assert answer.body["error"] == "temporarily_unavailable"
    assert not api.app[RESOURCE_SERVER].ready


async def test_with_enforcement_off_only_the_decorators_count(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, things: Start
) -> None:
    mapped = await define(redis)
    api = await things(mapped, enforce_scope_resources=False)
    reader = await token_for(http, stack, mapped.client, mapped.names.read)

    assert (await call(api, "GET", "/forgotten", reader)).status == 200
    assert (await call(api, "POST", "/things", reader)).status == 201
    assert_challenge(
        await call(api, "GET", "/audit", reader), 403, "insufficient_scope", mapped.names.audit
    )
