"""CORS for browser-based clients (shared/web/cors.py, shared/web/browser_origins.py), over HTTP
against the running services: which origins are allowed (the redirect URIs of enabled
public clients, exactly), what a preflight is answered, and that nothing but /token,
/revoke, /jwks.json and the metadata ever answers a cross-origin request. That a real
browser runs the code flow from another origin, and is blocked from an unregistered
one, is in tests/test_browser.py."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy
from redis.asyncio import Redis

from shared.storage import clients
from shared.web.browser_origins import web_origin
from tests.flows import code_request, new_request_id, origin_allowed
from tests.records import Registered, make_client, make_resource_server, make_scope, unique
from tests.replies import basic_auth_for, cors_preflight
from tests.stack import ADMIN_TOKEN, Stack, logged_lines
from tests.waiting import until_origin

ACAO = "Access-Control-Allow-Origin"
CORS_HEADERS = (
    ACAO,
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
)


def browser_urls(stack: Stack) -> dict[str, str]:
    """Every route a browser app may call, with the method it uses there."""
    return {
        f"{stack.token}/token": "POST",
        f"{stack.revoke}": "POST",
        f"{stack.token}/jwks.json": "GET",
        stack.metadata: "GET",
    }


async def browser_app(
    redis: Redis, scope: str | None = None, host: str | None = None, **options: Any
) -> tuple[Registered, str]:
    """A public client whose redirect URI is on an origin of its own; its origin."""
    origin = f"https://{host or unique('spa')}.example.com"
    client = await make_client(
        redis,
        [scope or await make_scope(redis)],
        client_type="public",
        redirect_uris=[f"{origin}/callback"],
        **options,
    )
    return client, origin


async def barrier(http: aiohttp.ClientSession, stack: Stack, redis: Redis) -> None:
    """Registers a browser app and waits for its origin: the services follow changes in
    order, so every change made before this one has been followed too. What is still
    refused afterwards is refused for good, not yet to be heard of."""
    _, origin = await browser_app(redis)
    await until_origin(http, stack, origin, allowed=True)


def assert_no_cors(headers: CIMultiDictProxy[str]) -> None:
    for name in CORS_HEADERS:
        assert name not in headers, (name, headers.get(name))


# --- the origin of a redirect URI ------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://app.example.com/callback", "https://app.example.com"),
        ("https://App.Example.COM:443/cb?x=1", "https://app.example.com"),
        ("https://app.example.com:8443/cb", "https://app.example.com:8443"),
        ("http://127.0.0.1:9009/callback", "http://127.0.0.1:9009"),
        ("http://localhost:80/cb", "http://localhost"),
        ("http://[::1]:3000/cb", "http://[::1]:3000"),
        ("https://user:pw@app.example.com/cb", "https://app.example.com"),
        ("https://bücher.example/cb", "https://xn--bcher-kva.example"),
        ("com.example.app:/oauth2redirect", None),  # a native app's private-use scheme
        ("https://app.example.com:99999/cb", None),
        ("https:///cb", None),
    ],
)
def test_the_origin_of_a_redirect_uri_is_what_a_browser_sends(uri: str, origin: str | None) -> None:
    # RFC 6454 §6.2: scheme, host and the port unless it is the scheme's default.
    assert web_origin(uri) == origin


# --- allowed origins ---------------------------------------------------------------------------


async def test_a_preflight_from_a_public_clients_origin_is_answered(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    _, origin = await browser_app(redis)
    await until_origin(http, stack, origin, allowed=True)

    for url, method in browser_urls(stack).items():
        status, headers = await cors_preflight(http, url, origin, method)
        assert status == 204, url
        assert headers[ACAO] == origin  # that origin, never "*"
        assert headers["Access-Control-Allow-Methods"] == method
        # Content-Type only: a browser app names itself with client_id in the form.
        assert headers["Access-Control-Allow-Headers"] == "Content-Type"
        assert headers["Access-Control-Max-Age"] == "600"
        assert headers["Vary"] == "Origin"
        # Tokens travel in bodies, never in cookies: no credentialed requests.
        assert "Access-Control-Allow-Credentials" not in headers
        assert "Access-Control-Expose-Headers" not in headers


async def test_answers_to_an_allowed_origin_carry_it_errors_included(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client, origin = await browser_app(redis)
    await until_origin(http, stack, origin, allowed=True)
    form = {"grant_type": "authorization_code", "code": "no.such-code", "client_id": "x"}

    async with http.post(f"{stack.token}/token", data=form, headers={"Origin": origin}) as r:
        # An error the browser app can read, not a network failure.
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_client"
        assert r.headers[ACAO] == origin
        assert r.headers["Vary"] == "Origin"
        assert "Access-Control-Allow-Credentials" not in r.headers
    form["client_id"] = client.client_id
    async with http.post(f"{stack.token}/token", data=form, headers={"Origin": origin}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "invalid_grant"
        assert r.headers[ACAO] == origin
    revoke_form = {"token": "no.such-token", "client_id": client.client_id}
    async with http.post(stack.revoke, data=revoke_form, headers={"Origin": origin}) as r:
        assert r.status == 200
        assert r.headers[ACAO] == origin
    for url in (f"{stack.token}/jwks.json", stack.metadata):
        async with http.get(url, headers={"Origin": origin}) as r:
            assert r.status == 200
            assert r.headers[ACAO] == origin
            assert r.headers["Vary"] == "Origin"


async def test_cacheable_documents_vary_on_origin_even_when_asked_without_one(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Fetch standard, "CORS protocol and HTTP caches": /jwks.json may be cached, and a
    cache must not give the answer to a request without Origin (no ACAO) to a browser
    app, nor one origin's answer to another."""
    for url in (f"{stack.token}/jwks.json", stack.metadata):
        async with http.get(url) as r:
            assert r.status == 200
            assert r.headers["Vary"] == "Origin"
            assert_no_cors(r.headers)


async def test_a_request_without_origin_gets_no_cors_headers(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    form = {"grant_type": "authorization_code", "code": "no.such-code", "client_id": "x"}
    async with http.post(f"{stack.token}/token", data=form) as r:
        assert r.status == 401
        assert_no_cors(r.headers)
        assert "Vary" not in r.headers
    # A plain OPTIONS request, no preflight: what the resource allows (RFC 9110 §9.3.7).
    async with http.options(f"{stack.token}/token") as r:
        assert r.status == 204
        assert r.headers["Allow"] == "POST, OPTIONS"
        assert_no_cors(r.headers)


# --- refused origins -----------------------------------------------------------------------


async def test_a_preflight_from_any_other_origin_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    host = unique("spa")
    _, origin = await browser_app(redis, host=host)
    await until_origin(http, stack, origin, allowed=True)

    for other in (
        f"https://{host}.example.com.evil.example",  # the allowed one as a prefix
        f"https://evil-{host}.example.com",
        f"http://{host}.example.com",  # another scheme
        f"https://{host}.example.com:8443",  # another port
        f"{origin}/",  # not an origin as a browser sends it
        f"{origin}/callback",
        origin.upper(),
        f"{origin}, https://evil.example",
        "null",  # a sandboxed frame, a file: page
        "*",
        "",
    ):
        for url, method in browser_urls(stack).items():
            status, headers = await cors_preflight(http, url, other, method)
            assert status == 403, (other, url)
            assert_no_cors(headers)
            assert headers["Vary"] == "Origin"
        async with http.get(f"{stack.token}/jwks.json", headers={"Origin": other}) as r:
            assert r.status == 200  # answered, but a browser will not let the page read it
            assert_no_cors(r.headers)


async def test_a_refused_origin_is_logged_as_such_and_not_echoed(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    other = f"https://{unique('evil')}.example"
    trace = new_request_id()
    asked = {
        "Origin": other,
        "Access-Control-Request-Method": "POST",
        "X-Request-ID": trace,
    }
    async with http.options(f"{stack.token}/token", headers=asked) as r:
        assert r.status == 403

    (line,) = [
        line
        for line in await logged_lines(http, stack.token, "token")
        if line.get("request_id") == trace
    ]
    assert line["message"] == "OPTIONS /token 403"
    assert line["cors"] == "origin not allowed"
    assert other not in str(line)  # the caller's text: it might be anything


async def test_a_confidential_clients_redirect_origin_is_not_allowed(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A confidential client has a secret, which has no place in a browser."""
    origin = f"https://{unique('web')}.example.com"
    await make_client(redis, [await make_scope(redis)], redirect_uris=[f"{origin}/callback"])
    await barrier(http, stack, redis)

    assert not await origin_allowed(http, stack, origin)
    status, headers = await cors_preflight(http, f"{stack.token}/token", origin)
    assert status == 403
    assert_no_cors(headers)


async def test_disabling_or_deleting_the_client_withdraws_its_origin(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    host = unique("spa")
    scope = await make_scope(redis)
    client, origin = await browser_app(redis, scope, host=host)
    # Another app on the same origin keeps it allowed until it goes too.
    twin, _ = await browser_app(redis, scope, host=host)
    await until_origin(http, stack, origin, allowed=True)

    await clients.set_enabled(redis, client.client_id, False)
    await barrier(http, stack, redis)
    assert await origin_allowed(http, stack, origin)
    await clients.set_enabled(redis, twin.client_id, False)
    await until_origin(http, stack, origin, allowed=False)
    await clients.set_enabled(redis, twin.client_id, True)
    await until_origin(http, stack, origin, allowed=True)
    await clients.delete(redis, twin.client_id)
    await until_origin(http, stack, origin, allowed=False)


async def test_origins_are_refused_while_client_changes_go_unheard(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Without the subscription a deleted client's origin could stay allowed: the
    services allow none until they listen again, then read every client afresh."""
    _, origin = await browser_app(redis)
    await until_origin(http, stack, origin, allowed=True)

    await redis.client_kill_filter(_type="pubsub")

    await until_origin(http, stack, origin, allowed=False)
    await until_origin(http, stack, origin, allowed=True)
    assert await origin_allowed(http, stack, origin)


async def test_the_origin_check_costs_no_redis_round_trip(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    _, origin = await browser_app(redis)
    await until_origin(http, stack, origin, allowed=True)

    async def commands() -> int:
        stats = await redis.info("commandstats")
        return sum(int(entry["calls"]) for entry in stats.values())

    before = await commands()
    for _ in range(100):
        for other in (origin, "https://not-registered.example"):
            status, _ = await cors_preflight(http, f"{stack.token}/token", other)
            assert status in (204, 403)
            async with http.get(f"{stack.token}/jwks.json", headers={"Origin": other}) as r:
                assert r.status == 200
    # 400 requests; the one INFO above and a few of the services' own (a health check).
    assert await commands() - before < 20


# --- routes that never answer a cross-origin request -------------------------------------


async def test_nothing_else_answers_a_cross_origin_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Not /introspect (resource servers call it, never browsers), not the admin API,
    not the authorize service's pages (RFC 9700 §2.6: CORS MUST NOT be supported at the
    authorization endpoint), not the probes, even for an allowed origin."""
    client, origin = await browser_app(redis)
    await until_origin(http, stack, origin, allowed=True)
    api = await make_resource_server(redis, client.client.scopes)
    origin_only = {"Origin": origin}

    for url in (
        f"{stack.introspect}/introspect",
        f"{stack.introspect}/scopes",
        f"{stack.admin}/v1/tokens",
        f"{stack.authorize}/authorize",
        f"{stack.authorize}/login",
        f"{stack.authorize}/consent",
        f"{stack.authorize}/connected-apps",
        f"{stack.authorize}/logout",
        f"{stack.authorize}/end_session",
        f"{stack.token}/healthz",
        f"{stack.authorize}/readyz",
    ):
        for method in ("POST", "GET"):
            status, headers = await cors_preflight(http, url, origin, method)
            assert status != 204, url
            assert_no_cors(headers)
    async with http.post(
        f"{stack.introspect}/introspect",
        data={"token": "no.such-token"},
        headers={**basic_auth_for(api), **origin_only},
    ) as r:
        assert r.status == 200
        assert_no_cors(r.headers)
    async with http.get(
        f"{stack.admin}/v1/tokens",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **origin_only},
    ) as r:
        assert r.status == 200
        assert_no_cors(r.headers)
    scope = client.client.scopes[0]
    async with http.get(
        f"{stack.authorize}/authorize",
        params=code_request(client, scope, redirect_uri=client.client.redirect_uris[0]),
        headers=origin_only,
        allow_redirects=False,
    ) as r:
        assert r.status in (302, 303)
        assert_no_cors(r.headers)
