"""POST /token with grant_type=authorization_code: every error of RFC 6749 §5.2 this grant
can produce (RFC 6749 §2.3, §3.2, §4.1.3, §5.2; RFC 7636 §4.6), code single use and code
replay (RFC 6749 §4.1.2, RFC 9700 §4.2.4), over HTTP against the running services."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlencode

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.storage import clients, families
from tests.assertions import assert_error, assert_invalid_client, assert_invalid_grant
from tests.flows import (
    authorize,
    code_request,
    exchange,
    grant_family,
    introspect,
    live_tokens,
    new_verifier,
    obtain_code,
    refresh,
    s256,
    start_authorization,
)
from tests.records import REDIRECT_URI, Registered, make_client, make_resource_server, make_setup
from tests.replies import Reply, basic_auth, basic_auth_for, post_form, post_json, query_of
from tests.stack import Stack, logged_lines, security_events_of, session_log

FORM = "application/x-www-form-urlencoded"
OTHER_URI = "https://app.example.com/other"


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


def _token_url(stack: Stack) -> str:
    return f"{stack.token}/token"


def _unknown_code() -> str:
    return families.new_value(families.new_family(), 32)


def assert_tokens_issued(reply: Reply) -> None:
    assert reply.status == 200, reply.body
    assert reply.body["access_token"]


# --- invalid_client (401) ---------------------------------------------------------------


# How a confidential client authenticates (RFC 6749 §2.3.1).
AUTH_METHODS = [
    pytest.param("basic", id="client_secret_basic"),
    pytest.param("post", id="client_secret_post"),
]


@pytest.mark.parametrize(
    ("credentials", "headers"),
    [
        pytest.param({}, basic_auth("no-such-client", "whatever-secret"), id="basic"),
        pytest.param(
            {"client_id": "no-such-client", "client_secret": "whatever-secret"}, None, id="post"
        ),
    ],
)
async def test_unknown_client(
    stack: Stack,
    http: aiohttp.ClientSession,
    credentials: dict[str, str],
    headers: dict[str, str] | None,
) -> None:
    form = {"grant_type": "authorization_code", "code": _unknown_code(), **credentials}

    reply = await post_form(http, _token_url(stack), form, headers)

    assert_invalid_client(reply)


@pytest.mark.parametrize("auth", AUTH_METHODS)
async def test_wrong_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, auth: str
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    wrong = Registered(s.client.client, "not-the-secret")

    reply = await exchange(http, stack, wrong, code, auth=auth)

    assert_invalid_client(reply)
    # Client authentication comes first: the code was not touched and still works.
    assert_tokens_issued(await exchange(http, stack, s.client, code, auth=auth))


async def test_another_clients_secret_does_not_authenticate(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    other = await make_client(redis, [s.scope])
    assert other.secret
    impostor = Registered(s.client.client, other.secret)

    reply = await exchange(http, stack, impostor, _unknown_code(), auth="basic")

    assert_invalid_client(reply)


async def test_confidential_client_without_a_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)

    reply = await exchange(http, stack, s.client, code, auth="none")

    assert_invalid_client(reply)


async def test_confidential_client_with_an_empty_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    form = {"grant_type": "authorization_code", "code": _unknown_code()}

    reply = await post_form(http, _token_url(stack), form, basic_auth(s.client.client_id, ""))

    assert_invalid_client(reply)


async def test_public_client_presenting_a_secret_in_the_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, client_type="public")
    verifier = new_verifier()
    code = await obtain_code(
        http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256"
    )
    pretender = Registered(s.client.client, "a-secret-it-never-had")

    reply = await exchange(http, stack, pretender, code, auth="post", code_verifier=verifier)

    assert_invalid_client(reply)


async def test_public_client_presenting_a_secret_with_basic(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, client_type="public")
    pretender = Registered(s.client.client, "a-secret-it-never-had")

    reply = await exchange(http, stack, pretender, _unknown_code(), auth="basic")

    assert_invalid_client(reply)


@pytest.mark.parametrize("auth", AUTH_METHODS)
async def test_disabled_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, auth: str
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    await clients.set_enabled(redis, s.client.client_id, False)

    reply = await exchange(http, stack, s.client, code, auth=auth)

    assert_invalid_client(reply)


async def test_malformed_basic_header(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    assert s.client.secret
    form = {"grant_type": "authorization_code", "code": _unknown_code()}
    no_colon = base64.b64encode(s.client.client_id.encode()).decode()
    not_utf8 = base64.b64encode(b"\xff\xfe:\xff").decode()
    for header in (
        "Basic !!!not-base64!!!",
        f"Basic {no_colon}",
        f"Basic {not_utf8}",
        "Basic",
        "Basic \u00e9t\u00e9",  # not ASCII: base64 decoding raises ValueError
        f"Bearer {s.client.secret}",
    ):
        for url in (_token_url(stack), f"{stack.introspect}/introspect"):
            reply = await post_form(http, url, {**form, "token": "x"}, {"Authorization": header})
            assert_invalid_client(reply)


async def test_an_authorization_header_is_never_logged(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    secret = f"secret-{new_verifier()}"  # a header with no space: all of it would be a scheme
    form = {"grant_type": "authorization_code", "code": _unknown_code()}

    reply = await post_form(http, _token_url(stack), form, {"Authorization": secret})
    assert_invalid_client(reply)
    await post_form(http, _token_url(stack), {}, {})  # one more request: the log is written

    assert secret not in session_log("token").read_text()


# --- invalid_request (400) --------------------------------------------------------------

# Requests refused as invalid_request although the client authenticates (with
# client_secret_basic): the fields of a form, or a body already encoded, sent with the
# Content-Type given. "{code}" stands for a code just issued to the client, "{unknown}"
# for one never issued.
MALFORMED_REQUESTS = [
    pytest.param({"code": "{code}", "redirect_uri": REDIRECT_URI}, None, id="missing-grant_type"),
    pytest.param(
        {"grant_type": "", "code": "{unknown}"}, None, id="empty-grant_type-counts-as-missing"
    ),
    pytest.param(
        {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI}, None, id="missing-code"
    ),
    pytest.param(
        "grant_type=authorization_code&" + "&".join(f"p{i}=1" for i in range(100)),
        FORM,
        id="too-many-parameters",
    ),
    # A raw 0xFF byte (not percent-encoded) is the client's mistake: invalid_request
    # (RFC 6749 §5.2), never server_error.
    pytest.param(b"grant_type=authorization_code&code=\xff", FORM, id="body-not-utf8"),
    pytest.param(
        "grant_type=authorization_code&code={unknown}", "text/plain", id="form-as-text-plain"
    ),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED_REQUESTS)
async def test_a_malformed_request_is_invalid_request(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    body: dict[str, str] | str | bytes,
    content_type: str | None,
) -> None:
    s = await make_setup(redis)
    codes = {"unknown": _unknown_code()}
    if "{code}" in str(body):
        codes["code"] = await obtain_code(http, stack, s)
    if isinstance(body, dict):
        body = {name: value.format(**codes) for name, value in body.items()}
    elif isinstance(body, str):
        body = body.format(**codes)
    headers = basic_auth_for(s.client)
    if content_type is not None:
        headers = {"Content-Type": content_type, **headers}

    reply = await post_form(http, _token_url(stack), body, headers)

    assert_error(reply, 400, "invalid_request")


async def test_duplicated_parameter(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    basic = basic_auth_for(s.client)

    for body in (
        "grant_type=authorization_code&code=a&code=b",
        "grant_type=authorization_code&grant_type=authorization_code&code=a",
        # RFC 6749 §3.2: a repeated parameter is an error even when one value is empty.
        "grant_type=authorization_code&code=a&code=",
    ):
        reply = await post_form(http, _token_url(stack), body, {"Content-Type": FORM, **basic})
        assert_error(reply, 400, "invalid_request")


async def test_duplicated_parameter_does_not_consume_the_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    basic = basic_auth_for(s.client)
    body = f"grant_type=authorization_code&code={code}&code={code}&redirect_uri={REDIRECT_URI}"

    reply = await post_form(http, _token_url(stack), body, {"Content-Type": FORM, **basic})

    assert_error(reply, 400, "invalid_request")
    assert_tokens_issued(await exchange(http, stack, s.client, code))


async def test_json_body_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}

    reply = await post_json(http, _token_url(stack), fields, basic_auth_for(s.client))

    assert_error(reply, 400, "invalid_request")
    # The refused request did not consume the code.
    assert_tokens_issued(await exchange(http, stack, s.client, code))


async def test_form_content_type_with_charset_is_accepted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    basic = basic_auth_for(s.client)
    raw = urlencode(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    )

    reply = await post_form(
        http, _token_url(stack), raw, {"Content-Type": f"{FORM}; charset=UTF-8", **basic}
    )

    assert_tokens_issued(reply)


async def test_basic_header_and_client_secret_in_the_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    assert s.client.secret

    # RFC 6749 §2.3: a client must not use more than one authentication method.
    reply = await exchange(http, stack, s.client, code, client_secret=s.client.secret)

    assert_error(reply, 400, "invalid_request")
    assert_tokens_issued(await exchange(http, stack, s.client, code))


async def test_basic_header_and_another_client_id_in_the_body(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    other = await make_client(redis, [s.scope])

    reply = await exchange(http, stack, s.client, _unknown_code(), client_id=other.client_id)

    assert_error(reply, 400, "invalid_request")


# --- unsupported_grant_type / unauthorized_client (400) ---------------------------------


async def test_unsupported_grant_types(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    basic = basic_auth_for(s.client)
    # implicit is a grant, but not one of the token endpoint (RFC 6749 §4.2).
    for grant_type in ("urn:example:unknown", "implicit", "token"):
        reply = await post_form(
            http, _token_url(stack), {"grant_type": grant_type, "scope": s.scope}, basic
        )
        assert_error(reply, 400, "unsupported_grant_type")


async def test_client_not_allowed_the_grant_is_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)
    # The client loses the authorization_code grant between approval and exchange.
    record = await clients.get(redis, s.client.client_id)
    assert record is not None
    record.grants = ["client_credentials"]
    await clients.save(redis, record)

    reply = await exchange(http, stack, s.client, code)

    assert_error(reply, 400, "unauthorized_client")


# --- invalid_grant (400) ----------------------------------------------------------------


async def test_unknown_code(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> None:
    s = await make_setup(redis)
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
    s = await make_setup(redis, refresh_count=2)
    api = await make_resource_server(redis, [s.scope])
    code = await obtain_code(http, stack, s)
    first = await exchange(http, stack, s.client, code)
    assert_tokens_issued(first)
    access_token, refresh_token = first.body["access_token"], first.body["refresh_token"]
    listed = await live_tokens(http, stack, client=s.client.client_id)
    assert sorted(token["kind"] for token in listed) == ["access_token", "refresh_token"]
    assert (await introspect(http, stack, api, access_token)).body["active"] is True

    second = await exchange(http, stack, s.client, code)

    assert_invalid_grant(second)
    # RFC 6749 §4.1.2: the tokens issued from the replayed code are revoked (what that
    # leaves in Redis: tests/test_storage.py).
    info = await introspect(http, stack, api, access_token)
    assert info.status == 200
    assert info.body == {"active": False}
    assert_invalid_grant(await refresh(http, stack, s.client, refresh_token))
    assert await live_tokens(http, stack, client=s.client.client_id) == []
    # A third attempt fails the same way.
    assert_invalid_grant(await exchange(http, stack, s.client, code))


async def test_code_replay_without_refresh_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    api = await make_resource_server(redis, [s.scope])
    code = await obtain_code(http, stack, s)
    first = await exchange(http, stack, s.client, code, auth="post")
    assert_tokens_issued(first)
    assert "refresh_token" not in first.body

    assert_invalid_grant(await exchange(http, stack, s.client, code, auth="post"))

    info = await introspect(http, stack, api, first.body["access_token"])
    assert info.body == {"active": False}


async def test_code_of_another_client_fails_and_is_burnt_for_its_own_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    thief = await make_client(redis, [s.scope])
    code = await obtain_code(http, stack, s)

    stolen = await exchange(http, stack, thief, code)

    assert_invalid_grant(stolen)
    # The attempt consumed the code (redemption comes before the client check), so the
    # rightful client's later redemption counts as a replay: it fails, and is logged as
    # one. (That a replay revokes the family is tests/test_storage.py's to check.)
    rightful = await exchange(http, stack, s.client, code)
    assert_invalid_grant(rightful)
    lines = await logged_lines(http, stack.token, "token")
    assert security_events_of(lines, grant_family(code)) == ["code_replayed"]


async def test_code_of_another_client_after_it_was_redeemed_revokes_the_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    api = await make_resource_server(redis, [s.scope])
    thief = await make_client(redis, [s.scope])
    code = await obtain_code(http, stack, s)
    first = await exchange(http, stack, s.client, code)
    assert_tokens_issued(first)

    assert_invalid_grant(await exchange(http, stack, thief, code))

    info = await introspect(http, stack, api, first.body["access_token"])
    assert info.body == {"active": False}


# PKCE (RFC 7636 §4.6): the client type, whether /authorize got an S256 challenge, and
# what /token gets as code_verifier (None: no code_verifier at all).
PKCE_MISMATCHES = [
    pytest.param("public", True, "another verifier", id="wrong-verifier"),
    pytest.param("confidential", True, None, id="missing-verifier-when-a-challenge-was-given"),
    # RFC 9700 §4.8.2: a verifier without a challenge hints at a PKCE downgrade.
    pytest.param("confidential", False, "another verifier", id="verifier-without-a-challenge"),
    # An attacker who saw the challenge tries it as a plain verifier (downgrade to plain).
    pytest.param("public", True, "the challenge", id="s256-challenge-as-verifier"),
]


@pytest.mark.parametrize(("client_type", "challenged", "shown"), PKCE_MISMATCHES)
async def test_a_code_verifier_that_does_not_fit_is_invalid_grant(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    client_type: str,
    challenged: bool,
    shown: str | None,
) -> None:
    s = await make_setup(redis, client_type=client_type)
    challenge = s256(new_verifier())
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"} if challenged else {}
    code = await obtain_code(http, stack, s, **pkce)
    values = {"another verifier": new_verifier(), "the challenge": challenge}
    verifier = {} if shown is None else {"code_verifier": values[shown]}
    auth = "none" if client_type == "public" else "basic"

    reply = await exchange(http, stack, s.client, code, auth=auth, **verifier)

    assert_invalid_grant(reply)


# The redirect URIs registered, then the redirect_uri sent to /authorize and to /token
# (None: the parameter left out).
REDIRECT_URI_MISMATCHES = [
    pytest.param([REDIRECT_URI, OTHER_URI], REDIRECT_URI, OTHER_URI, id="different-from-authorize"),
    pytest.param([REDIRECT_URI], None, REDIRECT_URI, id="at-token-when-absent-at-authorize"),
    # RFC 6749 §4.1.3: required at /token when it was included at /authorize.
    pytest.param(
        [REDIRECT_URI], REDIRECT_URI, None, id="absent-at-token-when-present-at-authorize"
    ),
]


@pytest.mark.parametrize(("registered", "at_authorize", "at_token"), REDIRECT_URI_MISMATCHES)
async def test_a_redirect_uri_that_does_not_match_authorize_is_invalid_grant(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    registered: list[str],
    at_authorize: str | None,
    at_token: str | None,
) -> None:
    s = await make_setup(redis, redirect_uris=registered)
    code = await obtain_code(http, stack, s, redirect_uri=at_authorize)

    reply = await exchange(http, stack, s.client, code, redirect_uri=at_token)

    assert_invalid_grant(reply)


async def test_redirect_uri_differs_only_by_a_trailing_slash_or_case(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    for uri in (REDIRECT_URI + "/", REDIRECT_URI.upper(), REDIRECT_URI + "?x=1"):
        code = await obtain_code(http, stack, s)
        assert_invalid_grant(await exchange(http, stack, s.client, code, redirect_uri=uri))


# --- single use --------------------------------------------------------------------------


async def test_a_failed_redemption_consumes_the_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, client_type="public")
    verifier = new_verifier()
    code = await obtain_code(
        http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256"
    )

    wrong = await exchange(http, stack, s.client, code, auth="none", code_verifier=new_verifier())
    assert_invalid_grant(wrong)

    # No second guess at the verifier: the right one now fails too.
    right = await exchange(http, stack, s.client, code, auth="none", code_verifier=verifier)
    assert_invalid_grant(right)


async def test_a_failed_redirect_uri_check_consumes_the_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    code = await obtain_code(http, stack, s)

    assert_invalid_grant(await exchange(http, stack, s.client, code, redirect_uri=None))
    assert_invalid_grant(await exchange(http, stack, s.client, code))


async def test_concurrent_redemptions_of_one_code(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1)
    api = await make_resource_server(redis, [s.scope])
    code = await obtain_code(http, stack, s)
    family = grant_family(code)

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
        info = await introspect(http, stack, api, reply.body["access_token"])
        assert info.body == {"active": False}
        assert_invalid_grant(await refresh(http, stack, s.client, reply.body["refresh_token"]))
    assert await live_tokens(http, stack, client=s.client.client_id) == []
    # Storage check, of this very race: a winner's tokens stored after the revocation would
    # introspect as inactive (the tombstone), yet stay in Redis. Only the used code (kept
    # to recognise replays) and the tombstone remain.
    prefix = f"tessera:{{g:{family}}}:"
    left = [k.removeprefix(prefix) async for k in redis.scan_iter(match=f"{prefix}*")]
    assert sorted(k.split(":")[0] for k in left) == ["code", "revoked"]


async def test_malformed_code_verifier_is_refused_even_when_it_equals_the_challenge(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
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
