"""POST /token with grant_type=authorization_code: every error of RFC 6749 §5.2 this grant
can produce (RFC 6749 §2.3, §3.2, §4.1.3, §5.2; RFC 7636 §4.6), code single use and code
replay (RFC 6749 §4.1.2, RFC 9700 §4.2.4), over HTTP against the running services."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from redis.asyncio import Redis

from shared import clients, crypto, grants, keys
from tests.oauth import (
    REDIRECT_URI,
    Registered,
    Reply,
    Stack,
    authorize,
    basic_auth,
    code_request,
    exchange,
    introspect,
    make_client,
    make_scope,
    make_user,
    new_verifier,
    post_form,
    query_of,
    s256,
    start_authorization,
)

FORM = "application/x-www-form-urlencoded"
# The one public description of invalid_grant (shared.errors.invalid_grant).
INVALID_GRANT_DESCRIPTION = (
    "The authorization grant is invalid, expired, revoked, or was issued to another "
    "client or redirect URI."
)


@dataclass(frozen=True)
class Setup:
    scope: str
    user: str
    client: Registered
    api: Registered


async def _setup(redis: Redis, **client_options: Any) -> Setup:
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope], **client_options)
    api = await make_client(redis, [scope], introspect=True, name="Resource server")
    return Setup(scope, user, client, api)


async def _code(http: aiohttp.ClientSession, stack: Stack, s: Setup, **extra: str | None) -> str:
    """Walk /authorize through login and approval; returns the code.
    ``redirect_uri=None`` leaves the parameter out of the authorization request."""
    params = code_request(s.client, s.scope)
    for name, value in extra.items():
        if value is None:
            del params[name]
        else:
            params[name] = value
    back = await authorize(http, stack, params, s.user)
    assert "code" in back, back
    return back["code"]


async def authorize_or_error(
    http: aiohttp.ClientSession, stack: Stack, params: dict[str, str], user: str
) -> dict[str, str]:
    """Like ``authorize``, but an error redirected straight from /authorize is returned
    too (as the query of the redirect back to the client)."""
    started = await start_authorization(http, stack, params)
    assert started.status == 303, started.status
    location = started.headers["Location"]
    if location.startswith(params["redirect_uri"]):
        return query_of(location)
    return await authorize(http, stack, params, user)


def _assert_no_store(reply: Reply) -> None:
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Pragma"] == "no-cache"
    assert reply.headers["Content-Type"].startswith("application/json")


def assert_error(reply: Reply, status: int, error: str) -> None:
    """RFC 6749 §5.2: status, JSON body with error and error_description, no caching."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["error"] == error, reply.body
    assert isinstance(reply.body["error_description"], str)
    assert reply.body["error_description"]
    assert set(reply.body) == {"error", "error_description"}
    assert "access_token" not in reply.body
    _assert_no_store(reply)
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    else:
        assert "WWW-Authenticate" not in reply.headers


def assert_invalid_client(reply: Reply) -> None:
    assert_error(reply, 401, "invalid_client")
    assert reply.body["error_description"] == "Client authentication failed."


def assert_invalid_grant(reply: Reply) -> None:
    assert_error(reply, 400, "invalid_grant")
    # One description for every cause, so a caller learns nothing about the grant.
    assert reply.body["error_description"] == INVALID_GRANT_DESCRIPTION


async def _raw_post(
    http: aiohttp.ClientSession,
    url: str,
    body: str | bytes,
    headers: dict[str, str],
) -> Reply:
    async with http.post(url, data=body, headers=headers, allow_redirects=False) as r:
        return Reply(r.status, r.headers, await r.json(content_type=None))


def _token_url(stack: Stack) -> str:
    return f"{stack.token}/token"


def _unknown_code() -> str:
    return grants.new_value(grants.new_family(), 32)


def _ok(reply: Reply) -> None:
    assert reply.status == 200, reply.body
    assert reply.body["access_token"]


# --- invalid_client (401) ---------------------------------------------------------------


async def test_unknown_client_basic(stack: Stack, http: aiohttp.ClientSession) -> None:
    reply = await post_form(
        http,
        _token_url(stack),
        {"grant_type": "authorization_code", "code": _unknown_code()},
        basic_auth("no-such-client", "whatever-secret"),
    )
    assert_invalid_client(reply)


async def test_unknown_client_post(stack: Stack, http: aiohttp.ClientSession) -> None:
    reply = await post_form(
        http,
        _token_url(stack),
        {
            "grant_type": "authorization_code",
            "code": _unknown_code(),
            "client_id": "no-such-client",
            "client_secret": "whatever-secret",
        },
    )
    assert_invalid_client(reply)


async def test_wrong_secret_basic(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    wrong = Registered(s.client.client, "not-the-secret")

    reply = await exchange(http, stack, wrong, code, auth="basic")

    assert_invalid_client(reply)
    # Client authentication comes first: the code was not touched and still works.
    _ok(await exchange(http, stack, s.client, code, auth="basic"))


async def test_wrong_secret_post(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    wrong = Registered(s.client.client, "not-the-secret")

    reply = await exchange(http, stack, wrong, code, auth="post")

    assert_invalid_client(reply)
    _ok(await exchange(http, stack, s.client, code, auth="post"))


async def test_another_clients_secret_does_not_authenticate(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    other = await make_client(redis, [s.scope])
    assert other.secret
    impostor = Registered(s.client.client, other.secret)

    reply = await exchange(http, stack, impostor, _unknown_code(), auth="basic")

    assert_invalid_client(reply)


async def test_confidential_client_without_a_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)

    reply = await exchange(http, stack, s.client, code, auth="none")

    assert_invalid_client(reply)


async def test_confidential_client_with_an_empty_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    form = {"grant_type": "authorization_code", "code": _unknown_code()}

    reply = await post_form(http, _token_url(stack), form, basic_auth(s.client.client_id, ""))

    assert_invalid_client(reply)


async def test_public_client_presenting_a_secret_in_the_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis, client_type="public")
    verifier = new_verifier()
    code = await _code(http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256")
    pretender = Registered(s.client.client, "a-secret-it-never-had")

    reply = await exchange(http, stack, pretender, code, auth="post", code_verifier=verifier)

    assert_invalid_client(reply)


async def test_public_client_presenting_a_secret_with_basic(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis, client_type="public")
    pretender = Registered(s.client.client, "a-secret-it-never-had")

    reply = await exchange(http, stack, pretender, _unknown_code(), auth="basic")

    assert_invalid_client(reply)


async def test_disabled_client(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    await clients.set_enabled(redis, s.client.client_id, False)

    reply = await exchange(http, stack, s.client, code, auth="basic")

    assert_invalid_client(reply)


async def test_disabled_client_with_post_auth(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    await clients.set_enabled(redis, s.client.client_id, False)

    reply = await exchange(http, stack, s.client, code, auth="post")

    assert_invalid_client(reply)


async def test_malformed_basic_header(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    assert s.client.secret
    form = {"grant_type": "authorization_code", "code": _unknown_code()}
    no_colon = base64.b64encode(s.client.client_id.encode()).decode()
    not_utf8 = base64.b64encode(b"\xff\xfe:\xff").decode()
    for header in (
        "Basic !!!not-base64!!!",
        f"Basic {no_colon}",
        f"Basic {not_utf8}",
        "Basic",
        f"Bearer {s.client.secret}",
    ):
        reply = await post_form(http, _token_url(stack), form, {"Authorization": header})
        assert_invalid_client(reply)


# --- invalid_request (400) --------------------------------------------------------------


async def test_missing_grant_type(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    assert s.client.secret

    reply = await post_form(
        http,
        _token_url(stack),
        {"code": code, "redirect_uri": REDIRECT_URI},
        basic_auth(s.client.client_id, s.client.secret),
    )

    assert_error(reply, 400, "invalid_request")


async def test_empty_grant_type_counts_as_missing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    assert s.client.secret

    reply = await post_form(
        http,
        _token_url(stack),
        {"grant_type": "", "code": _unknown_code()},
        basic_auth(s.client.client_id, s.client.secret),
    )

    assert_error(reply, 400, "invalid_request")


async def test_missing_code(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    assert s.client.secret

    reply = await post_form(
        http,
        _token_url(stack),
        {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI},
        basic_auth(s.client.client_id, s.client.secret),
    )

    assert_error(reply, 400, "invalid_request")


async def test_duplicated_parameter(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)

    for body in (
        "grant_type=authorization_code&code=a&code=b",
        "grant_type=authorization_code&grant_type=authorization_code&code=a",
        # RFC 6749 §3.2: a repeated parameter is an error even when one value is empty.
        "grant_type=authorization_code&code=a&code=",
    ):
        reply = await _raw_post(http, _token_url(stack), body, {"Content-Type": FORM, **basic})
        assert_error(reply, 400, "invalid_request")


async def test_duplicated_parameter_does_not_consume_the_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)
    body = f"grant_type=authorization_code&code={code}&code={code}&redirect_uri={REDIRECT_URI}"

    reply = await _raw_post(http, _token_url(stack), body, {"Content-Type": FORM, **basic})

    assert_error(reply, 400, "invalid_request")
    _ok(await exchange(http, stack, s.client, code))


async def test_too_many_parameters(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)
    body = "grant_type=authorization_code&" + "&".join(f"p{i}=1" for i in range(100))

    reply = await _raw_post(http, _token_url(stack), body, {"Content-Type": FORM, **basic})

    assert_error(reply, 400, "invalid_request")


async def test_body_that_is_not_utf8_is_a_bad_request_not_a_server_error(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)

    # A raw 0xFF byte (not percent-encoded) is the client's mistake: invalid_request
    # (RFC 6749 §5.2), never server_error.
    reply = await _raw_post(
        http,
        _token_url(stack),
        b"grant_type=authorization_code&code=\xff",
        {"Content-Type": FORM, **basic},
    )

    assert_error(reply, 400, "invalid_request")


async def test_json_body_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)

    async with http.post(
        _token_url(stack),
        json={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        headers=basic,
    ) as r:
        reply = Reply(r.status, r.headers, await r.json(content_type=None))

    assert_error(reply, 400, "invalid_request")
    # The refused request did not consume the code.
    _ok(await exchange(http, stack, s.client, code))


async def test_form_body_with_a_text_content_type_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)
    body = f"grant_type=authorization_code&code={_unknown_code()}"

    reply = await _raw_post(http, _token_url(stack), body, {"Content-Type": "text/plain", **basic})

    assert_error(reply, 400, "invalid_request")


async def test_form_content_type_with_charset_is_accepted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)
    raw = urlencode(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    )

    reply = await _raw_post(
        http, _token_url(stack), raw, {"Content-Type": f"{FORM}; charset=UTF-8", **basic}
    )

    _ok(reply)


async def test_basic_header_and_client_secret_in_the_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    assert s.client.secret

    # RFC 6749 §2.3: a client must not use more than one authentication method.
    reply = await exchange(http, stack, s.client, code, client_secret=s.client.secret)

    assert_error(reply, 400, "invalid_request")
    _ok(await exchange(http, stack, s.client, code))


async def test_basic_header_and_another_client_id_in_the_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    other = await make_client(redis, [s.scope])

    reply = await exchange(http, stack, s.client, _unknown_code(), client_id=other.client_id)

    assert_error(reply, 400, "invalid_request")


# --- unsupported_grant_type / unauthorized_client (400) ---------------------------------


async def test_unsupported_grant_types(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    assert s.client.secret
    basic = basic_auth(s.client.client_id, s.client.secret)
    for grant_type in ("urn:example:unknown", "client_credentials"):
        reply = await post_form(
            http, _token_url(stack), {"grant_type": grant_type, "scope": s.scope}, basic
        )
        assert_error(reply, 400, "unsupported_grant_type")


async def test_client_not_allowed_the_grant_is_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    # A registration without the authorization_code grant (as a future client_credentials
    # only client would be); the CLI cannot make one yet, so the record is written here.
    record = await clients.get(redis, s.client.client_id)
    assert record is not None
    record.grants = ["client_credentials"]
    await clients.save(redis, record)

    reply = await exchange(http, stack, s.client, code)

    assert_error(reply, 400, "unauthorized_client")


# --- invalid_grant (400) ----------------------------------------------------------------


async def test_unknown_code(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis)
    for code in (
        _unknown_code(),
        "not-a-code",
        "x" * 300,
        "a.b",
        ".",
        "{g:x}.y",
        "\u00e9.x",
        "%FF.x",
    ):
        assert_invalid_grant(await exchange(http, stack, s.client, code))


async def test_code_replay_fails_and_revokes_the_issued_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis, refresh_count=2)
    code = await _code(http, stack, s)
    first = await exchange(http, stack, s.client, code)
    _ok(first)
    access_token, refresh_token = first.body["access_token"], first.body["refresh_token"]
    family = grants.family_of(code)
    assert family is not None
    at_key = keys.access_token(family, crypto.digest(access_token))
    rt_key = keys.refresh_token(family, crypto.digest(refresh_token))
    assert await redis.exists(at_key, rt_key) == 2
    assert (await introspect(http, stack, s.api, access_token)).body["active"] is True

    second = await exchange(http, stack, s.client, code)

    assert_invalid_grant(second)
    # RFC 6749 §4.1.2: the tokens issued from the replayed code are revoked.
    info = await introspect(http, stack, s.api, access_token)
    assert info.status == 200
    assert info.body == {"active": False}
    assert await redis.exists(at_key) == 0
    assert await redis.exists(rt_key) == 0
    assert await redis.exists(keys.family_members(family)) == 0
    # The family is marked revoked, as long as anything in it could have lived.
    assert await redis.get(keys.family_revoked(family)) == "1"
    assert 30 * 24 * 3600 - 10 < await redis.ttl(keys.family_revoked(family)) <= 30 * 24 * 3600
    # A third attempt fails the same way.
    assert_invalid_grant(await exchange(http, stack, s.client, code))


async def test_code_replay_without_refresh_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)
    first = await exchange(http, stack, s.client, code, auth="post")
    _ok(first)
    assert "refresh_token" not in first.body

    assert_invalid_grant(await exchange(http, stack, s.client, code, auth="post"))

    info = await introspect(http, stack, s.api, first.body["access_token"])
    assert info.body == {"active": False}


async def test_code_of_another_client_fails_and_is_burnt_for_its_own_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    thief = await make_client(redis, [s.scope])
    code = await _code(http, stack, s)

    stolen = await exchange(http, stack, thief, code)

    assert_invalid_grant(stolen)
    # The attempt consumed the code (redemption comes before the client check), so the
    # rightful client's later redemption counts as a replay: it fails and the family is
    # revoked, so nothing can ever be issued from this code.
    rightful = await exchange(http, stack, s.client, code)
    assert_invalid_grant(rightful)
    family = grants.family_of(code)
    assert family is not None
    assert await redis.get(keys.family_revoked(family)) == "1"


async def test_code_of_another_client_after_it_was_redeemed_revokes_the_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    thief = await make_client(redis, [s.scope])
    code = await _code(http, stack, s)
    first = await exchange(http, stack, s.client, code)
    _ok(first)

    assert_invalid_grant(await exchange(http, stack, thief, code))

    info = await introspect(http, stack, s.api, first.body["access_token"])
    assert info.body == {"active": False}


async def test_wrong_code_verifier(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await _setup(redis, client_type="public")
    verifier = new_verifier()
    code = await _code(http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256")

    reply = await exchange(http, stack, s.client, code, auth="none", code_verifier=new_verifier())

    assert_invalid_grant(reply)


async def test_missing_code_verifier_when_a_challenge_was_given(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    verifier = new_verifier()
    code = await _code(http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256")

    reply = await exchange(http, stack, s.client, code)

    assert_invalid_grant(reply)


async def test_code_verifier_for_a_code_without_a_challenge(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)

    # RFC 9700 §4.8.2: a verifier without a challenge hints at a PKCE downgrade.
    reply = await exchange(http, stack, s.client, code, code_verifier=new_verifier())

    assert_invalid_grant(reply)


async def test_s256_code_with_the_challenge_as_verifier(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis, client_type="public")
    verifier = new_verifier()
    challenge = s256(verifier)
    code = await _code(http, stack, s, code_challenge=challenge, code_challenge_method="S256")

    # An attacker who saw the challenge tries it as a plain verifier (downgrade to plain).
    reply = await exchange(http, stack, s.client, code, auth="none", code_verifier=challenge)

    assert_invalid_grant(reply)


async def test_redirect_uri_different_from_authorize(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    other_uri = "https://app.example.com/other"
    s = await _setup(redis, redirect_uris=[REDIRECT_URI, other_uri])
    code = await _code(http, stack, s)

    reply = await exchange(http, stack, s.client, code, redirect_uri=other_uri)

    assert_invalid_grant(reply)


async def test_redirect_uri_differs_only_by_a_trailing_slash_or_case(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    for uri in (REDIRECT_URI + "/", REDIRECT_URI.upper(), REDIRECT_URI + "?x=1"):
        code = await _code(http, stack, s)
        assert_invalid_grant(await exchange(http, stack, s.client, code, redirect_uri=uri))


async def test_redirect_uri_at_token_when_absent_at_authorize(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s, redirect_uri=None)

    reply = await exchange(http, stack, s.client, code, redirect_uri=REDIRECT_URI)

    assert_invalid_grant(reply)


async def test_redirect_uri_absent_at_token_when_present_at_authorize(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)

    # RFC 6749 §4.1.3: required at /token when it was included at /authorize.
    reply = await exchange(http, stack, s.client, code, redirect_uri=None)

    assert_invalid_grant(reply)


# --- single use --------------------------------------------------------------------------


async def test_a_failed_redemption_consumes_the_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis, client_type="public")
    verifier = new_verifier()
    code = await _code(http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256")

    wrong = await exchange(http, stack, s.client, code, auth="none", code_verifier=new_verifier())
    assert_invalid_grant(wrong)

    # No second guess at the verifier: the right one now fails too.
    right = await exchange(http, stack, s.client, code, auth="none", code_verifier=verifier)
    assert_invalid_grant(right)


async def test_a_failed_redirect_uri_check_consumes_the_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    code = await _code(http, stack, s)

    assert_invalid_grant(await exchange(http, stack, s.client, code, redirect_uri=None))
    assert_invalid_grant(await exchange(http, stack, s.client, code))


async def test_concurrent_redemptions_of_one_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis, refresh_count=1)
    code = await _code(http, stack, s)
    family = grants.family_of(code)
    assert family is not None

    replies = await asyncio.gather(*(exchange(http, stack, s.client, code) for _ in range(10)))

    winners = [r for r in replies if r.status == 200]
    losers = [r for r in replies if r.status != 200]
    # The code is redeemed atomically, so at most one request can win. The nine others
    # are replays and revoke the family: either after the winner stored its tokens
    # (they are deleted) or before (the winner's issue is refused, and it gets
    # invalid_grant too). Either way nothing from this code stays usable.
    assert len(winners) <= 1
    assert len(losers) >= 9
    for reply in losers:
        assert_invalid_grant(reply)
    for reply in winners:
        info = await introspect(http, stack, s.api, reply.body["access_token"])
        assert info.body == {"active": False}
        rt_key = keys.refresh_token(family, crypto.digest(reply.body["refresh_token"]))
        assert await redis.exists(rt_key) == 0
    assert await redis.get(keys.family_revoked(family)) == "1"
    assert await redis.exists(keys.family_members(family)) == 0
    prefix = f"tessera:{{g:{family}}}:"
    left = [k.removeprefix(prefix) async for k in redis.scan_iter(match=f"{prefix}*")]
    # Only the used code (kept to recognise replays) and the tombstone remain.
    assert sorted(k.split(":")[0] for k in left) == ["code", "revoked"]


async def test_malformed_code_verifier_is_refused_even_when_it_equals_the_challenge(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await _setup(redis)
    # RFC 7636 §4.1/§4.2: verifier and challenge are 43-128 unreserved characters, so a
    # value ending in a newline is malformed: /authorize should refuse it as a challenge,
    # and /token must never accept it as a verifier.
    value = new_verifier() + "\n"
    params = code_request(s.client, s.scope, code_challenge=value, code_challenge_method="plain")
    back = await authorize_or_error(http, stack, params, s.user)
    if "code" not in back:
        assert back["error"] == "invalid_request"
        return
    reply = await exchange(http, stack, s.client, back["code"], code_verifier=value)
    assert_invalid_grant(reply)
