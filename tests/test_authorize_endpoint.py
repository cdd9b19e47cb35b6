"""The authorization endpoint (RFC 6749 §3.1, §3.1.2, §4.1.1, §4.1.2.1; RFC 7636 §4.3,
§4.4.1; RFC 9207), at GET and POST /authorize, against the authorize service as a process.

Two phases (RFC 6749 §4.1.2.1): while the client or the redirect URI is in doubt the person
sees an error page and is never redirected; after that every error goes back to the client
by a 303 redirect carrying ``error``, ``error_description``, ``state`` and ``iss``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis
from yarl import URL

from services.authorize.app import create_app
from shared.storage import clients, keys
from tests.assertions import assert_error_page
from tests.flows import code_request, new_verifier, s256
from tests.records import REDIRECT_URI, Registered, make_client, make_scope, unique
from tests.replies import Answer, fetch, query_of
from tests.stack import FORWARDED_HTTPS, Stack, production_settings

Params = dict[str, str] | list[tuple[str, str]]


def _encoded(params: Params) -> str:
    # Encoded here, not by aiohttp, so the server receives exactly these pairs (repeats too).
    return urlencode(list(params.items()) if isinstance(params, dict) else params)


async def get_authorize(http: aiohttp.ClientSession, stack: Stack, params: Params) -> Answer:
    url = URL(f"{stack.authorize}/authorize?{_encoded(params)}", encoded=True)
    return await fetch(http, "GET", url)


async def post_authorize(
    http: aiohttp.ClientSession, stack: Stack, params: Params, **kwargs: Any
) -> Answer:
    kwargs.setdefault("headers", {"Content-Type": "application/x-www-form-urlencoded"})
    body = kwargs.pop("body", _encoded(params))
    return await fetch(http, "POST", f"{stack.authorize}/authorize", data=body, **kwargs)


def assert_error_redirect(
    answer: Answer,
    stack: Stack,
    error: str,
    state: str | None,
    *,
    redirect_uri: str = REDIRECT_URI,
    description: str | None = None,
) -> dict[str, str]:
    """An error reported to the client (RFC 6749 §4.1.2.1, RFC 9207 §2)."""
    assert answer.status == 303, answer.text
    location = answer.location
    assert location.startswith(redirect_uri + ("&" if "?" in redirect_uri else "?")), location
    back = query_of(location)
    assert back["error"] == error
    assert back["error_description"]
    if description is not None:
        assert back["error_description"] == description
    if state is None:
        assert "state" not in back
    else:
        assert back["state"] == state
    assert back["iss"] == stack.issuer
    assert "code" not in back
    assert "access_token" not in back
    assert "#" not in location
    return back


def assert_goes_to_login(answer: Answer) -> str:
    assert answer.status == 303, answer.text
    location = answer.location
    assert re.fullmatch(r"/login\?interaction=[A-Za-z0-9_-]{22}", location), location
    return query_of(location)["interaction"]


async def interaction_count(redis: Redis) -> int:
    """How many pending requests Redis holds: a storage check. A refused request must
    store none (README "Rate limits and memory"), though nobody could learn of one."""
    return len([key async for key in redis.scan_iter(match=keys.interaction("*"), count=1000)])


async def confidential(redis: Redis, **options: Any) -> tuple[Registered, str]:
    read = await make_scope(redis)
    return await make_client(redis, [read], **options), read


# --- Phase one: client_id and redirect_uri, errors shown as a page ------------------------

REDIRECT_URI_VARIANTS = [
    pytest.param("https://app.example.com/callback/", id="trailing-slash"),
    pytest.param("https://app.example.com:8443/callback", id="other-port"),
    pytest.param("https://app.example.com:443/callback", id="explicit-default-port"),
    pytest.param("HTTPS://APP.EXAMPLE.COM/callback", id="upper-case-scheme-and-host"),
    pytest.param("https://app.example.com/Callback", id="upper-case-path"),
    pytest.param("https://app.example.com/callback/evil", id="added-path"),
    pytest.param("https://app.example.com/callback/../callback", id="dot-segments"),
    pytest.param("https://app.example.com/callback?x=1", id="added-query"),
    pytest.param("https://app.example.com/callback?", id="empty-query"),
    pytest.param("https://app.example.com/callback#frag", id="added-fragment"),
    pytest.param("https://app.example.com/%63allback", id="percent-encoded-path"),
    pytest.param("https://evil@app.example.com/callback", id="userinfo"),
    pytest.param("https://app.example.com@evil.example.net/callback", id="userinfo-host-swap"),
    pytest.param("https://evil.example.net/callback", id="other-host"),
    pytest.param("https://app.example.com.evil.example.net/callback", id="host-suffix"),
    pytest.param("http://app.example.com/callback", id="http-downgrade"),
    pytest.param(" https://app.example.com/callback", id="leading-space"),
]


@pytest.mark.parametrize("redirect_uri", REDIRECT_URI_VARIANTS)
async def test_a_variant_of_the_registered_redirect_uri_is_never_redirected_to(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, redirect_uri: str
) -> None:
    client, read = await confidential(redis)
    before = await interaction_count(redis)
    # Even with a second error that would otherwise be redirectable.
    for params in (
        code_request(client, read, redirect_uri=redirect_uri),
        code_request(client, read, redirect_uri=redirect_uri, response_type="id_token"),
    ):
        answer = await get_authorize(http, stack, params)

        # RFC 6749 §3.1.2.3, RFC 9700 §4.1.3: simple string comparison, then an error page.
        assert_error_page(
            answer,
            "The return address does not belong to the application.",
            error="invalid_request",
        )
        assert "evil" not in answer.text
    assert await interaction_count(redis) == before


async def test_the_exact_registered_redirect_uri_is_accepted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)

    answer = await get_authorize(http, stack, code_request(client, read))

    assert_goes_to_login(answer)


async def test_an_unknown_client_gets_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    params = {
        "response_type": "code",
        "client_id": "no-such-client",
        "redirect_uri": REDIRECT_URI,
        "scope": read,
        "state": "s1",
    }

    answer = await get_authorize(http, stack, params)

    assert_error_page(answer, "The application is not known here.", error="invalid_request")
    assert "no-such-client" not in answer.text


@pytest.mark.parametrize(
    "client_id", [pytest.param(None, id="absent"), pytest.param("", id="empty")]
)
async def test_a_request_without_client_id_gets_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, client_id: str | None
) -> None:
    read = await make_scope(redis)
    params = {"response_type": "code", "redirect_uri": REDIRECT_URI, "scope": read, "state": "s"}
    if client_id is not None:
        params["client_id"] = client_id

    answer = await get_authorize(http, stack, params)

    assert_error_page(answer, "The request names no client.", error="invalid_request")


async def test_a_disabled_client_gets_an_error_page_and_again_a_redirect_once_enabled(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    await clients.set_enabled(redis, client.client_id, False)
    params = code_request(client, read)

    answer = await get_authorize(http, stack, params)
    assert_error_page(answer, "The application is not known here.", error="invalid_request")
    # Not even a redirectable error is redirected for a disabled client.
    broken = await get_authorize(http, stack, {**params, "response_type": "id_token"})
    assert_error_page(broken, "The application is not known here.", error="invalid_request")

    await clients.set_enabled(redis, client.client_id, True)
    assert_goes_to_login(await get_authorize(http, stack, params))


async def test_a_missing_redirect_uri_with_two_registered_gets_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await make_client(
        redis, [read], redirect_uris=[REDIRECT_URI, "https://app.example.com/other"]
    )
    params = code_request(client, read)
    del params["redirect_uri"]

    answer = await get_authorize(http, stack, params)
    # RFC 6749 §3.1.2.3: which one is meant cannot be known, so no redirect at all.
    assert_error_page(answer, "The request does not say where to return.", error="invalid_request")
    # An empty value counts as absent (RFC 6749 §3.1).
    empty = await get_authorize(http, stack, {**params, "redirect_uri": ""})
    assert_error_page(empty, "The request does not say where to return.", error="invalid_request")
    # Either registered URI, given explicitly, is fine.
    for uri in (REDIRECT_URI, "https://app.example.com/other"):
        assert_goes_to_login(await get_authorize(http, stack, {**params, "redirect_uri": uri}))


async def test_a_missing_redirect_uri_with_one_registered_uses_that_one(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    params = code_request(client, read)
    del params["redirect_uri"]

    assert_goes_to_login(await get_authorize(http, stack, params))
    # And an error after that goes to the one registered URI.
    answer = await get_authorize(http, stack, {**params, "response_type": "foo"})
    assert_error_redirect(answer, stack, "unsupported_response_type", params["state"])


# --- Phase two: every error is a redirect to the client ---------------------------------

# Any visible ASCII, as RFC 6749 Appendix A.5 allows: returned exactly as sent.
ODD_STATE = "st&te=/ #%+{}"
REDIRECTED_ERRORS = [
    pytest.param({"response_type": None}, "invalid_request", id="response_type-missing"),
    pytest.param({"response_type": ""}, "invalid_request", id="response_type-empty"),
    pytest.param({"response_type": "password"}, "invalid_request", id="response_type-password"),
    pytest.param(
        {"response_type": "client_credentials"},
        "invalid_request",
        id="response_type-client_credentials",
    ),
    pytest.param({"response_type": "id_token"}, "unsupported_response_type", id="id_token"),
    pytest.param({"response_type": "foo"}, "unsupported_response_type", id="foo"),
    pytest.param({"response_type": "code token"}, "unsupported_response_type", id="code-token"),
    pytest.param({"response_type": "CODE"}, "unsupported_response_type", id="upper-case-code"),
    pytest.param({"scope": None}, "invalid_scope", id="scope-missing"),
    pytest.param({"scope": ""}, "invalid_scope", id="scope-empty"),
    pytest.param({"scope": "{other}"}, "invalid_scope", id="scope-not-the-clients"),
    pytest.param({"scope": "{undefined}"}, "invalid_scope", id="scope-undefined"),
    pytest.param({"scope": "{read} {undefined}"}, "invalid_scope", id="scope-one-bad-of-two"),
    pytest.param({"scope": "{read}  {read}"}, "invalid_scope", id="scope-two-spaces"),
    pytest.param({"scope": '{read}"'}, "invalid_scope", id="scope-malformed-token"),
    pytest.param(
        {"code_challenge_method": "S256"}, "invalid_request", id="method-without-challenge"
    ),
    pytest.param(
        {"code_challenge": "{challenge}", "code_challenge_method": "S512"},
        "invalid_request",
        id="method-S512",
    ),
    pytest.param(
        {"code_challenge": "{challenge}", "code_challenge_method": "s256"},
        "invalid_request",
        id="method-lower-case-s256",
    ),
    pytest.param({"code_challenge": "a" * 42}, "invalid_request", id="challenge-42-chars"),
    pytest.param({"code_challenge": "a" * 129}, "invalid_request", id="challenge-129-chars"),
    pytest.param(
        {"code_challenge": "a" * 42 + "+"}, "invalid_request", id="challenge-bad-character"
    ),
    pytest.param(
        {"code_challenge": "{challenge}=", "code_challenge_method": "S256"},
        "invalid_request",
        id="challenge-base64-padding",
    ),
]


@pytest.mark.parametrize(("change", "error"), REDIRECTED_ERRORS)
async def test_an_invalid_request_from_a_valid_client_is_redirected_back(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    change: dict[str, str | None],
    error: str,
) -> None:
    read, other = await make_scope(redis), await make_scope(redis)
    client = await make_client(redis, [read])
    names = {
        "read": read,
        "other": other,
        "undefined": "never-defined-" + read,
        "challenge": s256(new_verifier()),
    }
    params = code_request(client, read, state=ODD_STATE)
    for name, value in change.items():
        if value is None:
            del params[name]
        else:
            params[name] = value.format(**names)
    before = await interaction_count(redis)

    answer = await get_authorize(http, stack, params)

    assert_error_redirect(answer, stack, error, ODD_STATE)
    assert await interaction_count(redis) == before
    # The session cookie is for people who will sign in; an error sets none.
    assert "Set-Cookie" not in answer.headers


async def test_a_malformed_scope_is_refused_before_it_is_looked_up(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """RFC 6749 §3.3: a malformed scope-token is invalid_scope even when Redis holds a
    definition of it and the client's record lists it (written around the CLI's checks,
    or by an older release): the request never reaches the lookup."""
    read = await make_scope(redis)
    client = await make_client(redis, [read])
    malformed = unique('quo"te')
    await redis.set(keys.scope(malformed), orjson.dumps({"name": malformed, "description": ""}))
    record = await clients.get(redis, client.client_id)
    assert record is not None
    record.scopes.append(malformed)
    await clients.save(redis, record)
    params = code_request(client, malformed)
    try:
        answer = await get_authorize(http, stack, params)
    finally:
        await redis.delete(keys.scope(malformed))

    assert_error_redirect(answer, stack, "invalid_scope", params["state"])


async def test_an_error_redirect_without_state_has_no_state(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    params = code_request(client, read, response_type="id_token")
    del params["state"]

    answer = await get_authorize(http, stack, params)

    assert_error_redirect(answer, stack, "unsupported_response_type", None)


async def test_a_client_not_allowed_the_code_grant_is_told_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    record = await clients.get(redis, client.client_id)
    assert record is not None
    record.grants = ["client_credentials"]
    await clients.save(redis, record)

    answer = await get_authorize(http, stack, code_request(client, read, state="x"))

    assert_error_redirect(answer, stack, "unauthorized_client", "x")


# --- PKCE (RFC 7636 §4.4.1) ---------------------------------------------------------------


# A client that must use PKCE, and a challenge that lets it go on to sign in.
PKCE_REQUIRED = [
    pytest.param(
        {"client_type": "public"},
        {"code_challenge": s256(new_verifier()), "code_challenge_method": "S256"},
        id="public-client-by-default",
    ),
    # RFC 7636 §4.3: without a method the challenge is plain, and that is enough.
    pytest.param(
        {"require_pkce": "yes"},
        {"code_challenge": "v" * 43},
        id="confidential-client-with-require-pkce-yes",
    ),
]


@pytest.mark.parametrize(("client_options", "challenge"), PKCE_REQUIRED)
async def test_a_client_that_must_use_pkce_is_refused_without_a_challenge(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    client_options: dict[str, Any],
    challenge: dict[str, str],
) -> None:
    read = await make_scope(redis)
    client = await make_client(redis, [read], **client_options)
    params = code_request(client, read)
    before = await interaction_count(redis)

    answer = await get_authorize(http, stack, params)

    assert_error_redirect(
        answer,
        stack,
        "invalid_request",
        params["state"],
        description="A code_challenge is required (PKCE, RFC 7636).",
    )
    assert await interaction_count(redis) == before
    # With a challenge the same client goes on to sign in.
    assert_goes_to_login(await get_authorize(http, stack, {**params, **challenge}))
    assert await interaction_count(redis) == before + 1


async def test_a_public_client_with_require_pkce_no_may_go_without(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await make_client(redis, [read], client_type="public", require_pkce="no")

    answer = await get_authorize(http, stack, code_request(client, read))

    assert_goes_to_login(answer)


async def test_a_confidential_client_needs_no_challenge_by_default(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)

    assert_goes_to_login(await get_authorize(http, stack, code_request(client, read)))


async def test_with_the_global_default_off_only_the_per_client_override_requires_pkce(
    stack: Stack, redis: Redis, aiohttp_client: AiohttpClient
) -> None:
    settings = production_settings(stack.redis_url, TESSERA_REQUIRE_PKCE_PUBLIC="0")
    browser = await aiohttp_client(
        create_app(settings), cookie_jar=aiohttp.DummyCookieJar(), headers=FORWARDED_HTTPS
    )
    read = await make_scope(redis)
    public = await make_client(redis, [read], client_type="public")
    strict = await make_client(redis, [read], client_type="public", require_pkce="yes")

    async with browser.get(
        "/authorize", params=code_request(public, read), allow_redirects=False
    ) as r:
        assert r.status == 303
        assert r.headers["Location"].startswith("/login?interaction=")
    params = code_request(strict, read)
    async with browser.get("/authorize", params=params, allow_redirects=False) as r:
        assert r.status == 303
        back = query_of(r.headers["Location"])
        assert r.headers["Location"].startswith(REDIRECT_URI + "?")
        assert back["error"] == "invalid_request"
        assert back["state"] == params["state"]
        assert back["iss"] == "https://id.example.com"


# --- RFC 6749 §3.1: parameters are not repeated -------------------------------------------


SECOND_VALUES = ["scope", "client_id", "redirect_uri", "response_type", "state", "code_challenge"]


@pytest.mark.parametrize("repeated", SECOND_VALUES)
async def test_a_repeated_parameter_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, repeated: str
) -> None:
    """RFC 6749 §3.1 and §4.1.2.1: a repeated client_id or redirect_uri leaves the client in
    doubt, so an error page; any other repeat is invalid_request at the redirect URI."""
    read, write = await make_scope(redis), await make_scope(redis)
    client = await make_client(redis, [read, write])
    other = await make_client(redis, [read, write])
    params = code_request(client, read, code_challenge=s256(new_verifier()))
    second = {
        "scope": write,
        "client_id": other.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "state": "second",
        "code_challenge": s256(new_verifier()),
    }[repeated]
    pairs = [*params.items(), (repeated, second)]
    before = await interaction_count(redis)

    answer = await get_authorize(http, stack, pairs)

    if repeated in ("client_id", "redirect_uri"):
        assert_error_page(answer, "The request is ambiguous.", error="invalid_request")
    else:
        back = assert_error_redirect(answer, stack, "invalid_request", params["state"])
        assert back["error_description"] == "A request parameter is repeated."
    assert await interaction_count(redis) == before


async def test_a_repeated_parameter_is_refused_even_when_both_values_are_equal(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    params = code_request(client, read)

    answer = await get_authorize(http, stack, [*params.items(), ("client_id", client.client_id)])

    assert_error_page(answer, "The request is ambiguous.", error="invalid_request")


# --- POST /authorize (RFC 6749 §3.1) --------------------------------------------------------


async def test_post_with_a_form_body_works_like_get(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    before = await interaction_count(redis)

    answer = await post_authorize(http, stack, code_request(client, read))

    # Stored, then continued in a GET that carries the SameSite=Lax cookie.
    assert answer.status == 303
    assert re.fullmatch(r"/authorize/resume\?interaction=[A-Za-z0-9_-]{22}", answer.location)
    assert "Set-Cookie" not in answer.headers
    assert await interaction_count(redis) == before + 1
    resumed = await fetch(http, "GET", f"{stack.authorize}{answer.location}")
    assert assert_goes_to_login(resumed) == query_of(answer.location)["interaction"]
    assert "tessera_session=" in resumed.headers["Set-Cookie"]


async def test_post_errors_are_handled_like_get(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)
    params = code_request(client, read)

    redirected = await post_authorize(http, stack, {**params, "response_type": "id_token"})
    assert_error_redirect(redirected, stack, "unsupported_response_type", params["state"])

    bad_uri = await post_authorize(http, stack, {**params, "redirect_uri": REDIRECT_URI + "/"})
    assert_error_page(
        bad_uri, "The return address does not belong to the application.", error="invalid_request"
    )

    repeated = await post_authorize(http, stack, [*params.items(), ("scope", read)])
    assert_error_redirect(repeated, stack, "invalid_request", params["state"])


async def test_post_with_a_body_that_is_not_a_form_gets_an_error_page(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, read = await confidential(redis)

    answer = await post_authorize(
        http,
        stack,
        {},
        body=f'{{"client_id": "{client.client_id}", "scope": "{read}"}}',
        headers={"Content-Type": "application/json"},
    )

    assert_error_page(
        answer,
        "The request body must be application/x-www-form-urlencoded.",
        error="invalid_request",
    )


# --- RFC 6749 §3.1.2: the redirect URI's own query is kept ---------------------------------


async def test_an_error_redirect_keeps_the_registered_query(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    uri = "https://app.example.com/cb?tenant=blue&lang=en"
    client = await make_client(redis, [read], redirect_uris=[uri])
    params = code_request(client, read, redirect_uri=uri, response_type="foo")

    answer = await get_authorize(http, stack, params)

    back = assert_error_redirect(
        answer, stack, "unsupported_response_type", params["state"], redirect_uri=uri
    )
    assert answer.location.startswith("https://app.example.com/cb?tenant=blue&lang=en&error=")
    assert back["tenant"] == "blue"
    assert back["lang"] == "en"
    # Given no redirect_uri, the one registered (with its query) is used alike.
    del params["redirect_uri"]
    again = await get_authorize(http, stack, params)
    assert_error_redirect(
        again, stack, "unsupported_response_type", params["state"], redirect_uri=uri
    )
