"""The implicit grant (RFC 6749 §4.2): ``response_type=token`` at /authorize, the access
token in the fragment of the redirect, never a refresh token, only for clients allowed the
grant; errors after the redirect URI is settled go in the fragment too (§4.2.2.1, RFC 9207).
Over HTTP against the running services."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from redis.asyncio import Redis
from tessera_resource_server.jwt_verification import looks_like_jwt
from yarl import URL

from shared.storage import families
from tests.flows import (
    introspect,
    live_tokens,
    sign_in_and_decide,
    start_authorization,
    verify_with_jwks,
)
from tests.records import (
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_user,
)
from tests.replies import fragment_of, query_of
from tests.stack import Stack

FRAGMENT_TOKEN_PARAMS = {"access_token", "token_type", "expires_in", "scope", "state", "iss"}


def token_request(client: Registered, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "token",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        **extra,
    }


async def implicit_client(redis: Redis, scope_names: list[str], **options: Any) -> Registered:
    return await make_client(redis, scope_names, grants=["implicit"], **options)


async def redirect_back(
    http: aiohttp.ClientSession,
    stack: Stack,
    params: dict[str, str],
    username: str,
    *,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> str:
    """The browser side through sign-in (when the browser is not signed in yet) and the
    approval page; returns the Location of the redirect back to the client."""
    decided = await sign_in_and_decide(http, stack, params, username, decision, tick)
    # The token is in this response's Location: never cached, never sent as a Referer.
    assert decided.headers["Cache-Control"] == "no-store"
    assert decided.headers["Referrer-Policy"] == "no-referrer"
    return decided.headers["Location"]


def assert_token_fragment(
    location: str, stack: Stack, params: dict[str, str], scope: str, expires_in: str | None
) -> dict[str, str]:
    """RFC 6749 §4.2.2: the token in the fragment, and only there; RFC 9207: iss."""
    redirect_uri = params.get("redirect_uri", REDIRECT_URI)
    assert location.startswith(redirect_uri + "#"), location
    back = fragment_of(location)
    expected = (
        FRAGMENT_TOKEN_PARAMS if expires_in is not None else FRAGMENT_TOKEN_PARAMS - {"expires_in"}
    )
    # Never a refresh token (§4.2.2), never a code.
    assert set(back) == expected, back
    assert back["access_token"]
    assert back["token_type"] == "Bearer"
    assert back.get("expires_in") == expires_in
    assert back["scope"] == scope
    assert back["state"] == params["state"]
    assert back["iss"] == stack.issuer
    # The redirect URI's own query is left as registered.
    assert urlsplit(location).query == urlsplit(redirect_uri).query
    return back


def assert_error_fragment(
    location: str, stack: Stack, error: str, state: str, redirect_uri: str = REDIRECT_URI
) -> dict[str, str]:
    """RFC 6749 §4.2.2.1: the error in the fragment, nothing issued."""
    assert location.startswith(redirect_uri + "#"), location
    back = fragment_of(location)
    assert set(back) == {"error", "error_description", "state", "iss"}, back
    assert back["error"] == error
    assert back["error_description"]
    assert back["state"] == state
    assert back["iss"] == stack.issuer
    assert urlsplit(location).query == urlsplit(redirect_uri).query
    return back


async def families_of(http: aiohttp.ClientSession, stack: Stack, client: Registered) -> int:
    """How many grant families of the client have live tokens (token management)."""
    return len({t["family"] for t in await live_tokens(http, stack, client=client.client_id)})


# --- approval: the token in the fragment ------------------------------------------------


async def test_approval_puts_the_access_token_in_the_fragment(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, user = await make_scope(redis), await make_user(redis)
    # A refresh count does not bring a refresh token to the implicit grant.
    client = await implicit_client(redis, [scope], refresh_count=3)
    api = await make_resource_server(redis, [scope])
    params = token_request(client, scope)

    location = await redirect_back(http, stack, params, user)

    back = assert_token_fragment(location, stack, params, scope, expires_in="3600")
    assert urlsplit(location).query == ""
    token = back["access_token"]
    assert not looks_like_jwt(token)
    assert families.family_of(token) is not None
    info = await introspect(http, stack, api, token)
    assert info.status == 200, info.body
    assert info.body["active"] is True
    assert info.body["client_id"] == client.client_id
    assert info.body["scope"] == scope
    assert info.body["username"] == user
    assert info.body["owner_id"] == user
    assert info.body["sub"] and info.body["sub"] != user
    assert info.body["exp"] - info.body["iat"] == 3600
    # One grant family, holding the access token alone.
    assert await families_of(http, stack, client) == 1


async def test_the_person_may_narrow_the_scope_and_a_never_expiring_token_has_no_expires_in(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write, user = await make_scope(redis), await make_scope(redis), await make_user(redis)
    api = await make_resource_server(redis, [read, write])
    client = await implicit_client(redis, [read, write])
    forever = await implicit_client(redis, [read], access_token_lifetime=0)

    params = token_request(client, f"{read} {write}")
    location = await redirect_back(http, stack, params, user, tick=[write])
    back = assert_token_fragment(location, stack, params, write, expires_in="3600")
    info = await introspect(http, stack, api, back["access_token"])
    assert info.body["active"] is True
    assert info.body["scope"] == write

    # RFC 6749 §4.2.2: expires_in is RECOMMENDED, so it is left out when there is none.
    params = token_request(forever, read)
    location = await redirect_back(http, stack, params, user)
    back = assert_token_fragment(location, stack, params, read, expires_in=None)
    info = await introspect(http, stack, api, back["access_token"])
    assert info.body["active"] is True
    assert "exp" not in info.body


async def test_a_redirect_uri_with_a_query_keeps_it(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, user = await make_scope(redis), await make_user(redis)
    redirect_uri = "https://app.example.com/cb?tenant=7&lang=en"
    client = await implicit_client(redis, [scope], redirect_uris=[redirect_uri])

    # RFC 6749 §3.1.2: the query component is retained; the token goes in the fragment.
    params = token_request(client, scope, redirect_uri=redirect_uri)
    location = await redirect_back(http, stack, params, user)
    assert_token_fragment(location, stack, params, scope, expires_in="3600")
    assert query_of(location) == {"tenant": "7", "lang": "en"}

    # An error goes to the fragment as well, and leaves the query alone too.
    params = token_request(client, scope, redirect_uri=redirect_uri)
    location = await redirect_back(http, stack, params, user, decision="deny")
    assert_error_fragment(location, stack, "access_denied", params["state"], redirect_uri)
    assert query_of(location) == {"tenant": "7", "lang": "en"}


async def test_a_public_implicit_client_is_not_asked_for_pkce(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, user = await make_scope(redis), await make_user(redis)
    client = await implicit_client(redis, [scope], client_type="public")
    api = await make_resource_server(redis, [scope])

    # PKCE protects a code's redemption (RFC 7636 §1); the implicit grant has no code, so
    # the public-client requirement does not apply, and PKCE parameters are ignored.
    for extra in (
        {},
        {"code_challenge": "x" * 43, "code_challenge_method": "S256"},
        {"code_challenge": "too-short", "code_challenge_method": "no-such-method"},
    ):
        params = token_request(client, scope, **extra)
        location = await redirect_back(http, stack, params, user)
        back = assert_token_fragment(location, stack, params, scope, expires_in="3600")
        info = await introspect(http, stack, api, back["access_token"])
        assert info.body["active"] is True
        assert info.body["client_id"] == client.client_id


async def test_a_jwt_client_gets_a_jwt_in_the_fragment(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, user = await make_scope(redis), await make_user(redis)
    client = await implicit_client(redis, [scope], jwt_access_tokens=True)
    api = await make_resource_server(redis, [scope])
    params = token_request(client, scope)

    location = await redirect_back(http, stack, params, user)

    back = assert_token_fragment(location, stack, params, scope, expires_in="3600")
    token = back["access_token"]
    header, claims = await verify_with_jwks(http, stack, token)
    assert header["alg"] == "ES256"
    assert claims["client_id"] == client.client_id
    assert claims["scope"] == scope
    assert claims["exp"] - claims["iat"] == 3600
    info = await introspect(http, stack, api, token)
    assert info.body["active"] is True
    assert info.body["username"] == user
    assert info.body["sub"] == claims["sub"]
    assert (info.body["iat"], info.body["exp"]) == (claims["iat"], claims["exp"])


# --- errors: in the fragment, nothing issued ----------------------------------------------


async def test_a_client_not_allowed_the_implicit_grant_gets_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The attack: a code-flow client's id used to get a token straight into a browser."""
    scope = await make_scope(redis)
    for grants in (["authorization_code"], ["client_credentials", "authorization_code"]):
        client = await make_client(redis, [scope], grants=grants)
        for pkce in ({}, {"code_challenge": "x" * 43}):
            params = token_request(client, scope, **pkce)

            started = await start_authorization(http, stack, params)

            # Refused at once: no sign-in page, no session, no interaction, no token.
            assert started.status == 303
            assert "Set-Cookie" not in started.headers
            back = assert_error_fragment(
                started.headers["Location"], stack, "unauthorized_client", params["state"]
            )
            assert "access_token" not in back
            assert query_of(started.headers["Location"]) == {}
        assert await families_of(http, stack, client) == 0
    assert not http.cookie_jar.filter_cookies(URL(stack.authorize))


async def test_an_implicit_only_client_asking_for_a_code_gets_unauthorized_client_in_the_query(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    client = await implicit_client(redis, [scope])
    params = {**token_request(client, scope), "response_type": "code"}

    started = await start_authorization(http, stack, params)

    assert started.status == 303
    location = started.headers["Location"]
    # RFC 6749 §4.1.2.1: a code request's errors go in the query.
    assert location.startswith(REDIRECT_URI + "?"), location
    assert "#" not in location
    back = query_of(location)
    assert back["error"] == "unauthorized_client"
    assert back["state"] == params["state"]
    assert back["iss"] == stack.issuer
    assert "code" not in back


async def test_denial_is_access_denied_in_the_fragment(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, user = await make_scope(redis), await make_user(redis)
    client = await implicit_client(redis, [scope])

    params = token_request(client, scope)
    location = await redirect_back(http, stack, params, user, decision="deny")
    assert_error_fragment(location, stack, "access_denied", params["state"])

    # Approving with no scope ticked is a denial too.
    params = token_request(client, scope)
    location = await redirect_back(http, stack, params, user, tick=[])
    assert_error_fragment(location, stack, "access_denied", params["state"])

    assert await families_of(http, stack, client) == 0


async def test_request_errors_are_reported_in_the_fragment(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, unregistered = await make_scope(redis), await make_scope(redis)
    client = await implicit_client(redis, [scope])
    # RFC 6749 §3.3: unknown, not registered for the client, or none (no default scope).
    for requested in ("no-such-scope", unregistered, f"{scope} {unregistered}", ""):
        params = token_request(client, requested)
        started = await start_authorization(http, stack, params)
        assert started.status == 303
        assert_error_fragment(started.headers["Location"], stack, "invalid_scope", params["state"])

    # RFC 6749 §4.2.2.1: a repeated parameter is invalid_request, in the fragment as well.
    params = token_request(client, scope)
    pairs = [*params.items(), ("scope", scope)]
    async with http.get(
        f"{stack.authorize}/authorize", params=pairs, allow_redirects=False
    ) as started:
        assert started.status == 303
        assert_error_fragment(
            started.headers["Location"], stack, "invalid_request", params["state"]
        )
    assert await families_of(http, stack, client) == 0
