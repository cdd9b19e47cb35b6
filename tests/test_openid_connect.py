"""OpenID Connect's authentication request (Core 1.0 §3.1.2.1) over HTTP: discovery, the
nonce, id_token_hint, max_age and prompt=none, login_hint, the claims parameter; and
the attacks on them. The browser's side is ``tests/test_openid_connect_browser.py``."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from redis.asyncio import Redis
from tessera_resource_server.jwt_verification import looks_like_jwt

from services.authorize.metadata import CLAIMS_SUPPORTED
from shared.domain.domain_errors import Invalid
from shared.domain.openid import STANDARD_SCOPES
from tests.flows import (
    authorize,
    code_request,
    decide,
    exchange,
    introspect,
    sign_in,
    start_authorization,
)
from tests.openid import OPENID_CONFIGURATION, discovery, validated_id_token
from tests.records import (
    PASSWORD,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_user,
)
from tests.replies import query_of
from tests.stack import Stack


async def signed_in_id_token(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, user: str, **extra: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """Sign ``user`` in to ``client`` with the openid scope; the request and token response."""
    params = code_request(client, "openid", **extra)
    back = await authorize(http, stack, params, user)
    reply = await exchange(http, stack, client, back["code"])
    assert reply.status == 200, reply.body
    return params, reply.body


async def test_discovery_describes_what_is_implemented(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    config = await discovery(http, stack)
    assert config["issuer"] == stack.issuer  # Discovery 1.0 §4.3
    async with http.get(stack.metadata) as r:
        oauth = await r.json()
    # RFC 8414's fields, the same in both documents.
    assert {name: config[name] for name in oauth if name != "scopes_supported"} == {
        name: value for name, value in oauth.items() if name != "scopes_supported"
    }
    assert {"openid", "profile", "email", "phone", "address"} <= set(config["scopes_supported"])
    assert config["userinfo_endpoint"] == f"{stack.token}/userinfo"
    assert config["subject_types_supported"] == ["public", "pairwise"]
    assert config["id_token_signing_alg_values_supported"] == ["ES256"]  # the stack's key
    assert "none" not in config["id_token_signing_alg_values_supported"]
    assert config["claims_supported"] == CLAIMS_SUPPORTED
    assert config["claims_parameter_supported"] is True
    assert config["request_parameter_supported"] is False
    assert config["request_uri_parameter_supported"] is False
    assert config["end_session_endpoint"] == f"{stack.authorize}/end_session"
    assert config["backchannel_logout_supported"] is True
    assert config["backchannel_logout_session_supported"] is True
    assert config["frontchannel_logout_supported"] is False
    async with http.get(f"{stack.authorize}{OPENID_CONFIGURATION}") as r:
        assert r.headers["Content-Type"].startswith("application/json")


async def test_the_nonce_sent_is_the_nonce_in_the_id_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    client = await make_client(redis, ["openid"])
    nonce = secrets.token_urlsafe(24)
    _, body = await signed_in_id_token(http, stack, client, user, nonce=nonce)
    _, claims = await validated_id_token(
        http,
        stack,
        body["id_token"],
        client_id=client.client_id,
        nonce=nonce,
        access_token=body["access_token"],
    )
    assert claims["nonce"] == nonce
    # Without a nonce in the request, none in the token (Core §3.1.2.1: it is optional
    # in the code flow), never one made up.
    _, body = await signed_in_id_token(http, stack, client, user)
    assert "nonce" not in jwt.decode(body["id_token"], options={"verify_signature": False})


async def test_requests_without_openid_get_no_id_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    client = await make_client(redis, ["openid", "profile"])
    back = await authorize(http, stack, code_request(client, "profile", nonce="n-1"), user)
    reply = await exchange(http, stack, client, back["code"])
    assert reply.status == 200
    assert "id_token" not in reply.body


async def test_an_id_token_of_another_client_is_no_id_token_hint_here(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The attack: client B passes a hint it obtained from (or stole of) client A."""
    user = await make_user(redis)
    a = await make_client(redis, ["openid"])
    b = await make_client(redis, ["openid"])
    _, body = await signed_in_id_token(http, stack, a, user)

    started = await start_authorization(
        http, stack, code_request(b, "openid", id_token_hint=body["id_token"])
    )
    back = query_of(started.headers["Location"])
    assert back["error"] == "invalid_request"
    assert "not issued to this client" in back["error_description"]
    # A's own request with it is fine: the person is signed in, so on to the approval page.
    started = await start_authorization(
        http, stack, code_request(a, "openid", id_token_hint=body["id_token"])
    )
    assert started.headers["Location"].startswith("/consent?")


def unsigned(claims: dict[str, object], **header: object) -> str:
    """An unsecured JWT (RFC 7519 §6): ``alg: none`` and no signature."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', **header})}.{part(claims)}."


async def test_alg_none_is_never_accepted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    client = await make_client(redis, ["openid"])
    api = await make_resource_server(redis, ["openid"])
    _, body = await signed_in_id_token(http, stack, client, user)
    real = jwt.decode(body["id_token"], options={"verify_signature": False})
    for typ in ("JWT", "at+jwt"):
        forged = unsigned({**real, "client_id": client.client_id, "jti": "x"}, typ=typ)
        # As an id_token_hint: refused, never a person's identity.
        started = await start_authorization(
            http, stack, code_request(client, "openid", id_token_hint=forged, prompt="none")
        )
        assert query_of(started.headers["Location"])["error"] == "invalid_request"
        # As an access token at introspection: inactive.
        info = await introspect(http, stack, api, forged)
        assert info.body == {"active": False}


async def test_an_id_token_is_not_an_access_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Its typ is JWT, not at+jwt (RFC 9068 §4, RFC 8725 §3.11)."""
    user = await make_user(redis)
    client = await make_client(redis, ["openid"])
    api = await make_resource_server(redis, ["openid"])
    _, body = await signed_in_id_token(http, stack, client, user)
    assert (await introspect(http, stack, api, body["id_token"])).body == {"active": False}
    assert (await introspect(http, stack, api, body["access_token"])).body["active"] is True


async def test_prompt_none_with_a_hint_naming_someone_else_answers_login_required(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    alice, bob = await make_user(redis), await make_user(redis)
    client = await make_client(redis, ["openid"], remember_consent=True)
    _, alices = await signed_in_id_token(http, stack, client, alice)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_browser:
        _, bobs = await signed_in_id_token(other_browser, stack, client, bob)
    # This browser is Alice's; a hint naming Bob cannot be answered without a page.
    started = await start_authorization(
        http, stack, code_request(client, "openid", prompt="none", id_token_hint=bobs["id_token"])
    )
    assert query_of(started.headers["Location"])["error"] == "login_required"
    started = await start_authorization(
        http,
        stack,
        code_request(client, "openid", prompt="none", id_token_hint=alices["id_token"]),
    )
    assert "code" in query_of(started.headers["Location"])


async def test_max_age_with_prompt_none_answers_login_required_once_exceeded(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    client = await make_client(redis, ["openid"], remember_consent=True)
    await signed_in_id_token(http, stack, client, user)
    fresh = await start_authorization(
        http, stack, code_request(client, "openid", prompt="none", max_age="3600")
    )
    assert "code" in query_of(fresh.headers["Location"])
    stale = await start_authorization(
        http, stack, code_request(client, "openid", prompt="none", max_age="0")
    )
    assert query_of(stale.headers["Location"])["error"] == "login_required"


async def test_bad_openid_parameters_are_reported_to_the_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client = await make_client(redis, ["openid"])
    for bad in (
        {"max_age": "-1"},
        {"max_age": "soon"},
        {"claims": "not json"},
        {"claims": "[]"},
        {"claims": '{"id_token": {"email": {"essential": "yes"}}}'},
        {"claims": "{" + " " * 3000 + "}"},
        {"id_token_hint": "not-a-jwt"},
        {"prompt": "none login"},
    ):
        params = code_request(client, "openid", **bad)
        started = await start_authorization(http, stack, params)
        back = query_of(started.headers["Location"])
        assert back["error"] == "invalid_request", (bad, back)
        assert back["state"] == params["state"]


async def test_login_hint_prefills_the_sign_in_page_and_is_escaped(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client = await make_client(redis, ["openid"])
    hint = 'alice"><script>x()</script>'
    started = await start_authorization(
        http, stack, code_request(client, "openid", login_hint=hint)
    )
    async with http.get(f"{stack.authorize}{started.headers['Location']}") as page:
        html = await page.text()
    assert 'value="alice&#34;&gt;&lt;script&gt;x()&lt;/script&gt;"' in html
    assert "<script>x()" not in html


async def test_the_approval_page_words_openid_scopes_plainly(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    client = await make_client(redis, ["openid", "profile", "email"])
    started = await start_authorization(http, stack, code_request(client, "openid profile email"))
    signed_in = await sign_in(http, stack, started.headers["Location"], user, PASSWORD)
    async with http.get(f"{stack.authorize}{signed_in.headers['Location']}") as page:
        html = await page.text()
    for name in ("openid", "profile", "email"):
        assert STANDARD_SCOPES[name] in html, name


async def test_request_objects_and_other_response_modes_are_refused_by_name(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Core §6.1, §6.2: an OP without request objects answers so; a response mode other
    than the response type's own is not silently replaced by it."""
    client = await make_client(redis, ["openid"])
    for extra, error in (
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://app.example.com/r/1"}, "request_uri_not_supported"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ):
        started = await start_authorization(http, stack, code_request(client, "openid", **extra))
        assert query_of(started.headers["Location"])["error"] == error, extra
    started = await start_authorization(
        http, stack, code_request(client, "openid", response_mode="query")
    )
    assert started.headers["Location"].startswith("/login?")


async def test_a_sub_asked_for_by_value_must_be_the_person_signed_in(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Core §5.5.1: a positive answer only for the person that sub names."""
    alice, bob = await make_user(redis), await make_user(redis)
    client = await make_client(redis, ["openid"], remember_consent=True)
    _, alices = await signed_in_id_token(http, stack, client, alice)
    alice_sub = jwt.decode(alices["id_token"], options={"verify_signature": False})["sub"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, bobs = await signed_in_id_token(other, stack, client, bob)
    bob_sub = jwt.decode(bobs["id_token"], options={"verify_signature": False})["sub"]

    for sub, answer in ((bob_sub, "error"), (alice_sub, "code")):
        claims = orjson.dumps({"id_token": {"sub": {"value": sub}}}).decode()
        started = await start_authorization(
            http, stack, code_request(client, "openid", prompt="none", claims=claims)
        )
        assert answer in query_of(started.headers["Location"]), sub


async def test_signing_in_as_someone_else_than_the_hint_names_is_login_required(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Core §3.1.2.1: the hint names Alice; Bob, signed in, is asked to sign in again and
    does so as himself: the client gets login_required, not Bob's ID token."""
    alice, bob = await make_user(redis), await make_user(redis)
    client = await make_client(redis, ["openid"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, alices = await signed_in_id_token(other, stack, client, alice)
    await signed_in_id_token(http, stack, client, bob)

    params = code_request(client, "openid", id_token_hint=alices["id_token"])
    started = await start_authorization(http, stack, params)
    assert started.headers["Location"].startswith("/login?")  # Bob must sign in again
    signed_in = await sign_in(http, stack, started.headers["Location"], bob, PASSWORD)
    decided = await decide(http, stack, signed_in.headers["Location"])
    back = query_of(decided.headers["Location"])
    assert back["error"] == "login_required" and "code" not in back


async def test_a_person_who_unticks_openid_is_not_signed_in_to_the_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    user = await make_user(redis)
    scope = await make_scope(redis)
    client = await make_client(redis, ["openid", scope])
    back = await authorize(http, stack, code_request(client, f"openid {scope}"), user, tick=[scope])
    reply = await exchange(http, stack, client, back["code"])
    assert reply.status == 200 and reply.body["scope"] == scope
    assert "id_token" not in reply.body


async def test_pairwise_clients_get_opaque_access_tokens_and_a_sid_of_their_sector(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A JWT access token's sub is the person's own and the client can read it; a sid
    shared by two sectors would let them join their pairwise subs (Core §8.1)."""
    with pytest.raises(Invalid, match="opaque"):
        await make_client(redis, ["openid"], subject_type="pairwise", jwt_access_tokens=True)
    user = await make_user(redis)
    public = await make_client(redis, ["openid"])
    pairwise = await make_client(
        redis, ["openid"], subject_type="pairwise", sector_identifier="north.example.com"
    )
    _, seen_public = await signed_in_id_token(http, stack, public, user)
    _, seen_pairwise = await signed_in_id_token(http, stack, pairwise, user)  # same session
    assert not looks_like_jwt(seen_pairwise["access_token"])
    public_claims = jwt.decode(seen_public["id_token"], options={"verify_signature": False})
    pairwise_claims = jwt.decode(seen_pairwise["id_token"], options={"verify_signature": False})
    assert pairwise_claims["sid"] != public_claims["sid"]
    assert pairwise_claims["sub"] != public_claims["sub"]
