"""webMethods Integration Server's paths of the OAuth services, ``/invoke/pub.oauth/*``
(shared/web/webmethods_paths.py; README, "Moving from webMethods Integration Server").

A client written against those paths with a library nobody here wrote (Authlib, over
httpx) runs the authorization code grant with PKCE S256, the browser's sign-in and
approval driven over HTTP, then refreshes, introspects and revokes, every call by a
webMethods path. Each path answers as the endpoint it aliases, a refusal too, is counted
as that endpoint, keeps its CORS and Require HTTPS, and is not there at all without
TESSERA_WEBMETHODS_PATHS (the session's stack runs without it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from devtools.local_processes import ProcessGroup
from services.authorize.app import create_app as authorize_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from tests.flows import decide, new_request_id, new_verifier, sign_in
from tests.metrics_scrape import samples, value
from tests.records import (
    PASSWORD,
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_user,
    unique,
)
from tests.replies import basic_auth_for, cors_preflight, query_of
from tests.secrets_ledger import remember_secrets
from tests.stack import (
    GENEROUS_RATE_LIMITS,
    LOGS,
    CreateApp,
    Stack,
    production_settings,
    start_stack,
)
from tests.waiting import until_origin

# As a client of webMethods Integration Server knows them: /invoke/<folder>/<service>.
AUTHORIZE = "/invoke/pub.oauth/authorize"
GET_TOKEN = "/invoke/pub.oauth/getToken"
INTROSPECT_TOKEN = "/invoke/pub.oauth/introspectToken"
REVOKE_TOKEN = "/invoke/pub.oauth/revokeToken"
# Each path, the endpoint it aliases, and the service that serves both.
PATHS = [
    pytest.param(AUTHORIZE, "/authorize", "authorize", id="authorize"),
    pytest.param(GET_TOKEN, "/token", "token", id="getToken"),
    pytest.param(INTROSPECT_TOKEN, "/introspect", "introspect", id="introspectToken"),
    pytest.param(REVOKE_TOKEN, "/revoke", "token", id="revokeToken"),
]
LOG_PREFIX = "webmethods-"
ACAO = "Access-Control-Allow-Origin"


@pytest.fixture(scope="module")
def webmethods(stack: Stack) -> Iterator[Stack]:
    """The services again, on the session's Redis, with webMethods Integration Server's
    paths on."""
    assert stack.signing_keys is not None  # start_stack always sets it
    group = ProcessGroup()
    try:
        yield start_stack(
            group,
            stack.redis_url,
            stack.signing_keys,
            log_prefix=LOG_PREFIX,
            extra_env={"TESSERA_WEBMETHODS_PATHS": "true", **GENEROUS_RATE_LIMITS},
        )
    finally:
        group.stop()


def base_url(stack: Stack, service: str) -> str:
    urls = {"authorize": stack.authorize, "token": stack.token, "introspect": stack.introspect}
    return urls[service]


async def test_a_webmethods_client_runs_the_code_grant_with_pkce_refreshes_introspects_revokes(
    webmethods: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    user = await make_user(redis)
    app = await make_client(redis, [scope], refresh_count=2)
    api = await make_resource_server(redis, [scope])
    token_url = f"{webmethods.token}{GET_TOKEN}"
    introspect_url = f"{webmethods.introspect}{INTROSPECT_TOKEN}"
    verifier = new_verifier()
    async with (
        AsyncOAuth2Client(
            client_id=app.client_id,
            client_secret=app.secret,
            token_endpoint_auth_method="client_secret_basic",
            redirect_uri=REDIRECT_URI,
            scope=scope,
            code_challenge_method="S256",
        ) as client,
        AsyncOAuth2Client(client_id=api.client_id, client_secret=api.secret) as resource_server,
    ):
        url, state = client.create_authorization_url(
            f"{webmethods.authorize}{AUTHORIZE}", code_verifier=verifier
        )
        assert query_of(url)["code_challenge_method"] == "S256"

        # The browser: webMethods' authorize path, then Tessera's sign-in and approval pages.
        async with http.get(url, allow_redirects=False) as started:
            assert started.status == 303, await started.text()
            login = started.headers["Location"]
        assert login.startswith("/login?"), login
        signed_in = await sign_in(http, webmethods, login, user, PASSWORD)
        assert signed_in.status == 303
        decided = await decide(http, webmethods, signed_in.headers["Location"])
        back = decided.headers["Location"]
        assert back.startswith(f"{REDIRECT_URI}?")
        assert query_of(back)["iss"] == webmethods.issuer  # RFC 9207

        # Authlib checks the state it sent and sends the verifier (RFC 7636 §4.5).
        first = await client.fetch_token(
            token_url, authorization_response=back, state=state, code_verifier=verifier
        )
        remember_secrets(first)
        assert first["token_type"] == "Bearer"
        assert first["scope"] == scope
        assert first["expires_in"] == 3600
        assert first["refresh_token"]

        refreshed = await client.refresh_token(token_url)
        remember_secrets(refreshed)
        # Rotated (RFC 9700 §4.14.2): new access and refresh tokens.
        assert refreshed["access_token"] != first["access_token"]
        assert refreshed["refresh_token"] != first["refresh_token"]

        answer = await resource_server.introspect_token(
            introspect_url, token=refreshed["access_token"]
        )
        assert answer.status_code == 200
        info = answer.json()
        assert info["active"] is True
        assert (info["client_id"], info["scope"]) == (app.client_id, scope)
        assert info["owner_id"] == info["username"] == user

        # RFC 7009 §2.1: revoking the refresh token revokes the grant's access tokens too.
        revoked = await client.revoke_token(
            f"{webmethods.token}{REVOKE_TOKEN}",
            token=refreshed["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert revoked.status_code == 200
        for token in (first["access_token"], refreshed["access_token"]):
            answer = await resource_server.introspect_token(introspect_url, token=token)
            assert answer.json() == {"active": False}
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(token_url)
        assert refused.value.error == "invalid_grant"


@pytest.mark.parametrize(("path", "canonical", "service"), PATHS)
async def test_without_the_setting_the_webmethods_paths_are_not_served(
    stack: Stack, http: aiohttp.ClientSession, path: str, canonical: str, service: str
) -> None:
    method = "GET" if canonical == "/authorize" else "POST"
    async with http.request(method, f"{base_url(stack, service)}{path}") as r:
        assert r.status == 404
    # While the endpoint itself answers the same request (a refusal, not a 404).
    async with http.request(method, f"{base_url(stack, service)}{canonical}") as r:
        assert r.status in (400, 401)


async def refused_request(redis: Redis, canonical: str) -> dict[str, Any]:
    """A request the endpoint ``canonical`` refuses, as aiohttp's keyword arguments."""
    if canonical == "/authorize":
        # The person's error page: an unknown client is never redirected to.
        return {"method": "GET", "params": {"response_type": "code", "client_id": "no-such"}}
    if canonical == "/token":
        client = await make_client(redis, [await make_scope(redis)])
        return {
            "method": "POST",
            "data": {"grant_type": "urn:example:bogus"},
            "headers": basic_auth_for(client),
        }
    # /introspect and /revoke without client authentication: 401 invalid_client.
    return {"method": "POST", "data": {"token": "not-a-token"}}


# Set per request; everything else in the answer must be the same.
PER_REQUEST_HEADERS = {"Date", "X-Request-ID"}


@pytest.mark.parametrize(("path", "canonical", "service"), PATHS)
async def test_a_webmethods_path_refuses_as_the_endpoint_it_aliases(
    webmethods: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    path: str,
    canonical: str,
    service: str,
) -> None:
    request = await refused_request(redis, canonical)
    answers = []
    for served in (canonical, path):
        async with http.request(
            url=f"{base_url(webmethods, service)}{served}", allow_redirects=False, **request
        ) as r:
            headers = {k: v for k, v in r.headers.items() if k not in PER_REQUEST_HEADERS}
            answers.append((r.status, headers, await r.read()))
    assert answers[0][0] in (400, 401), answers[0]
    assert answers[1] == answers[0]


@pytest.mark.parametrize(
    ("create_app", "path", "method"),
    [
        (authorize_app, AUTHORIZE, "GET"),
        (authorize_app, AUTHORIZE, "POST"),
        (token_app, GET_TOKEN, "POST"),
        (introspect_app, INTROSPECT_TOKEN, "POST"),
        (token_app, REVOKE_TOKEN, "POST"),
    ],
)
async def test_require_https_refuses_plain_http_at_the_webmethods_paths(
    stack: Stack, aiohttp_client: AiohttpClient, create_app: CreateApp, path: str, method: str
) -> None:
    settings = production_settings(stack.redis_url, TESSERA_WEBMETHODS_PATHS="true")
    service = await aiohttp_client(create_app(settings))
    # No X-Forwarded-Proto from the (trusted) loopback proxy: the request came by http.
    async with service.request(method, path, allow_redirects=False) as r:
        assert r.status == 400
        assert "This endpoint requires HTTPS." in await r.text()


async def test_a_browser_app_calls_getToken_and_revokeToken_as_token_and_revoke(
    webmethods: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    origin = f"https://{unique('spa')}.example.com"
    app = await make_client(
        redis, [await make_scope(redis)], client_type="public", redirect_uris=[f"{origin}/cb"]
    )
    await until_origin(http, webmethods, origin, allowed=True)
    for path, form in (
        (GET_TOKEN, {"grant_type": "refresh_token", "refresh_token": "not-a-token"}),
        (REVOKE_TOKEN, {"token": "not-a-token"}),
    ):
        url = f"{webmethods.token}{path}"
        status, headers = await cors_preflight(http, url, origin)
        assert (status, headers[ACAO]) == (204, origin)
        assert headers["Access-Control-Allow-Methods"] == "POST"
        async with http.post(
            url, data={**form, "client_id": app.client_id}, headers={"Origin": origin}
        ) as r:
            # An error too reaches the app, which may read why (shared/web/cors.py).
            assert r.headers[ACAO] == origin
            assert r.status in (200, 400), await r.text()
    # Never at the authorization endpoint (RFC 9700 §2.6), nor at introspection.
    for url, method in (
        (f"{webmethods.authorize}{AUTHORIZE}", "GET"),
        (f"{webmethods.introspect}{INTROSPECT_TOKEN}", "POST"),
    ):
        status, headers = await cors_preflight(http, url, origin, method=method)
        assert status == 405
        assert ACAO not in headers


async def logged_line(http: aiohttp.ClientSession, stack: Stack, request_id: str) -> Any:
    """The token service's access line of the request ``request_id``; the service writes
    a request's line before it reads the next request, so after one more it is there."""
    async with http.get(f"{stack.token}/healthz") as r:
        assert r.status == 200
    lines = (LOGS / f"{LOG_PREFIX}token.log").read_text().splitlines()
    (line,) = [
        found
        for found in (orjson.loads(text) for text in lines if text[:1] == "{")
        if found.get("request_id") == request_id and found["logger"] == "tessera.access"
    ]
    return line


async def test_a_webmethods_path_counts_as_its_endpoint_and_its_log_line_names_the_path(
    webmethods: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client: Registered = await make_client(redis, [await make_scope(redis)])

    async def scrape() -> dict[Any, float]:
        async with http.get(f"{webmethods.token}/metrics") as r:
            return samples(await r.text())

    before = await scrape()
    request_id = new_request_id()
    async with http.post(
        f"{webmethods.token}{GET_TOKEN}",
        data={"grant_type": "urn:example:bogus"},
        headers={**basic_auth_for(client), "X-Request-ID": request_id},
    ) as r:
        assert r.status == 400
    after = await scrape()

    # Counted as /token (dashboards keep one series per endpoint), never by its own path.
    labels = dict(method="POST", route="/token", status="400")
    count = "tessera_http_requests_total"
    assert value(after, count, **labels) == value(before, count, **labels) + 1
    routes = {dict(sample_labels).get("route", "") for _, sample_labels in after}
    assert not {route for route in routes if route.startswith("/invoke/")}
    line = await logged_line(http, webmethods, request_id)
    assert (line["route"], line["path"]) == ("/token", GET_TOKEN)
