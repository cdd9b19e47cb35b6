"""The admin API's answers to refused operations (services/admin/problems.py): problem
details (RFC 9457) with 404 for a name that names nothing and 409 for a clash with what
is stored, each with the message the ``tessera`` command prints for the same refusal,
and an unknown name in the log only as its fingerprint (it may be a credential pasted in
the wrong place)."""

from __future__ import annotations

import aiohttp
import orjson
from redis.asyncio import Redis

from tests.command_line import tessera
from tests.flows import admin_json
from tests.records import make_setup, unique
from tests.stack import Stack, logged_lines


def problem(status: int, title: str, detail: str) -> dict[str, object]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


async def test_a_name_that_names_nothing_is_404_naming_it_and_logged_as_a_fingerprint(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    scope, client_id = unique("no-such-scope"), unique("no-such-client")
    for method, path, message in (
        ("GET", f"/v1/scopes/{scope}", f"no scope {scope!r}"),
        ("DELETE", f"/v1/scopes/{scope}", f"no scope {scope!r}"),
        ("GET", f"/v1/clients/{client_id}", f"no client {client_id!r}"),
        ("PATCH", f"/v1/clients/{client_id}", f"no client {client_id!r}"),
        ("DELETE", f"/v1/clients/{client_id}", f"no client {client_id!r}"),
    ):
        body = {"enabled": False} if method == "PATCH" else None
        status, answer = await admin_json(http, method, f"{stack.admin}{path}", json=body)
        assert (status, answer) == (404, problem(404, "Not Found", message))
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
    scope_url = f"{stack.admin}/v1/scopes/{s.scope}"

    status, body = await admin_json(http, "DELETE", scope_url)

    assert (status, body) == (409, problem(409, "Conflict", message))
    # Refused, so still there.
    status, body = await admin_json(http, "GET", scope_url)
    kept = {
        "name": s.scope,
        "description": "Read things",
        "resources": [],
        "built_in": False,
        "clients": [s.client.client_id],
    }
    assert (status, body) == (200, kept)
    run = await tessera(stack, "scope", "delete", s.scope)
    assert (run.status, run.stderr) == (1, f"tessera: error: {message}\n")
