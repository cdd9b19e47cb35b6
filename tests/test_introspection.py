"""Token introspection at POST /introspect (RFC 7662 §2.1-§2.3, §4), over HTTP against
the running services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.storage import clients, families
from tests.assertions import assert_error, assert_invalid_client, assert_no_store
from tests.flows import exchange, grant_family, introspect, obtain_code
from tests.records import Registered, make_client, make_resource_server, make_setup
from tests.replies import Reply, basic_auth, basic_auth_for, post_form, post_json
from tests.stack import Stack
from tests.waiting import until_heard

INACTIVE = {"active": False}


@dataclass(frozen=True)
class Issued:
    scope: str
    user: str
    client: Registered
    api: Registered
    access_token: str
    refresh_token: str | None


async def _issue(
    http: aiohttp.ClientSession, stack: Stack, redis: Redis, **client_options: Any
) -> Issued:
    """A full code flow for a fresh client; returns its tokens and a resource server."""
    s = await make_setup(redis, **client_options)
    api = await make_resource_server(redis, [s.scope])
    code = await obtain_code(http, stack, s)
    reply = await exchange(http, stack, s.client, code)
    assert reply.status == 200, reply.body
    return Issued(
        s.scope,
        s.user,
        s.client,
        api,
        reply.body["access_token"],
        reply.body.get("refresh_token"),
    )


def _url(stack: Stack) -> str:
    return f"{stack.introspect}/introspect"


def assert_inactive(reply: Reply) -> None:
    # RFC 7662 §2.2: an inactive token yields exactly {"active": false}, nothing more.
    assert reply.status == 200, reply.body
    assert reply.body == INACTIVE
    assert_no_store(reply)


def assert_active(reply: Reply, issued: Issued) -> None:
    assert reply.status == 200, reply.body
    assert reply.body["active"] is True
    assert reply.body["client_id"] == issued.client.client_id
    assert reply.body["scope"] == issued.scope
    assert reply.body["username"] == issued.user
    assert_no_store(reply)


# --- who may call (RFC 7662 §2.1) --------------------------------------------------------


async def test_caller_without_credentials(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)

    reply = await post_form(http, _url(stack), {"token": issued.access_token})

    assert_invalid_client(reply)


async def test_confidential_client_without_the_introspect_permission(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)

    # The token's own client is confidential and authenticates, but was not registered
    # with the introspection permission.
    reply = await introspect(http, stack, issued.client, issued.access_token)

    assert_invalid_client(reply)


async def test_public_client_cannot_introspect(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    public = await make_client(redis, [issued.scope], client_type="public")

    reply = await post_form(
        http, _url(stack), {"token": issued.access_token, "client_id": public.client_id}
    )

    assert_invalid_client(reply)


async def test_wrong_secret(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    issued = await _issue(http, stack, redis)
    wrong = Registered(issued.api.client, "not-the-secret")

    assert_invalid_client(await introspect(http, stack, wrong, issued.access_token))
    reply = await post_form(
        http,
        _url(stack),
        {
            "token": issued.access_token,
            "client_id": issued.api.client_id,
            "client_secret": "not-the-secret",
        },
    )
    assert_invalid_client(reply)


async def test_unknown_caller(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    issued = await _issue(http, stack, redis)

    reply = await post_form(
        http, _url(stack), {"token": issued.access_token}, basic_auth("nobody", "secret")
    )

    assert_invalid_client(reply)


async def test_disabled_caller(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    issued = await _issue(http, stack, redis)
    await clients.set_enabled(redis, issued.api.client_id, False)

    refused = await until_heard(
        lambda: introspect(http, stack, issued.api, issued.access_token),
        lambda reply: reply.status == 401,
    )
    assert_invalid_client(refused)


async def test_caller_may_use_client_secret_post(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    assert issued.api.secret

    reply = await post_form(
        http,
        _url(stack),
        {
            "token": issued.access_token,
            "client_id": issued.api.client_id,
            "client_secret": issued.api.secret,
        },
    )

    assert_active(reply, issued)


# --- malformed requests ------------------------------------------------------------------


async def test_missing_token_parameter(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    basic = basic_auth_for(issued.api)

    for form in ({}, {"token": ""}, {"token_type_hint": "access_token"}):
        reply = await post_form(http, _url(stack), form, basic)
        assert_error(reply, 400, "invalid_request")


async def test_repeated_token_parameter(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    basic = basic_auth_for(issued.api)

    reply = await post_form(
        http, _url(stack), [("token", issued.access_token), ("token", "other")], basic
    )

    assert_error(reply, 400, "invalid_request")


async def test_json_body_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    basic = basic_auth_for(issued.api)

    reply = await post_json(http, _url(stack), {"token": issued.access_token}, basic)

    assert_error(reply, 400, "invalid_request")


async def test_body_that_is_not_utf8_is_a_bad_request_not_a_server_error(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **basic_auth_for(issued.api),
    }

    reply = await post_form(http, _url(stack), b"token=\xff", headers)

    assert_error(reply, 400, "invalid_request")


# --- what is active ----------------------------------------------------------------------


async def test_active_token_answer(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    issued = await _issue(http, stack, redis)

    reply = await introspect(http, stack, issued.api, issued.access_token)

    assert_active(reply, issued)
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["iss"] == stack.issuer
    assert reply.body["exp"] == reply.body["iat"] + 3600
    assert reply.body["sub"] and reply.body["sub"] != issued.user


async def test_unknown_garbage_and_lookalike_tokens_are_inactive(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    family = grant_family(issued.access_token)
    for token in (
        "unknown-token",
        "garbage \u00e9\u00e8 !@#$%^&*()",
        "x" * 5000,
        ".",
        "a.",
        ".b",
        "{g:x}.y",
        # Shaped like ours, from a family that does not exist.
        families.new_value(families.new_family(), 32),
        # Shaped like ours, in the family of a live token, but not a token of it.
        families.new_value(family, 32),
        # The live token with its secret part truncated or extended.
        issued.access_token[:-1],
        issued.access_token + "A",
    ):
        assert_inactive(await introspect(http, stack, issued.api, token))
    # The live token itself still answers active.
    assert_active(await introspect(http, stack, issued.api, issued.access_token), issued)


async def _disable(redis: Redis, client_id: str) -> None:
    await clients.set_enabled(redis, client_id, False)


async def _enable(redis: Redis, client_id: str) -> None:
    await clients.set_enabled(redis, client_id, True)


ClientChange = Callable[[Redis, str], Awaitable[Any]]


@pytest.mark.parametrize(
    ("withdraw", "restore"),
    [
        pytest.param(_disable, _enable, id="disabled-then-re-enabled"),
        pytest.param(clients.delete, None, id="deleted"),
    ],
)
async def test_token_of_a_client_that_is_withdrawn(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    withdraw: ClientChange,
    restore: ClientChange | None,
) -> None:
    issued = await _issue(http, stack, redis)
    assert_active(await introspect(http, stack, issued.api, issued.access_token), issued)

    def ask() -> Awaitable[Reply]:
        return introspect(http, stack, issued.api, issued.access_token)

    await withdraw(redis, issued.client.client_id)
    assert_inactive(await until_heard(ask, lambda reply: reply.body["active"] is False))

    if restore is not None:
        await restore(redis, issued.client.client_id)
        assert_active(await until_heard(ask, lambda reply: reply.body["active"] is True), issued)


async def test_token_type_hint_does_not_change_the_answer(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis, refresh_count=1)
    basic = basic_auth_for(issued.api)

    # RFC 7662 §2.1: the hint is only a hint; a wrong or unknown one must not matter.
    for hint in ("refresh_token", "access_token", "urn:example:unknown"):
        reply = await post_form(
            http, _url(stack), {"token": issued.access_token, "token_type_hint": hint}, basic
        )
        assert_active(reply, issued)


async def test_refresh_token_is_not_introspected(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis, refresh_count=2)
    assert issued.refresh_token
    basic = basic_auth_for(issued.api)

    assert_inactive(await introspect(http, stack, issued.api, issued.refresh_token))
    for hint in ("refresh_token", "access_token"):
        reply = await post_form(
            http, _url(stack), {"token": issued.refresh_token, "token_type_hint": hint}, basic
        )
        assert_inactive(reply)


async def test_any_authorised_resource_server_gets_the_same_answer(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    issued = await _issue(http, stack, redis)
    other_api = await make_resource_server(redis, [issued.scope], name="Another API")

    first = await introspect(http, stack, issued.api, issued.access_token)
    second = await introspect(http, stack, other_api, issued.access_token)

    assert first.body == second.body
    assert first.body["active"] is True
