"""POST /token with grant_type=refresh_token (RFC 6749 §6) and refresh token rotation
(RFC 9700 §4.14.2): every error of RFC 6749 §5.2 this grant can produce, with status,
body and headers; the client's refresh count; reuse of a rotated token, inside and
outside the grace window (TESSERA_REFRESH_REUSE_GRACE); concurrent refreshes. Over HTTP
against the running services."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import pytest
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from redis.asyncio import Redis

from shared.storage import clients, families, users
from tests.assertions import (
    INVALID_GRANT_DESCRIPTION,
    assert_error,
    assert_invalid_client,
    assert_invalid_grant,
    assert_invalid_scope,
    assert_no_store,
    assert_token_response,
)
from tests.flows import (
    exchange,
    grant_family,
    introspect,
    is_active,
    live_tokens,
    new_request_id,
    new_verifier,
    obtain_code,
    refresh,
    s256,
    token_request,
)
from tests.records import (
    PASSWORD,
    REDIRECT_URI,
    Registered,
    Setup,
    make_client,
    make_resource_server,
    make_scope,
    make_user,
    unique,
)
from tests.replies import basic_auth_for, post_form
from tests.stack import REFRESH_REUSE_GRACE, Stack, logged_lines, security_events_of
from tests.waiting import until_changes_heard

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Chain:
    """What a code flow issued: the setup, a resource server for introspection, and the
    tokens of the exchange."""

    setup: Setup
    api: Registered
    access_token: str
    refresh_token: str

    @property
    def client(self) -> Registered:
        return self.setup.client

    @property
    def family(self) -> str:
        return grant_family(self.refresh_token)


async def start_chain(
    http: aiohttp.ClientSession,
    stack: Stack,
    redis: Redis,
    *,
    scope_count: int = 1,
    grant: int | None = None,
    **client_options: Any,
) -> Chain:
    """A client registered for ``scope_count`` fresh scopes, a person who approves the
    first ``grant`` of them (default all), and the code exchanged for tokens."""
    names = [await make_scope(redis) for _ in range(scope_count)]
    user = await make_user(redis)
    client = await make_client(redis, names, **client_options)
    s = Setup(" ".join(names[:grant]), user, client)
    api = await make_resource_server(redis, names)
    pkce: dict[str, str] = {}
    verifier: dict[str, str] = {}
    auth = "basic"
    if client.client.is_public:
        auth = "none"
        verifier["code_verifier"] = new_verifier()
        pkce = {"code_challenge": s256(verifier["code_verifier"]), "code_challenge_method": "S256"}
    code = await obtain_code(http, stack, s, **pkce)
    reply = await exchange(http, stack, client, code, auth=auth, **verifier)
    assert_token_response(reply, refresh=True, scope=s.scope)
    return Chain(s, api, reply.body["access_token"], reply.body["refresh_token"])


async def live_refresh_tokens(http: aiohttp.ClientSession, stack: Stack, chain: Chain) -> int:
    """How many refresh tokens of the chain could still be used (not rotated away), as
    token management lists them."""
    listed = await live_tokens(http, stack, client=chain.client.client_id)
    return sum(t["kind"] == "refresh_token" and t["family"] == chain.family for t in listed)


# --- success and rotation ----------------------------------------------------------------


async def test_a_refresh_rotates_the_refresh_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)

    reply = await refresh(http, stack, chain.client, chain.refresh_token)

    assert_token_response(reply, refresh=True, scope=chain.setup.scope)
    assert set(reply.body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert reply.body["expires_in"] == 3600
    assert "WWW-Authenticate" not in reply.headers
    new_access, new_refresh = reply.body["access_token"], reply.body["refresh_token"]
    # RFC 9700 §4.14.2: a new refresh token, in the same grant family.
    assert new_refresh != chain.refresh_token
    assert new_access != chain.access_token
    assert grant_family(new_refresh) == grant_family(new_access) == chain.family
    # The new access token stands for the same person and grant.
    person = await users.get(redis, chain.setup.user)
    assert person is not None
    info = await introspect(http, stack, chain.api, new_access)
    assert info.status == 200
    assert info.body["active"] is True
    assert info.body["username"] == chain.setup.user
    assert info.body["sub"] == person.sub
    assert info.body["client_id"] == chain.client.client_id
    assert info.body["scope"] == chain.setup.scope
    assert info.body["exp"] - info.body["iat"] == 3600

    # The old refresh token is used up; the new one works.
    assert_invalid_grant(await refresh(http, stack, chain.client, chain.refresh_token))
    assert_token_response(await refresh(http, stack, chain.client, new_refresh), refresh=True)


async def test_a_refresh_token_from_the_password_grant(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    username = await make_user(redis)
    client = await make_client(
        redis, [read], grants=["password"], redirect_uris=[], refresh_count=2
    )
    api = await make_resource_server(redis, [read])
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    first = await token_request(http, stack, client, {**form, "scope": read})
    assert_token_response(first, refresh=True, scope=read)

    reply = await refresh(http, stack, client, first.body["refresh_token"])

    assert_token_response(reply, refresh=True, scope=read)
    assert reply.body["refresh_token"] != first.body["refresh_token"]
    person = await users.get(redis, username)
    assert person is not None
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["username"] == username
    assert info.body["sub"] == person.sub
    assert_invalid_grant(await refresh(http, stack, client, first.body["refresh_token"]))


@pytest.mark.parametrize("refresh_count", [1, 2])
async def test_the_refresh_count_bounds_the_chain(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, refresh_count: int
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=refresh_count)
    presented = [chain.refresh_token]

    # Exactly refresh_count refreshes succeed; the last answer carries no refresh token,
    # since nothing could be done with it (shared.storage.token_minting.mint).
    for n in range(1, refresh_count + 1):
        reply = await refresh(http, stack, chain.client, presented[-1])
        last = n == refresh_count
        assert_token_response(reply, refresh=not last, scope=chain.setup.scope)
        if not last:
            presented.append(reply.body["refresh_token"])
    assert await is_active(http, stack, chain.api, reply.body["access_token"])
    assert await live_refresh_tokens(http, stack, chain) == 0

    # Every refresh token of the chain is used up.
    for token in presented:
        assert_invalid_grant(await refresh(http, stack, chain.client, token))
    # Within the grace window that revoked nothing: the last access token still works.
    assert await is_active(http, stack, chain.api, reply.body["access_token"])


async def test_a_refresh_count_lowered_later_is_honoured(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=3)
    first = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_token_response(first, refresh=True)
    token = first.body["refresh_token"]  # refreshed once so far
    record = await clients.get(redis, chain.client.client_id)
    assert record is not None

    # Once is all the client may now do.
    record.refresh_count = 1
    await clients.save(redis, record)
    await until_changes_heard(http, stack, redis, chain.setup.scope)
    assert_invalid_grant(await refresh(http, stack, chain.client, token))

    # The refused request did not use the token up: with the count raised again it works,
    # and the answer follows the new count (2: this is the last refresh).
    record.refresh_count = 2
    await clients.save(redis, record)
    await until_changes_heard(http, stack, redis, chain.setup.scope)
    again = await refresh(http, stack, chain.client, token)
    assert_token_response(again, refresh=False, scope=chain.setup.scope)


async def test_a_client_whose_refresh_count_dropped_to_zero_is_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=3)
    record = await clients.get(redis, chain.client.client_id)
    assert record is not None
    record.refresh_count = 0
    await clients.save(redis, record)
    await until_changes_heard(http, stack, redis, chain.setup.scope)

    reply = await refresh(http, stack, chain.client, chain.refresh_token)

    # A refresh count of 0 means the client may not use the refresh_token grant at all.
    assert_error(reply, 400, "unauthorized_client")
    record.refresh_count = 3
    await clients.save(redis, record)
    await until_changes_heard(http, stack, redis, chain.setup.scope)
    assert_token_response(
        await refresh(http, stack, chain.client, chain.refresh_token), refresh=True
    )


# --- scope (RFC 6749 §6) -----------------------------------------------------------------


async def test_the_scope_may_narrow_and_a_later_refresh_gets_it_all_back(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, scope_count=2, refresh_count=5)
    read, write = chain.setup.scope.split(" ")

    narrowed = await refresh(http, stack, chain.client, chain.refresh_token, scope=write)

    assert_token_response(narrowed, refresh=True, scope=write)
    info = await introspect(http, stack, chain.api, narrowed.body["access_token"])
    assert info.body["active"] is True
    assert info.body["scope"] == write

    # RFC 6749 §6: the new refresh token stands for the whole original grant.
    full = await refresh(http, stack, chain.client, narrowed.body["refresh_token"])

    assert_token_response(full, refresh=True)
    assert set(full.body["scope"].split(" ")) == {read, write}
    info = await introspect(http, stack, chain.api, full.body["access_token"])
    assert set(info.body["scope"].split(" ")) == {read, write}


async def test_a_wider_scope_is_invalid_scope_and_does_not_use_the_token_up(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    # The client is registered for two scopes; the person approved only the first.
    chain = await start_chain(http, stack, redis, scope_count=2, grant=1, refresh_count=5)
    read = chain.setup.scope
    (write,) = set(chain.client.client.scopes) - {read}
    elsewhere = await make_scope(redis)

    for scope in (
        f"{read} {write}",  # beyond the grant, though the client is registered for it
        write,
        elsewhere,  # defined, but not the client's
        unique("undefined"),
        f'{read}"',  # malformed (RFC 6749 §3.3)
        f"{read}  {read}",
    ):
        reply = await refresh(http, stack, chain.client, chain.refresh_token, scope=scope)
        assert_invalid_scope(reply)

    assert_token_response(
        await refresh(http, stack, chain.client, chain.refresh_token), refresh=True, scope=read
    )


async def test_a_scope_the_client_lost_is_invalid_scope_unless_narrowed_away(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, scope_count=2, refresh_count=5)
    read, _lost = chain.setup.scope.split(" ")
    record = await clients.get(redis, chain.client.client_id)
    assert record is not None
    record.scopes = [read]
    await clients.save(redis, record)
    await until_changes_heard(http, stack, redis, read)

    assert_invalid_scope(await refresh(http, stack, chain.client, chain.refresh_token))

    reply = await refresh(http, stack, chain.client, chain.refresh_token, scope=read)
    assert_token_response(reply, refresh=True, scope=read)


# --- invalid_grant (400) -----------------------------------------------------------------


async def test_a_refresh_token_of_another_client_is_invalid_grant_and_not_used_up(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    thief = await make_client(redis, chain.client.client.scopes, refresh_count=5)

    stolen = await refresh(http, stack, thief, chain.refresh_token)

    # RFC 6749 §6: the token is bound to the client it was issued to.
    assert_invalid_grant(stolen)
    assert await live_tokens(http, stack, client=thief.client_id) == []
    # Checked before the token is used: the rightful client can still refresh.
    assert_token_response(
        await refresh(http, stack, chain.client, chain.refresh_token), refresh=True
    )


async def test_another_client_presenting_a_rotated_token_revokes_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    rotated = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_token_response(rotated, refresh=True)
    thief = await make_client(
        redis, chain.client.client.scopes, client_type="public", refresh_count=5
    )
    await asyncio.sleep(REFRESH_REUSE_GRACE + 0.2)  # past the grace: a reuse would revoke

    stolen = await refresh(http, stack, thief, chain.refresh_token)

    # Bound to its client (RFC 6749 §10.4) even once rotated: to another client the token
    # is unknown, so it cannot revoke the owner's grant by presenting it.
    assert_invalid_grant(stolen)
    assert await is_active(http, stack, chain.api, rotated.body["access_token"])


async def test_an_unknown_refresh_token_is_invalid_grant(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)

    for token in (
        families.new_value(families.new_family(), 32),  # well-formed, never issued
        families.new_value(chain.family, 32),  # in a real family, never issued
        chain.access_token,  # an access token is not a refresh token
        "not-a-token",
        "x" * 300,
        "a.b",
        ".",
        "{g:x}.y",
        "\u00e9.x",
    ):
        assert_invalid_grant(await refresh(http, stack, chain.client, token))

    # None of that touched the grant.
    assert await is_active(http, stack, chain.api, chain.access_token)
    assert_token_response(
        await refresh(http, stack, chain.client, chain.refresh_token), refresh=True
    )


# --- reuse of a rotated refresh token (RFC 9700 §4.14.2) -------------------------------------


async def test_reuse_within_the_grace_window_is_refused_and_revokes_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    rotated = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_token_response(rotated, refresh=True)

    again = await refresh(http, stack, chain.client, chain.refresh_token)

    # A client's own race (README: refresh races): refused, but the family stays valid.
    assert_invalid_grant(again)
    assert await is_active(http, stack, chain.api, rotated.body["access_token"])
    assert_token_response(
        await refresh(http, stack, chain.client, rotated.body["refresh_token"]), refresh=True
    )


async def test_reuse_late_in_the_grace_window_still_revokes_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    before = time.time()  # the rotation comes after: the reuse below is surely within
    rotated = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_token_response(rotated, refresh=True)

    # The rotation is stamped in milliseconds (tests/test_storage.py), so the grace is the
    # whole configured time: stamped in whole seconds, a reuse this late would mostly fall
    # after it, and revoke.
    await asyncio.sleep(before + REFRESH_REUSE_GRACE - 0.4 - time.time())
    again = await refresh(http, stack, chain.client, chain.refresh_token)

    assert_invalid_grant(again)
    # README: "a repeat within that time of the rotation gets invalid_grant and revokes
    # nothing, so the winner's tokens stay good".
    assert await is_active(http, stack, chain.api, rotated.body["access_token"])


async def test_reuse_after_the_grace_window_revokes_the_whole_family(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    first = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_token_response(first, refresh=True)
    newest = await refresh(http, stack, chain.client, first.body["refresh_token"])
    assert_token_response(newest, refresh=True)
    assert await is_active(http, stack, chain.api, newest.body["access_token"])
    await asyncio.sleep(REFRESH_REUSE_GRACE + 0.3)

    # The first refresh token, rotated away long ago, comes back: stolen, or the client
    # is broken. Either way the grant can no longer be trusted.
    reused = await refresh(http, stack, chain.client, chain.refresh_token)

    assert_invalid_grant(reused)
    for access_token in (
        chain.access_token,
        first.body["access_token"],
        newest.body["access_token"],
    ):
        info = await introspect(http, stack, chain.api, access_token)
        assert info.status == 200
        assert info.body == {"active": False}
        assert_no_store(info)
    assert_invalid_grant(await refresh(http, stack, chain.client, newest.body["refresh_token"]))
    # Token management lists nothing of it (what it leaves in Redis: tests/test_storage.py).
    assert await live_tokens(http, stack, client=chain.client.client_id) == []


async def test_concurrent_refreshes_of_one_token_exactly_one_succeeds(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)

    replies = await asyncio.gather(
        *(refresh(http, stack, chain.client, chain.refresh_token) for _ in range(8))
    )

    winners = [r for r in replies if r.status == 200]
    losers = [r for r in replies if r.status != 200]
    assert len(winners) == 1, [r.body for r in replies]
    assert len(losers) == 7
    for reply in losers:
        assert_invalid_grant(reply)
    (winner,) = winners
    assert_token_response(winner, refresh=True, scope=chain.setup.scope)
    # The losers came within the grace window: the family stands, the winner's tokens work.
    assert await is_active(http, stack, chain.api, winner.body["access_token"])
    assert await live_refresh_tokens(http, stack, chain) == 1
    assert_token_response(
        await refresh(http, stack, chain.client, winner.body["refresh_token"]), refresh=True
    )


# --- the end of a chain: the spent last token is not a stolen one -------------------------


async def test_the_spent_last_token_an_authlib_client_keeps_is_refused_without_revoking(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """RFC 6749 §6: when the answer carries no new refresh token the client may keep the
    old one, and Authlib does. The chain's last refresh (refresh count 1) answers without
    one; Authlib, asked to refresh again later, presents the spent token. That is no
    reuse (no newer token exists for a thief to hold): invalid_grant, nothing revoked."""
    scope = await make_scope(redis)
    client = await make_client(redis, [scope], client_type="public", refresh_count=1)
    setup = Setup(scope, await make_user(redis), client)
    api = await make_resource_server(redis, [scope])
    verifier = new_verifier()
    code = await obtain_code(
        http, stack, setup, code_challenge=s256(verifier), code_challenge_method="S256"
    )
    token_url = f"{stack.token}/token"
    trace = new_request_id()
    async with AsyncOAuth2Client(
        client_id=client.client_id,
        token_endpoint_auth_method="none",
        redirect_uri=REDIRECT_URI,
        scope=scope,
    ) as oauth:
        first = await oauth.fetch_token(token_url, code=code, code_verifier=verifier)
        spent = first["refresh_token"]
        family = grant_family(spent)

        last = await oauth.refresh_token(token_url)
        assert "refresh_token" not in last or last["refresh_token"] == spent
        # Authlib kept the spent token, as RFC 6749 §6 allows.
        assert oauth.token["refresh_token"] == spent
        access_token = oauth.token["access_token"]
        assert access_token != first["access_token"]
        assert await is_active(http, stack, api, access_token)
        # Past the grace window: a real reuse would revoke the family now.
        await asyncio.sleep(REFRESH_REUSE_GRACE + 0.3)

        with pytest.raises(OAuthError) as refused:
            await oauth.refresh_token(token_url, headers={"X-Request-ID": trace})

    assert refused.value.error == "invalid_grant"
    assert refused.value.description == INVALID_GRANT_DESCRIPTION
    # Nothing was revoked: the access token of the last refresh is still good.
    assert await is_active(http, stack, api, access_token)
    lines = await logged_lines(http, stack.token, "token")
    assert security_events_of(lines, family) == []
    (why,) = [
        line
        for line in lines
        if line.get("request_id") == trace and line["logger"] == "tessera.web"
    ]
    assert "invalid_grant (refresh token exhausted" in why["message"]
    assert spent not in "\n".join(str(line) for line in lines)


async def test_a_token_rotated_away_still_revokes_the_family_at_the_end_of_the_chain(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The contrast: in the same exhausted chain, a token that was replaced by a newer
    one (RFC 9700 §4.14.2) comes back: one of its two holders is an attacker."""
    chain = await start_chain(http, stack, redis, refresh_count=2)
    middle = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_token_response(middle, refresh=True)
    last = await refresh(http, stack, chain.client, middle.body["refresh_token"])
    assert_token_response(last, refresh=False)
    assert await is_active(http, stack, chain.api, last.body["access_token"])
    await asyncio.sleep(REFRESH_REUSE_GRACE + 0.3)

    assert_invalid_grant(await refresh(http, stack, chain.client, chain.refresh_token))

    info = await introspect(http, stack, chain.api, last.body["access_token"])
    assert info.body == {"active": False}
    lines = await logged_lines(http, stack.token, "token")
    assert security_events_of(lines, chain.family) == ["refresh_token_reused"]


# --- invalid_client (401) ----------------------------------------------------------------


async def test_client_authentication_failures_do_not_use_the_token_up(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    wrong = Registered(chain.client.client, "not-the-secret")
    form = {"grant_type": "refresh_token", "refresh_token": chain.refresh_token}

    for auth in ("basic", "post", "none"):
        assert_invalid_client(await token_request(http, stack, wrong, form, auth=auth))
    await clients.set_enabled(redis, chain.client.client_id, False)
    await until_changes_heard(http, stack, redis, chain.setup.scope)
    disabled = await refresh(http, stack, chain.client, chain.refresh_token)
    assert_invalid_client(disabled)
    assert disabled.headers["WWW-Authenticate"] == 'Basic realm="tessera", charset="UTF-8"'

    await clients.set_enabled(redis, chain.client.client_id, True)
    await until_changes_heard(http, stack, redis, chain.setup.scope)
    assert_token_response(
        await refresh(http, stack, chain.client, chain.refresh_token), refresh=True
    )


# --- invalid_request (400) ---------------------------------------------------------------


async def test_a_missing_or_repeated_refresh_token_is_invalid_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=5)
    token = chain.refresh_token

    # Missing, and sent empty (RFC 6749 §3.1: treated as omitted).
    for form in (
        {"grant_type": "refresh_token"},
        {"grant_type": "refresh_token", "refresh_token": ""},
    ):
        assert_error(await token_request(http, stack, chain.client, form), 400, "invalid_request")
    # RFC 6749 §3.2: repeated, even with the same value.
    headers = {"Content-Type": FORM, **basic_auth_for(chain.client)}
    for body in (
        f"grant_type=refresh_token&refresh_token={token}&refresh_token={token}",
        f"grant_type=refresh_token&refresh_token={token}&refresh_token=",
    ):
        reply = await post_form(http, f"{stack.token}/token", body, headers)
        assert_error(reply, 400, "invalid_request")

    assert_token_response(await refresh(http, stack, chain.client, token), refresh=True)


# --- client kinds ------------------------------------------------------------------------


async def test_a_jwt_client_gets_a_jwt_access_token_on_refresh(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, refresh_count=2, jwt_access_tokens=True)

    reply = await refresh(http, stack, chain.client, chain.refresh_token)

    assert_token_response(reply, refresh=True, scope=chain.setup.scope)
    access_token = reply.body["access_token"]
    assert access_token.count(".") == 2  # a compact JWS (RFC 7515 §7.1)
    assert jwt.get_unverified_header(access_token)["typ"] == "at+jwt"  # RFC 9068 §2.1
    claims = jwt.decode(access_token, options={"verify_signature": False})
    assert claims["client_id"] == chain.client.client_id
    assert claims["scope"] == chain.setup.scope
    assert claims["iss"] == stack.issuer
    assert grant_family(claims["jti"]) == chain.family
    # The refresh token itself stays opaque.
    assert reply.body["refresh_token"].count(".") == 1
    info = await introspect(http, stack, chain.api, access_token)
    assert info.body["active"] is True
    assert info.body["scope"] == chain.setup.scope
    assert info.body["sub"] == claims["sub"]
    assert info.body["exp"] == claims["exp"]


async def test_a_public_client_refreshes_with_its_client_id_alone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    chain = await start_chain(http, stack, redis, client_type="public", refresh_count=2)
    assert chain.client.secret is None
    form = {"grant_type": "refresh_token", "refresh_token": chain.refresh_token}

    # A public client cannot add a secret it does not have.
    pretender = Registered(chain.client.client, "a-secret-it-never-had")
    assert_invalid_client(await token_request(http, stack, pretender, form, auth="post"))

    reply = await token_request(http, stack, chain.client, form, auth="none")

    assert_token_response(reply, refresh=True, scope=chain.setup.scope)
    assert await is_active(http, stack, chain.api, reply.body["access_token"])
