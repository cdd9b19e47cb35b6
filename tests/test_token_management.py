"""Token management: webMethods Integration Server's Tokens page as ``tessera
token|scope|client`` and as the admin API (services/admin), both over the same
shared/storage/management.py. The admin API's own tests: tests/test_admin_api.py."""

from __future__ import annotations

from typing import Any

import aiohttp
from redis.asyncio import Redis

from shared.config.settings import ADMIN_PORT
from shared.security import crypto
from tests.command_line import tessera, tessera_process
from tests.flows import (
    ADMIN,
    admin_json,
    exchange,
    is_active,
    obtain_code,
    refresh,
    token_request,
)
from tests.records import Registered, Setup, make_client, make_resource_server, make_setup
from tests.stack import ADMIN_TOKEN, Stack, production_settings


async def code_flow_tokens(http: aiohttp.ClientSession, stack: Stack, s: Setup) -> dict[str, str]:
    reply = await exchange(http, stack, s.client, await obtain_code(http, stack, s))
    assert reply.status == 200, reply.body
    return reply.body


async def machine_client(redis: Redis, scope: str, **options: Any) -> Registered:
    return await make_client(
        redis, [scope], grants=["client_credentials"], default_scopes=[scope], **options
    )


async def machine_token(http: aiohttp.ClientSession, stack: Stack, client: Registered) -> str:
    reply = await token_request(http, stack, client, {"grant_type": "client_credentials"})
    assert reply.status == 200, reply.body
    token: str = reply.body["access_token"]
    return token


# --- tessera token list ------------------------------------------------------------------


async def test_token_list_shows_who_what_and_when_but_never_a_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1)
    tokens = await code_flow_tokens(http, stack, s)
    other = await machine_client(redis, s.scope)
    machine = await machine_token(http, stack, other)

    run = await tessera(stack, "token", "list", "--client", s.client.client_id, "-o", "json")
    assert run.status == 0, run.stderr
    listed = run.json()
    assert sorted(t["kind"] for t in listed) == ["access_token", "refresh_token"]
    for entry in listed:
        assert entry["client_id"] == s.client.client_id
        assert entry["username"] == s.user
        assert entry["scope"] == [s.scope]
        assert entry["issued_at"] <= entry["expires_at"]
    access = next(t for t in listed if t["kind"] == "access_token")
    assert access["expires_at"] - access["issued_at"] == 3600
    # Values are not stored, so cannot be shown; nor are their digests.
    for value in (tokens["access_token"], tokens["refresh_token"], machine):
        assert value not in run.stdout
        assert crypto.digest(value) not in run.stdout

    by_user = (await tessera(stack, "token", "list", "--user", s.user, "-o", "json")).json()
    assert {t["family"] for t in by_user} == {t["family"] for t in listed}
    machines = (
        await tessera(stack, "token", "list", "--client", other.client_id, "-o", "json")
    ).json()
    assert [(t["kind"], t["username"]) for t in machines] == [("access_token", None)]

    everything = (await tessera(stack, "token", "list", "-o", "json")).json()
    assert {t["family"] for t in listed + machines} <= {t["family"] for t in everything}

    text = await tessera(stack, "token", "list", "--client", s.client.client_id)
    assert text.status == 0
    assert text.stdout.splitlines()[0].split() == [
        "KIND",
        "CLIENT_ID",
        "USERNAME",
        "SCOPE",
        "ISSUED",
        "EXPIRES",
    ]
    assert len(text.stdout.splitlines()) == 3
    assert s.user in text.stdout


async def test_a_rotated_away_or_revoked_token_is_not_listed(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=2)
    tokens = await code_flow_tokens(http, stack, s)
    rotated = await refresh(http, stack, s.client, tokens["refresh_token"])
    assert rotated.status == 200

    listed = (
        await tessera(stack, "token", "list", "--client", s.client.client_id, "-o", "json")
    ).json()
    # Two access tokens (the first still lives) and only the new refresh token.
    assert sorted(t["kind"] for t in listed) == ["access_token", "access_token", "refresh_token"]

    run = await tessera(stack, "token", "revoke", "--client", s.client.client_id)
    assert run.status == 0, run.stderr
    assert run.stdout.strip() == f"1 grant(s) of client {s.client.client_id} revoked"
    after = await tessera(stack, "token", "list", "--client", s.client.client_id, "-o", "json")
    assert after.json() == []


# --- tessera token revoke -----------------------------------------------------------------


async def test_revoke_by_token_read_from_stdin_revokes_its_grant(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1)
    rs = await make_resource_server(redis, [s.scope])
    tokens = await code_flow_tokens(http, stack, s)
    kept = await code_flow_tokens(http, stack, s)

    # The installed command, as a process: the token comes through a pipe.
    run = await tessera_process(
        stack, "token", "revoke", "--token-stdin", stdin=tokens["access_token"]
    )
    assert run.status == 0, run.stderr
    assert run.stdout == "token revoked, with every token of its grant\n"

    assert not await is_active(http, stack, rs, tokens["access_token"])
    # The refresh token of the pair went with it (as webMethods Integration Server revokes both).
    assert (await refresh(http, stack, s.client, tokens["refresh_token"])).status == 400
    # Another approval of the same client and user is untouched.
    assert await is_active(http, stack, rs, kept["access_token"])

    again = await tessera(stack, "token", "revoke", "--token-stdin", stdin=tokens["access_token"])
    assert again.status == 1
    assert "no live access or refresh token has that value" in again.stderr


async def test_revoke_by_token_works_for_a_jwt_and_a_refresh_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1, jwt_access_tokens=True)
    rs = await make_resource_server(redis, [s.scope])
    first = await code_flow_tokens(http, stack, s)
    second = await code_flow_tokens(http, stack, s)
    assert first["access_token"].count(".") == 2  # a JWT

    jwt_run = await tessera(stack, "token", "revoke", "--token-stdin", stdin=first["access_token"])
    assert jwt_run.status == 0, jwt_run.stderr
    assert not await is_active(http, stack, rs, first["access_token"])

    rt_run = await tessera(stack, "token", "revoke", "--token-stdin", stdin=second["refresh_token"])
    assert rt_run.status == 0, rt_run.stderr
    assert not await is_active(http, stack, rs, second["access_token"])


async def test_revoke_by_user_spares_other_users(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    rs = await make_resource_server(redis, [s.scope])
    mine = await code_flow_tokens(http, stack, s)
    machine = await machine_token(http, stack, await machine_client(redis, s.scope))

    run = await tessera(stack, "token", "revoke", "--user", s.user)
    assert run.status == 0, run.stderr
    assert run.stdout.strip() == f"1 grant(s) of user {s.user} revoked"
    assert not await is_active(http, stack, rs, mine["access_token"])
    assert await is_active(http, stack, rs, machine)


async def test_token_revoke_needs_exactly_one_target(stack: Stack) -> None:
    for args in ([], ["--client", "a", "--user", "b"]):
        run = await tessera(stack, "token", "revoke", *args)
        assert run.status == 2
        assert run.stderr.startswith("tessera: error: give exactly one of --token-stdin")


# --- clients: disable, enable, delete -------------------------------------------------------


async def test_a_disabled_clients_tokens_are_inactive_at_once_and_a_deleted_clients_gone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1)
    rs = await make_resource_server(redis, [s.scope])
    tokens = await code_flow_tokens(http, stack, s)
    token_list = ["token", "list", "--client", s.client.client_id, "-o", "json"]
    kinds = sorted(t["kind"] for t in (await tessera(stack, *token_list)).json())
    assert kinds == ["access_token", "refresh_token"]

    assert (await tessera(stack, "client", "disable", s.client.client_id)).status == 0
    assert not await is_active(http, stack, rs, tokens["access_token"])
    assert (await tessera(stack, "client", "enable", s.client.client_id)).status == 0
    assert await is_active(http, stack, rs, tokens["access_token"])

    run = await tessera(stack, "client", "delete", s.client.client_id)
    assert run.status == 0, run.stderr
    assert run.stdout.strip() == f"client {s.client.client_id} deleted"
    assert not await is_active(http, stack, rs, tokens["access_token"])
    # Deleted, not merely inactive: nothing of the grant is listed (nor left in Redis:
    # tests/test_storage.py).
    assert (await tessera(stack, *token_list)).json() == []


# --- tessera scope list | show | delete -------------------------------------------------------


async def test_scope_list_show_and_delete_refused_while_in_use(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)

    listed = (await tessera(stack, "scope", "list", "-o", "json")).json()
    expected = {"name": s.scope, "description": "Read things", "resources": [], "built_in": False}
    assert expected in listed
    shown = (await tessera(stack, "scope", "show", s.scope, "-o", "json")).json()
    assert shown == {**expected, "clients": [s.client.client_id]}

    refused = await tessera(stack, "scope", "delete", s.scope)
    assert refused.status == 1
    assert f"scope {s.scope!r} is still associated with client(s) {s.client.client_id}" in (
        refused.stderr
    )
    still = (await tessera(stack, "scope", "show", s.scope, "-o", "json")).json()
    assert still == shown

    assert (await tessera(stack, "client", "delete", s.client.client_id)).status == 0
    deleted = await tessera(stack, "scope", "delete", s.scope)
    assert deleted.status == 0, deleted.stderr
    listed = (await tessera(stack, "scope", "list", "-o", "json")).json()
    assert s.scope not in [scope["name"] for scope in listed]
    missing = await tessera(stack, "scope", "show", s.scope)
    assert missing.status == 1
    assert f"no scope {s.scope!r}" in missing.stderr


# --- the admin API ---------------------------------------------------------------------


async def test_without_a_port_there_is_no_admin_api() -> None:
    settings = production_settings("redis://127.0.0.1:1/0")
    assert settings.admin_port == 0
    with_token = production_settings("redis://127.0.0.1:1/0", TESSERA_ADMIN_TOKEN=ADMIN_TOKEN)
    assert with_token.admin_port == ADMIN_PORT


async def test_the_public_port_serves_no_admin_api(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for path in ("/admin/tokens", "/v1/tokens", "/openapi.json"):
        async with http.get(f"{stack.token}{path}", headers=ADMIN) as r:
            assert r.status == 404, path


async def test_admin_api_lists_and_revokes_tokens_like_the_cli(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1)
    rs = await make_resource_server(redis, [s.scope])
    first = await code_flow_tokens(http, stack, s)
    second = await code_flow_tokens(http, stack, s)
    third = await code_flow_tokens(http, stack, s)

    status, body = await admin_json(http, "GET", f"{stack.admin}/v1/tokens?username={s.user}")
    assert status == 200
    cli = await tessera(stack, "token", "list", "--user", s.user, "-o", "json")
    assert body == {"items": cli.json(), "next_cursor": None}
    assert len(cli.json()) == 6

    revoke = f"{stack.admin}/v1/tokens/revoke"
    status, body = await admin_json(http, "POST", revoke, json={"token": first["access_token"]})
    assert (status, body) == (200, {"revoked_grants": 1})
    assert not await is_active(http, stack, rs, first["access_token"])
    assert await is_active(http, stack, rs, second["access_token"])

    status, body = await admin_json(http, "POST", revoke, json={"username": s.user})
    assert (status, body) == (200, {"revoked_grants": 2})
    assert not await is_active(http, stack, rs, third["access_token"])

    status, body = await admin_json(http, "POST", revoke, json={"client_id": s.client.client_id})
    assert (status, body) == (200, {"revoked_grants": 0})

    for given in ({}, {"token": "x", "username": s.user}):
        status, body = await admin_json(http, "POST", revoke, json=given)
        assert status == 400
        assert body["detail"] == "Give exactly one of token, client_id or username."


async def test_admin_api_scopes_and_clients(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    rs = await make_resource_server(redis, [s.scope])
    token = (await code_flow_tokens(http, stack, s))["access_token"]
    scope_url = f"{stack.admin}/v1/scopes/{s.scope}"

    status, body = await admin_json(http, "GET", scope_url)
    assert status == 200
    assert set(body["clients"]) == {s.client.client_id, rs.client_id}
    status, body = await admin_json(http, "DELETE", scope_url)
    assert status == 409

    client_url = f"{stack.admin}/v1/clients/{s.client.client_id}"
    status, body = await admin_json(http, "PATCH", client_url, json={"enabled": False})
    assert status == 200
    assert body["enabled"] is False
    assert not await is_active(http, stack, rs, token)
    status, body = await admin_json(http, "PATCH", client_url, json={"enabled": True})
    assert body["enabled"] is True
    assert await is_active(http, stack, rs, token)

    status, body = await admin_json(http, "DELETE", client_url)
    assert (status, body) == (204, None)
    assert not await is_active(http, stack, rs, token)
    status, _ = await admin_json(http, "DELETE", client_url)
    assert status == 404

    status, _ = await admin_json(http, "DELETE", f"{stack.admin}/v1/clients/{rs.client_id}")
    assert status == 204
    status, body = await admin_json(http, "DELETE", scope_url)
    assert (status, body) == (204, None)
    status, _ = await admin_json(http, "GET", scope_url)
    assert status == 404
