"""The authorization code grant end to end (RFC 6749 §4.1, RFC 7636, RFC 7662), over HTTP
against the three services running as separate processes."""

from __future__ import annotations

import time

import aiohttp
from redis.asyncio import Redis

from tests.oauth import (
    Registered,
    Stack,
    authorize,
    code_request,
    exchange,
    introspect,
    make_client,
    make_scope,
    make_user,
    new_verifier,
    s256,
)


async def _api(redis: Redis, scope_names: list[str]) -> Registered:
    """A resource server allowed to introspect."""
    return await make_client(redis, scope_names, introspect=True, name="Resource server")


def assert_token_response(reply, scope: str) -> None:
    assert reply.status == 200, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Pragma"] == "no-cache"
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["expires_in"] == 3600
    assert reply.body["scope"] == scope
    # At least 256 bits of entropy in the secret part of the token.
    assert len(reply.body["access_token"].split(".", 1)[1]) >= 43


async def test_confidential_client_basic_auth_approve_all_then_introspect(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write = await make_scope(redis), await make_scope(redis, "Write things")
    user = await make_user(redis)
    client = await make_client(redis, [read, write])
    api = await _api(redis, [read])
    params = code_request(client, f"{read} {write}")

    back = await authorize(http, stack, params, user)

    assert back["state"] == params["state"]
    assert back["iss"] == stack.issuer  # RFC 9207
    assert "error" not in back
    reply = await exchange(http, stack, client, back["code"], auth="basic")
    assert_token_response(reply, f"{read} {write}")
    assert "refresh_token" not in reply.body  # refresh count 0

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
    api = await _api(redis, [read])

    back = await authorize(http, stack, code_request(client, f"{read} {write}"), user, tick=[write])

    reply = await exchange(http, stack, client, back["code"], auth="post")
    assert_token_response(reply, write)
    assert reply.body["refresh_token"] != reply.body["access_token"]
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["scope"] == write


async def test_deny_redirects_with_access_denied_and_state(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read])
    params = code_request(client, read)

    back = await authorize(http, stack, params, user, decision="deny")

    assert back["error"] == "access_denied"
    assert back["error_description"]
    assert back["state"] == params["state"]
    assert back["iss"] == stack.issuer
    assert "code" not in back


async def test_approving_no_scope_is_a_denial(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read])

    back = await authorize(http, stack, code_request(client, read), user, tick=[])

    assert back["error"] == "access_denied"
    assert "code" not in back


async def test_public_client_with_pkce_s256(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read], client_type="public")
    api = await _api(redis, [read])
    verifier = new_verifier()
    params = code_request(client, read, code_challenge=s256(verifier), code_challenge_method="S256")

    back = await authorize(http, stack, params, user)
    reply = await exchange(http, stack, client, back["code"], auth="none", code_verifier=verifier)

    assert_token_response(reply, read)
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["client_id"] == client.client_id


async def test_public_client_with_pkce_plain_as_the_default_method(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read], client_type="public")
    verifier = new_verifier()
    # RFC 7636 §4.3: without code_challenge_method the method is plain.
    params = code_request(client, read, code_challenge=verifier)

    back = await authorize(http, stack, params, user)
    reply = await exchange(http, stack, client, back["code"], auth="none", code_verifier=verifier)

    assert_token_response(reply, read)


async def test_a_signed_in_person_goes_straight_to_the_approval_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read])
    await authorize(http, stack, code_request(client, read), user)

    async with http.get(
        f"{stack.authorize}/authorize", params=code_request(client, read), allow_redirects=False
    ) as second:
        assert second.status == 303
        assert second.headers["Location"].startswith("/consent?interaction=")


async def test_redirect_uri_may_be_omitted_with_one_registered_and_then_at_token_too(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read])
    params = code_request(client, read)
    del params["redirect_uri"]

    back = await authorize(http, stack, params, user)

    assert (await exchange(http, stack, client, back["code"], redirect_uri=None)).status == 200


async def test_the_redirect_uri_query_is_kept(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    uri = "https://app.example.com/cb?tenant=blue"
    client = await make_client(redis, [read], redirect_uris=[uri])
    params = code_request(client, read, redirect_uri=uri)

    back = await authorize(http, stack, params, user)

    # RFC 6749 §3.1.2: the registered query component is retained.
    assert back["tenant"] == "blue"
    reply = await exchange(http, stack, client, back["code"], redirect_uri=uri)
    assert reply.status == 200
