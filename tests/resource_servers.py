"""Test helpers for resource servers (tessera_resource_server): settings against the test
stack, a token from the browser flow, calls to a protected API, and Tessera's own
request counts (its /metrics) to see which calls reached it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict, CIMultiDictProxy
from redis.asyncio import Redis
from tessera_resource_server import ResourceServerSettings

from devtools.local_processes import free_port
from services.example_api.app import READ, WRITE
from shared.storage import scopes
from tests.flows import exchange, obtain_code
from tests.records import Registered, Setup, make_client, make_resource_server, make_user
from tests.stack import Stack

# The example notes API under test, and the fixture (tests/conftest.py) that starts it.
ApiClient = TestClient[web.Request, web.Application]
Start = Callable[[ResourceServerSettings], Awaitable[ApiClient]]

REALM = "notes"


def rs_settings(stack: Stack, api: Registered, **overrides: Any) -> ResourceServerSettings:
    """A resource server checking tokens with the test stack, as ``api``."""
    assert api.secret
    values: dict[str, Any] = {
        "issuer": stack.issuer,
        "introspection_endpoint": f"{stack.introspect}/introspect",
        "client_id": api.client_id,
        "client_secret": api.secret,
        "jwks_uri": f"{stack.token}/jwks.json",
        "realm": REALM,
        **overrides,
    }
    return ResourceServerSettings(**values)


def nowhere() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


async def notes_scopes(redis: Redis) -> None:
    """The example API's scopes, defined once in the session's Redis."""
    defined = await scopes.get_many(redis, [READ, WRITE])
    for name in (READ, WRITE):
        if name not in defined:
            await scopes.add(redis, name, f"The example API's {name}")


@dataclass(frozen=True)
class Holder:
    """A person's access token for a client, got through the browser flow."""

    setup: Setup
    token: str
    api: Registered


async def browser_token(
    http: aiohttp.ClientSession,
    stack: Stack,
    redis: Redis,
    scope: str,
    *,
    user: str | None = None,
    **client_options: Any,
) -> Holder:
    """Sign in as a (new) user, approve ``scope`` for a new client registered for both
    notes scopes, and exchange the code; also a resource-server client to check it."""
    await notes_scopes(redis)
    client = await make_client(redis, [READ, WRITE], **client_options)
    setup = Setup(scope, user or await make_user(redis), client)
    code = await obtain_code(http, stack, setup)
    reply = await exchange(http, stack, client, code)
    assert reply.status == 200, reply.body
    assert reply.body["scope"] == scope
    api = await make_resource_server(redis, [READ], name="Notes API")
    return Holder(setup, reply.body["access_token"], api)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    # The JSON body, or the text of another.
    body: Any


async def call(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    token: str | None = None,
    **kwargs: Any,
) -> Answer:
    # A multidict, so a test can send a header twice.
    headers = CIMultiDict(kwargs.pop("headers", {}))
    if token is not None:
        headers.add("Authorization", f"Bearer {token}")
    async with client.request(method, path, headers=headers, **kwargs) as r:
        text = await r.text()
        body: Any = text
        if r.headers.get("Content-Type", "").startswith("application/json") and text:
            body = await r.json()
        return Answer(r.status, r.headers, body)


def assert_challenge(
    answer: Answer, status: int, error: str | None, scope: str | None = None
) -> None:
    """RFC 6750 §3: the status, the Bearer challenge with (or without) an error code and
    scope, a JSON body that is not cached."""
    assert answer.status == status, (answer.status, answer.body)
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{REALM}"'), challenge
    if error is None:
        assert challenge == f'Bearer realm="{REALM}"'
        assert "error" not in answer.body
    else:
        assert f'error="{error}"' in challenge
        assert answer.body["error"] == error
    if scope is None:
        assert "scope=" not in challenge
    else:
        assert challenge.endswith(f'scope="{scope}"'), challenge
    assert answer.body["error_description"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Type"].startswith("application/json")


_SAMPLE = re.compile(r"^tessera_http_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)


async def requests_served(http: aiohttp.ClientSession, service_url: str, route: str) -> int:
    """How many requests for ``route`` the service has answered, by its own /metrics."""
    async with http.get(f"{service_url}/metrics") as r:
        text = await r.text()
    total = 0.0
    for labels, value in _SAMPLE.findall(text):
        if f'route="{route}"' in labels:
            total += float(value)
    return int(total)
