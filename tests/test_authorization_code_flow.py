"""The authorization code grant end to end (RFC 6749 §4.1, RFC 7636, RFC 7662), over HTTP
against the three services running as separate processes."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.assertions import assert_access_denied, assert_token_response
from tests.flows import (
    authorize,
    code_request,
    exchange,
    introspect,
    new_verifier,
    obtain_code,
    s256,
)
from tests.records import make_client, make_resource_server, make_scope, make_setup, make_user
from tests.replies import Reply
from tests.stack import Stack


def assert_opaque_token(reply: Reply, *, refresh: bool, scope: str) -> None:
    """A token response (RFC 6749 §5.1) with an opaque access token of the default
    lifetime."""
    assert_token_response(reply, refresh=refresh, scope=scope)
    assert reply.body["expires_in"] == 3600
    # At least 256 bits of entropy in the secret part of the token.
    assert len(reply.body["access_token"].split(".", 1)[1]) >= 43


async def test_confidential_client_basic_auth_approve_all_then_introspect(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write = await make_scope(redis), await make_scope(redis, "Write things")
    user = await make_user(redis)
    client = await make_client(redis, [read, write])
    api = await make_resource_server(redis, [read])
    params = code_request(client, f"{read} {write}")

    back = await authorize(http, stack, params, user)

    assert back["state"] == params["state"]
    assert back["iss"] == stack.issuer  # RFC 9207
    assert "error" not in back
    reply = await exchange(http, stack, client, back["code"], auth="basic")
    assert_opaque_token(reply, refresh=False, scope=f"{read} {write}")  # refresh count 0

    before = int(time.time())
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.status == 200
    assert info.headers["Cache-Control"] == "no-store"
    body = info.body
    assert body["active"] is True
    assert body["scope"] == f"{read} {write}"
    assert body["client_id"] == client.client_id
    assert body["username"] == user
    assert body["owner_id"] == user
    assert body["sub"] and body["sub"] != user
    assert body["token_type"] == "Bearer"
    assert body["iss"] == stack.issuer
    assert before - 5 <= body["iat"] <= before + 1
    assert body["exp"] == body["iat"] + 3600


async def test_confidential_client_post_auth_approves_a_subset(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write = await make_scope(redis), await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read, write], refresh_count=3)
    api = await make_resource_server(redis, [read])

    back = await authorize(http, stack, code_request(client, f"{read} {write}"), user, tick=[write])

    reply = await exchange(http, stack, client, back["code"], auth="post")
    assert_opaque_token(reply, refresh=True, scope=write)
    assert reply.body["refresh_token"] != reply.body["access_token"]
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["scope"] == write


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"decision": "deny"}, id="deny"),
        pytest.param({"tick": []}, id="approve-no-scope"),
    ],
)
async def test_a_denial_redirects_with_access_denied_and_state(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, answer: dict[str, Any]
) -> None:
    s = await make_setup(redis)
    params = code_request(s.client, s.scope)

    back = await authorize(http, stack, params, s.user, **answer)

    assert_access_denied(back, stack, params["state"])


async def test_public_client_with_pkce_s256(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, client_type="public")
    api = await make_resource_server(redis, [s.scope])
    verifier = new_verifier()
    params = code_request(
        s.client, s.scope, code_challenge=s256(verifier), code_challenge_method="S256"
    )

    back = await authorize(http, stack, params, s.user)
    reply = await exchange(http, stack, s.client, back["code"], auth="none", code_verifier=verifier)

    assert_opaque_token(reply, refresh=False, scope=s.scope)
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["client_id"] == s.client.client_id


async def test_public_client_with_pkce_plain_as_the_default_method(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, client_type="public")
    verifier = new_verifier()
    # RFC 7636 §4.3: without code_challenge_method the method is plain.
    params = code_request(s.client, s.scope, code_challenge=verifier)

    back = await authorize(http, stack, params, s.user)
    reply = await exchange(http, stack, s.client, back["code"], auth="none", code_verifier=verifier)

    assert_opaque_token(reply, refresh=False, scope=s.scope)


async def test_a_signed_in_person_goes_straight_to_the_approval_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    await authorize(http, stack, code_request(s.client, s.scope), s.user)

    async with http.get(
        f"{stack.authorize}/authorize",
        params=code_request(s.client, s.scope),
        allow_redirects=False,
    ) as second:
        assert second.status == 303
        assert second.headers["Location"].startswith("/consent?interaction=")


async def test_redirect_uri_may_be_omitted_with_one_registered_and_then_at_token_too(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s, redirect_uri=None)

    assert (await exchange(http, stack, s.client, code, redirect_uri=None)).status == 200


async def test_the_redirect_uri_query_is_kept(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    uri = "https://app.example.com/cb?tenant=blue"
    s = await make_setup(redis, redirect_uris=[uri])
    params = code_request(s.client, s.scope, redirect_uri=uri)

    back = await authorize(http, stack, params, s.user)

    # RFC 6749 §3.1.2: the registered query component is retained.
    assert back["tenant"] == "blue"
    reply = await exchange(http, stack, s.client, back["code"], redirect_uri=uri)
    assert reply.status == 200
