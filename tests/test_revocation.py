"""Token revocation at POST /revoke (RFC 7009 §2.1-§2.3), over HTTP against the running
services.

Revoking either token of a grant revokes the whole grant family, access and refresh token
together, as webMethods Integration Server does (RFC 7009 §2.1 allows it). A client may
revoke only its own tokens; anything else, unknown or another client's, is answered 200
and changes nothing (RFC 7009 §2.2).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
from redis.asyncio import Redis
from tessera_resource_server.jwt_verification import looks_like_jwt

from shared.storage import clients, families
from tests.assertions import (
    assert_error,
    assert_invalid_client,
    assert_invalid_grant,
    assert_token_response,
)
from tests.flows import (
    exchange,
    grant_family,
    is_active,
    live_tokens,
    new_verifier,
    obtain_code,
    refresh,
    revoke,
    s256,
    token_request,
)
from tests.records import (
    Registered,
    Setup,
    make_client,
    make_resource_server,
    make_scope,
    make_setup,
)
from tests.replies import Reply, basic_auth, basic_auth_for, post_form
from tests.stack import Stack
from tests.waiting import until_heard


@dataclass(frozen=True)
class Pair:
    """The access and refresh token of one code flow, and the code they came from."""

    code: str
    access_token: str
    refresh_token: str


async def _pair(
    http: aiohttp.ClientSession, stack: Stack, setup: Setup, client: Registered | None = None
) -> Pair:
    """A code flow for ``client`` (default: the setup's) as the setup's user; the browser
    ``http`` stays signed in, so a second pair in one test costs no second sign-in."""
    client = client or setup.client
    extra: dict[str, str] = {}
    verifier = None
    if client.client.is_public:
        verifier = new_verifier()
        extra = {"code_challenge": s256(verifier), "code_challenge_method": "S256"}
    code = await obtain_code(http, stack, Setup(setup.scope, setup.user, client), **extra)
    if verifier is None:
        reply = await exchange(http, stack, client, code)
    else:
        reply = await exchange(http, stack, client, code, auth="none", code_verifier=verifier)
    assert_token_response(reply, refresh=True, scope=setup.scope)
    return Pair(code, reply.body["access_token"], reply.body["refresh_token"])


async def _setup(redis: Redis, **client_options: Any) -> tuple[Setup, Registered]:
    """A fresh scope, user and client with refresh tokens, and a resource server."""
    client_options.setdefault("refresh_count", 3)
    s = await make_setup(redis, **client_options)
    return s, await make_resource_server(redis, [s.scope])


def assert_revoked_answer(answer: tuple[int, Any, str]) -> None:
    """RFC 7009 §2.2: 200 whether or not anything was revoked; the body says nothing."""
    status, headers, body = answer
    assert status == 200, body
    assert body == ""
    assert headers["Cache-Control"] == "no-store"
    assert headers["Pragma"] == "no-cache"
    assert "WWW-Authenticate" not in headers


async def assert_family_dead(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, api: Registered, pair: Pair
) -> None:
    """Neither token of the pair works any more."""
    assert not await is_active(http, stack, api, pair.access_token)
    assert_invalid_grant(await refresh(http, stack, client, pair.refresh_token))


async def assert_family_alive(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, api: Registered, pair: Pair
) -> Reply:
    """The access token is active and the refresh token still refreshes; returns the
    refresh answer (the presented refresh token is rotated away by it)."""
    assert await is_active(http, stack, api, pair.access_token)
    refreshed = await refresh(http, stack, client, pair.refresh_token)
    assert_token_response(refreshed, refresh=True)
    return refreshed


# --- what a revocation revokes (RFC 7009 §2.1) -------------------------------------------


async def test_revoking_the_access_token_revokes_the_refresh_token_too(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)
    assert await is_active(http, stack, api, pair.access_token)

    assert_revoked_answer(await revoke(http, stack, s.client, pair.access_token))

    await assert_family_dead(http, stack, s.client, api, pair)


async def test_revoking_the_refresh_token_revokes_the_access_token_too(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)

    assert_revoked_answer(await revoke(http, stack, s.client, pair.refresh_token))

    await assert_family_dead(http, stack, s.client, api, pair)


async def test_token_type_hint_right_wrong_or_unknown_changes_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    # RFC 7009 §2.1: the hint only says where to look first; a wrong one makes the server
    # look further, an unknown one is ignored.
    for presented in ("access_token", "refresh_token"):
        for hint in ("access_token", "refresh_token", "urn:example:unknown-type"):
            pair = await _pair(http, stack, s)
            token = getattr(pair, presented)

            answer = await revoke(http, stack, s.client, token, token_type_hint=hint)

            assert_revoked_answer(answer)
            await assert_family_dead(http, stack, s.client, api, pair)


async def test_a_jwt_access_token_is_revoked_with_its_family(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis, jwt_access_tokens=True)
    by_jwt = await _pair(http, stack, s)
    by_refresh = await _pair(http, stack, s)
    for pair in (by_jwt, by_refresh):
        assert looks_like_jwt(pair.access_token)
        assert await is_active(http, stack, api, pair.access_token)

    # The JWT is recorded by its jti, so presenting the JWT finds the family ...
    assert_revoked_answer(await revoke(http, stack, s.client, by_jwt.access_token))
    # ... and so does the refresh token, which kills the JWT issued with it.
    assert_revoked_answer(await revoke(http, stack, s.client, by_refresh.refresh_token))

    for pair in (by_jwt, by_refresh):
        assert not await is_active(http, stack, api, pair.access_token)
        assert_invalid_grant(await refresh(http, stack, s.client, pair.refresh_token))


async def test_revoking_twice_is_200_both_times(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)

    assert_revoked_answer(await revoke(http, stack, s.client, pair.access_token))
    assert_revoked_answer(await revoke(http, stack, s.client, pair.access_token))
    assert_revoked_answer(await revoke(http, stack, s.client, pair.refresh_token))

    await assert_family_dead(http, stack, s.client, api, pair)


async def test_a_client_credentials_token_is_revoked(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis, grants=["client_credentials"], refresh_count=0)
    issued = await token_request(
        http, stack, s.client, {"grant_type": "client_credentials", "scope": s.scope}
    )
    assert_token_response(issued, refresh=False, scope=s.scope)
    token = issued.body["access_token"]
    assert await is_active(http, stack, api, token)

    assert_revoked_answer(await revoke(http, stack, s.client, token))

    assert not await is_active(http, stack, api, token)


async def test_a_revoked_family_is_not_resurrected_by_code_replay_or_refresh(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)
    # One refresh first: the family now holds a second access and refresh token.
    refreshed = await refresh(http, stack, s.client, pair.refresh_token)
    assert_token_response(refreshed, refresh=True)
    newer = Pair(pair.code, refreshed.body["access_token"], refreshed.body["refresh_token"])
    assert await is_active(http, stack, api, pair.access_token)

    # Revoking the first access token revokes what the refresh issued too.
    assert_revoked_answer(await revoke(http, stack, s.client, pair.access_token))
    await assert_family_dead(http, stack, s.client, api, newer)

    # Nothing issues into the revoked family again: not the code, not any refresh token.
    assert_invalid_grant(await exchange(http, stack, s.client, pair.code))
    assert_invalid_grant(await refresh(http, stack, s.client, pair.refresh_token))
    assert_invalid_grant(await refresh(http, stack, s.client, newer.refresh_token))
    for token in (pair.access_token, newer.access_token):
        assert not await is_active(http, stack, api, token)
    # Token management lists nothing of it (what it leaves in Redis: tests/test_storage.py).
    assert await live_tokens(http, stack, client=s.client.client_id) == []


# --- what is answered 200 and changes nothing (RFC 7009 §2.2) ----------------------------


async def test_an_unknown_or_garbage_token_is_200_with_an_empty_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)
    family = grant_family(pair.access_token)
    for token in (
        "unknown-token",
        "garbage \u00e9\u00e8 !@#$%^&*()",
        "x" * 5000,
        ".",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0.",
        # Shaped like ours, from a family that does not exist.
        families.new_value(families.new_family(), 32),
        # Shaped like ours, in the family of a live pair, but not one of its tokens.
        families.new_value(family, 32),
        pair.access_token[:-1],
        pair.refresh_token + "A",
    ):
        assert_revoked_answer(await revoke(http, stack, s.client, token))

    # None of them touched the live pair.
    await assert_family_alive(http, stack, s.client, api, pair)


async def test_another_clients_tokens_are_not_revoked(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The attack: a client presenting a token of another client, which it might have
    obtained from a log or a leak, must not be able to cut that client off."""
    s, api = await _setup(redis)
    victim = await _pair(http, stack, s)
    attacker = await make_client(redis, [s.scope], refresh_count=3)
    public_attacker = await make_client(redis, [s.scope], client_type="public")

    for thief in (attacker, public_attacker):
        for token in (victim.access_token, victim.refresh_token):
            for hint in ({}, {"token_type_hint": "access_token"}, {"token_type_hint": "x"}):
                assert_revoked_answer(await revoke(http, stack, thief, token, **hint))

    # The victim's family is whole: its access token is active, its refresh token works.
    refreshed = await assert_family_alive(http, stack, s.client, api, victim)
    # And the thief's own token is still its own to revoke, the victim's stays alive.
    own = await _pair(http, stack, s, attacker)
    assert_revoked_answer(await revoke(http, stack, attacker, own.access_token))
    assert not await is_active(http, stack, api, own.access_token)
    assert await is_active(http, stack, api, refreshed.body["access_token"])


# --- who may revoke (RFC 7009 §2.1, RFC 6749 §2.3) ---------------------------------------


async def test_a_public_client_revokes_with_its_client_id_alone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis, client_type="public")
    pair = await _pair(http, stack, s)
    url = stack.revoke

    # Without its client_id the client is not identified at all.
    assert_invalid_client(await post_form(http, url, {"token": pair.access_token}))
    assert await is_active(http, stack, api, pair.access_token)

    # The helper sends token and client_id, and no secret.
    assert_revoked_answer(await revoke(http, stack, s.client, pair.access_token))

    await assert_family_dead(http, stack, s.client, api, pair)


async def test_a_confidential_client_that_does_not_authenticate_is_invalid_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)
    client_id, token = s.client.client_id, pair.access_token
    url = stack.revoke
    other = await make_client(redis, [s.scope])
    assert other.secret

    for form, headers in (
        ({"token": token}, basic_auth(client_id, "not-the-secret")),
        ({"token": token}, basic_auth(client_id, other.secret)),
        ({"token": token, "client_id": client_id, "client_secret": "not-the-secret"}, None),
        # A confidential client identifying as a public one would: no secret at all.
        ({"token": token, "client_id": client_id}, None),
        ({"token": token}, None),
        ({"token": token}, basic_auth("no-such-client", "secret")),
    ):
        reply = await post_form(http, url, form, headers)
        # RFC 6749 §5.2: 401 with a Basic challenge (assert_error checks it).
        assert_invalid_client(reply)
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="tessera", charset="UTF-8"'

    def revoke() -> Awaitable[Reply]:
        return post_form(http, url, {"token": "unknown"}, basic_auth_for(s.client))

    await clients.set_enabled(redis, client_id, False)
    refused = await until_heard(revoke, lambda reply: reply.status == 401)
    assert_invalid_client(refused)
    await clients.set_enabled(redis, client_id, True)
    assert (await until_heard(revoke, lambda reply: reply.status == 200)).status == 200

    # None of the refused requests revoked anything.
    await assert_family_alive(http, stack, s.client, api, pair)


async def test_a_missing_token_is_invalid_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client = await make_client(redis, [await make_scope(redis)])
    basic = basic_auth_for(client)

    for form in ({}, {"token": ""}, {"token_type_hint": "access_token"}):
        assert_error(await post_form(http, stack.revoke, form, basic), 400, "invalid_request")


async def test_a_repeated_parameter_is_invalid_request_and_revokes_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s, api = await _setup(redis)
    pair = await _pair(http, stack, s)
    basic = basic_auth_for(s.client)

    for form in (
        [("token", pair.access_token), ("token", pair.access_token)],
        [("token", pair.access_token), ("token", "other")],
        [
            ("token", pair.access_token),
            ("token_type_hint", "access_token"),
            ("token_type_hint", "refresh_token"),
        ],
    ):
        reply = await post_form(http, stack.revoke, form, basic)
        # RFC 6749 §3.2: parameters must not be included more than once.
        assert_error(reply, 400, "invalid_request")
        assert reply.body["error_description"] == "A request parameter is repeated."

    await assert_family_alive(http, stack, s.client, api, pair)


async def test_revocation_answers_only_post(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client = await make_client(redis, [await make_scope(redis)])
    # RFC 7009 §2.1: a POST; a token in a query string would land in logs.
    async with http.get(stack.revoke, params={"token": "x"}, headers=basic_auth_for(client)) as r:
        assert r.status == 405
        # OPTIONS is a browser's CORS preflight (tests/test_cors.py), which carries no token.
        assert set(r.headers["Allow"].split(",")) == {"POST", "OPTIONS"}
