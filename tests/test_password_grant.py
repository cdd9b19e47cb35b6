"""POST /token with grant_type=password (RFC 6749 §4.3): every error of RFC 6749 §5.2 this
grant can produce, with status, body and headers; the brute-force limit it shares with
the login page (RFC 6749 §10.7); a client not allowed the grant gets nothing. (The
sign-in limits themselves, from many addresses: tests/test_login_throttle.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.storage import users
from tests.assertions import (
    assert_error,
    assert_invalid_client,
    assert_invalid_grant,
    assert_invalid_scope,
    assert_token_response,
)
from tests.flows import (
    code_request,
    grant_family,
    introspect,
    live_tokens,
    start_authorization,
    token_request,
)
from tests.records import (
    PASSWORD,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_user,
    unique,
)
from tests.replies import (
    Reply,
    basic_auth_for,
    csrf_token,
    fetch,
    page_message,
    post_form,
    query_of,
)
from tests.sign_in_limits import PAIR_LIMIT
from tests.stack import Stack

FORM = "application/x-www-form-urlencoded"
LIMITED_PAGE = "Too many sign-in attempts. Try again in "


async def password_client(redis: Redis, scope_names: list[str], **options: Any) -> Registered:
    """A client allowed the password grant (and nothing else)."""
    return await make_client(redis, scope_names, grants=["password"], redirect_uris=[], **options)


async def password_grant(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    username: str | None,
    password: str | None = PASSWORD,
    *,
    auth: str = "basic",
    **extra: str,
) -> Reply:
    """POST /token with grant_type=password; None leaves username or password out."""
    form = {"grant_type": "password", **extra}
    if username is not None:
        form["username"] = username
    if password is not None:
        form["password"] = password
    return await token_request(http, stack, client, form, auth=auth)


def assert_too_many_requests(reply: Reply) -> None:
    assert_error(reply, 429, "temporarily_unavailable")
    assert 1 <= int(reply.headers["Retry-After"]) <= 900


async def assert_no_failure_counted(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, username: str, scope: str
) -> None:
    """No failed sign-in was counted against ``username`` from here: every one of the
    limit's failures is still to be had, and no more (shared.web.login_throttle). Spends
    them: the username is limited here afterwards."""
    for i in range(PAIR_LIMIT):
        guess = await password_grant(http, stack, client, username, f"guess {i}", scope=scope)
        assert_invalid_grant(guess)
    assert_too_many_requests(await password_grant(http, stack, client, username, scope=scope))


# --- success ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_a_person_s_password_gets_tokens_with_a_refresh_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, auth: str
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read], refresh_count=3)

    reply = await password_grant(http, stack, client, user, scope=read, auth=auth)

    assert_token_response(reply, refresh=True, scope=read)
    assert reply.body["expires_in"] == 3600
    assert set(reply.body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert reply.body["refresh_token"] != reply.body["access_token"]
    # Both tokens belong to one new grant family.
    assert grant_family(reply.body["refresh_token"]) == grant_family(reply.body["access_token"])


async def test_no_refresh_token_when_the_refresh_count_is_zero(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read], refresh_count=0)

    reply = await password_grant(http, stack, client, user, scope=read)

    assert_token_response(reply, refresh=False, scope=read)
    # Nor is one kept (how the token is stored: tests/test_storage.py).
    listed = await live_tokens(http, stack, client=client.client_id)
    assert [token["kind"] for token in listed] == ["access_token"]


async def test_introspection_names_the_person(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    username = await make_user(redis)
    person = await users.get(redis, username)
    assert person is not None
    client = await password_client(redis, [read])
    api = await make_resource_server(redis, [read])

    reply = await password_grant(http, stack, client, username, scope=read)
    assert_token_response(reply, refresh=False)

    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.status == 200
    assert info.body["active"] is True
    assert info.body["username"] == username
    assert info.body["owner_id"] == username
    assert info.body["sub"] == person.sub
    assert info.body["sub"] != client.client_id
    assert info.body["client_id"] == client.client_id
    assert info.body["scope"] == read
    # The family is listed under the person, for token management.
    family = grant_family(reply.body["access_token"])
    listed = await live_tokens(http, stack, user=username)
    assert [(token["family"], token["kind"]) for token in listed] == [(family, "access_token")]


async def test_a_public_client_authenticates_with_its_client_id_alone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read], client_type="public", refresh_count=1)
    assert client.secret is None

    reply = await password_grant(http, stack, client, user, scope=read, auth="none")

    assert_token_response(reply, refresh=True, scope=read)
    # A public client cannot add a secret it does not have.
    pretender = Registered(client.client, "a-secret-it-never-had")
    assert_invalid_client(
        await password_grant(http, stack, pretender, user, scope=read, auth="post")
    )


# --- unauthorized_client (400): the attack test -----------------------------------------


async def test_a_client_not_allowed_the_password_grant_gets_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    # A client that may do everything else, refresh tokens included.
    client = await make_client(
        redis,
        [read],
        grants=["authorization_code", "implicit", "client_credentials"],
        refresh_count=5,
        default_scopes=[read],
    )

    right = await password_grant(http, stack, client, user, scope=read)
    wrong = await password_grant(http, stack, client, user, "not the password", scope=read)

    assert_error(right, 400, "unauthorized_client")
    assert right.body["error_description"] == "The client is not allowed to use this grant type."
    assert wrong.body == right.body
    assert_error(wrong, 400, "unauthorized_client")
    # Nothing was issued to the client or for the person...
    assert await live_tokens(http, stack, client=client.client_id) == []
    assert await live_tokens(http, stack, user=user) == []
    # ...and the password was never checked: such a client cannot probe passwords, nor
    # lock a person out by spending their failed sign-ins.
    await assert_no_failure_counted(http, stack, await password_client(redis, [read]), user, read)


# --- invalid_grant (400) ---------------------------------------------------------------


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read], refresh_count=1)

    wrong_password = await password_grant(http, stack, client, user, "not the password", scope=read)
    unknown_user = await password_grant(http, stack, client, unique("nobody"), scope=read)
    # Usernames are case-sensitive: another case is another (unknown) user.
    other_case = await password_grant(http, stack, client, user.upper(), scope=read)

    for reply in (wrong_password, unknown_user, other_case):
        assert_invalid_grant(reply)
    assert wrong_password.body == unknown_user.body == other_case.body
    assert await live_tokens(http, stack, client=client.client_id) == []


async def test_after_too_many_failures_the_right_password_is_refused_here_and_at_login(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read], grants=["authorization_code", "password"])

    wrong = await asyncio.gather(
        *(
            password_grant(http, stack, client, user, f"guess {i}", scope=read)
            for i in range(PAIR_LIMIT)
        )
    )
    for reply in wrong:
        assert_invalid_grant(reply)

    limited = await password_grant(http, stack, client, user, scope=read)

    # Refused without a check, with 429 and Retry-After (RFC 6585 §4): the right
    # password included, from this address, until the window ends.
    assert_too_many_requests(limited)
    assert await live_tokens(http, stack, client=client.client_id) == []

    # One limit for both doors: the login page now refuses the right password too.
    started = await start_authorization(http, stack, code_request(client, read))
    login = started.headers["Location"]
    page = await fetch(http, "GET", f"{stack.authorize}{login}")
    answer = await fetch(
        http,
        "POST",
        f"{stack.authorize}/login",
        data={
            "interaction": query_of(login)["interaction"],
            "csrf_token": csrf_token(page.text),
            "username": user,
            "password": PASSWORD,
        },
    )
    assert answer.status == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 900
    assert "Location" not in answer.headers
    assert page_message(answer.text).startswith(LIMITED_PAGE)


async def test_concurrent_guesses_cannot_outrun_the_failure_limit(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read])

    # Three times the limit in wrong guesses at once; the right password once they have
    # all been answered.
    wrong = await asyncio.gather(
        *(
            password_grant(http, stack, client, user, f"guess {i}", scope=read)
            for i in range(3 * PAIR_LIMIT)
        )
    )
    right = await password_grant(http, stack, client, user, scope=read)

    # RFC 6749 §10.7: each attempt is counted before its check, so however they are
    # timed no more than the limit's worth of passwords is tried; the others, and the
    # right password after them, are refused unchecked.
    checked = [reply for reply in wrong if reply.status == 400]
    assert len(checked) == PAIR_LIMIT
    for reply in checked:
        assert_invalid_grant(reply)
    for reply in wrong:
        if reply.status != 400:
            assert_too_many_requests(reply)
    assert_too_many_requests(right)
    assert await live_tokens(http, stack, client=client.client_id) == []


async def test_a_success_clears_the_failure_count(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read])
    for i in range(2):
        assert_invalid_grant(
            await password_grant(http, stack, client, user, f"guess {i}", scope=read)
        )

    assert_token_response(
        await password_grant(http, stack, client, user, scope=read), refresh=False
    )

    await assert_no_failure_counted(http, stack, client, user, read)


# --- invalid_request (400) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("{user}", None, id="missing-password"),
        pytest.param(None, PASSWORD, id="missing-username"),
        pytest.param(None, None, id="missing-both"),
        # RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
        pytest.param("{user}", "", id="empty-password"),
        pytest.param("", PASSWORD, id="empty-username"),
    ],
)
async def test_a_missing_username_or_password_is_invalid_request(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    username: str | None,
    password: str | None,
) -> None:
    read = await make_scope(redis)
    user = unique("alice")  # refused before any lookup: no need to register
    client = await password_client(redis, [read])
    if username is not None:
        username = username.format(user=user)

    reply = await password_grant(http, stack, client, username, password, scope=read)

    assert_error(reply, 400, "invalid_request")
    await assert_no_failure_counted(http, stack, client, user, read)


async def test_a_repeated_parameter_is_invalid_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = unique("alice")  # refused before any lookup
    client = await password_client(redis, [read])
    headers = {"Content-Type": FORM, **basic_auth_for(client)}
    body = f"grant_type=password&username={user}&password=a&password=b&scope={read}"

    reply = await post_form(http, f"{stack.token}/token", body, headers)

    assert_error(reply, 400, "invalid_request")
    # The request was refused before any password check.
    await assert_no_failure_counted(http, stack, client, user, read)


# --- invalid_scope (400) ---------------------------------------------------------------


async def test_without_scope_the_clients_default_scopes_are_granted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write = await make_scope(redis), await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read, write], default_scopes=[write])

    reply = await password_grant(http, stack, client, user)

    assert_token_response(reply, refresh=False, scope=write)


async def test_without_scope_and_without_default_scopes_is_invalid_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = unique("alice")  # refused before any lookup
    client = await password_client(redis, [read])

    reply = await password_grant(http, stack, client, user)

    assert_invalid_scope(reply)
    await assert_no_failure_counted(http, stack, client, user, read)


async def test_a_scope_outside_the_clients_registration_or_malformed_is_invalid_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, other = await make_scope(redis), await make_scope(redis)
    user = unique("alice")  # refused before any lookup
    client = await password_client(redis, [read], default_scopes=[read])

    for scope in (other, unique("undefined"), f"{read} {other}", f'{read}"', f"{read}  {read}"):
        reply = await password_grant(http, stack, client, user, "not the password", scope=scope)
        assert_invalid_scope(reply)
    # The scope is checked before the password: none of these counted as a failure.
    await assert_no_failure_counted(http, stack, client, user, read)


# --- invalid_client (401) --------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_a_wrong_client_secret_is_invalid_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, auth: str
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await password_client(redis, [read])
    wrong = Registered(client.client, "not-the-secret")

    reply = await password_grant(http, stack, wrong, user, scope=read, auth=auth)

    assert_invalid_client(reply)
    await assert_no_failure_counted(http, stack, client, user, read)
