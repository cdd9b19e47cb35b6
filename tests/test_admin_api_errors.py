"""The admin API's answers to refused operations (services/token/admin_api.py): 404 for a
name that names nothing and 409 for a clash with what is stored, each with the message
the ``tessera`` command prints for the same refusal, and an unknown name in the log only
as its fingerprint (it may be a credential pasted in the wrong place)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from redis.asyncio import Redis

from tests.command_line import tessera
from tests.records import make_setup, unique
from tests.stack import ADMIN_TOKEN, Stack, logged_lines

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def admin(http: aiohttp.ClientSession, method: str, url: str) -> tuple[int, Any]:
    async with http.request(method, url, headers=ADMIN) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers["Cache-Control"] == "no-store"
        return r.status, orjson.loads(await r.read())


async def test_a_name_that_names_nothing_is_404_naming_it_and_logged_as_a_fingerprint(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    scope, client_id = unique("no-such-scope"), unique("no-such-client")
    for method, path, message in (
        ("GET", f"/admin/scopes/{scope}", f"no scope {scope!r}"),
        ("DELETE", f"/admin/scopes/{scope}", f"no scope {scope!r}"),
        ("POST", f"/admin/clients/{client_id}/enable", f"no client {client_id!r}"),
        ("POST", f"/admin/clients/{client_id}/disable", f"no client {client_id!r}"),
        ("DELETE", f"/admin/clients/{client_id}", f"no client {client_id!r}"),
    ):
        status, body = await admin(http, method, f"{stack.token}{path}")
        assert (status, body) == (404, {"error": "not_found", "error_description": message})
    # The CLI says the same.
    for args, message in (
        (["scope", "delete", scope], f"no scope {scope!r}"),
        (["client", "delete", client_id], f"no client {client_id!r}"),
    ):
        run = await tessera(stack, *args)
        assert (run.status, run.stderr) == (1, f"tessera: error: {message}\n")

    logged = orjson.dumps(await logged_lines(http, stack.token, "token")).decode()
    assert scope not in logged
    assert client_id not in logged
    for kind, name in (("scope", scope), ("client", client_id)):
        found = await tessera(stack, "log", "fingerprint", stdin=name)
        assert found.status == 0, found.stderr
        assert f"no {kind} {found.stdout.strip()}" in logged


async def test_deleting_a_scope_a_client_is_registered_for_is_409_naming_the_clients(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    message = f"scope {s.scope!r} is still associated with client(s) {s.client.client_id}"

    status, body = await admin(http, "DELETE", f"{stack.token}/admin/scopes/{s.scope}")

    assert (status, body) == (409, {"error": "conflict", "error_description": message})
    # Refused, so still there.
    status, body = await admin(http, "GET", f"{stack.token}/admin/scopes/{s.scope}")
    kept = {"name": s.scope, "description": "Read things", "clients": [s.client.client_id]}
    assert (status, body) == (200, kept)
    run = await tessera(stack, "scope", "delete", s.scope)
    assert (run.status, run.stderr) == (1, f"tessera: error: {message}\n")
