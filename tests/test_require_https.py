"""Require HTTPS (webMethods Integration Server's setting, on by default; RFC 6749 §3.1,
§3.2, §10.9): a plain-http request to any endpoint is refused with 400 invalid_request; behind a
TLS-terminating ingress, X-Forwarded-Proto is believed only from the trusted proxies;
probes are exempt; a development switch serves plain http on loopback only.

The services run in this process (aiohttp_client, on loopback), with production settings
that trust the loopback proxy unless a test says otherwise.
"""

from __future__ import annotations

import datetime
import json
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from aiohttp.typedefs import LooseHeaders
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict, CIMultiDictProxy
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from services.authorize.app import create_app as authorize_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.config.settings import Settings, SettingsError
from shared.domain.oauth_errors import OAuthError
from shared.web.app_keys import SETTINGS
from shared.web.transport import is_https, require_https
from tests.assertions import assert_error
from tests.flows import is_active, live_tokens, token_request
from tests.records import make_client, make_resource_server, make_scope
from tests.replies import Reply, basic_auth_for, page_message
from tests.stack import FORWARDED_HTTPS, Stack, production_settings

HTTPS_REQUIRED = "This endpoint requires HTTPS."
AppFactory = Callable[[Settings], web.Application]

# Every endpoint of the three services: (service, method, path, what a plain-http request
# gets: a JSON error or the authorize service's error page, and the status and a piece of
# the text it gets once Require HTTPS lets it through: the next check's verdict, or the
# document itself).
ENDPOINTS = [
    pytest.param(token_app, "POST", "/token", "json", 401, "invalid_client", id="token"),
    pytest.param(token_app, "POST", "/revoke", "json", 401, "invalid_client", id="revoke"),
    pytest.param(token_app, "GET", "/jwks.json", "json", 200, '"keys"', id="jwks"),
    pytest.param(
        introspect_app, "POST", "/introspect", "json", 401, "invalid_client", id="introspect"
    ),
    pytest.param(
        authorize_app, "GET", "/authorize", "page", 400, "names no client", id="GET-authorize"
    ),
    pytest.param(
        authorize_app, "POST", "/authorize", "page", 400, "names no client", id="POST-authorize"
    ),
    pytest.param(
        authorize_app, "GET", "/authorize/resume", "page", 400, "has expired", id="resume"
    ),
    pytest.param(authorize_app, "GET", "/login", "page", 400, "has expired", id="GET-login"),
    pytest.param(
        authorize_app, "POST", "/login", "page", 403, "The form has expired", id="POST-login"
    ),
    pytest.param(authorize_app, "GET", "/consent", "page", 400, "has expired", id="GET-consent"),
    pytest.param(
        authorize_app, "POST", "/consent", "page", 403, "The form has expired", id="POST-consent"
    ),
    pytest.param(authorize_app, "GET", "/logout", "page", 200, "Not signed in", id="logout"),
    pytest.param(
        authorize_app,
        "GET",
        "/.well-known/oauth-authorization-server",
        "page",
        200,
        '"issuer"',
        id="metadata",
    ),
]
ENDPOINT_ARGS = ("create_app", "method", "path", "kind", "status", "text")

# A form with something for every endpoint to chew on, and no credentials.
FORM = {"grant_type": "client_credentials", "token": "x.y", "interaction": "nope"}


# Status, headers and text of an answer.
Answered = tuple[int, CIMultiDictProxy[str], str]


async def call(
    client: TestClient[Any, Any], method: str, path: str, headers: LooseHeaders | None = None
) -> Answered:
    data = FORM if method == "POST" else None
    async with client.request(method, path, data=data, headers=headers, allow_redirects=False) as r:
        return r.status, r.headers, await r.text()


def assert_https_required(answer: Answered, kind: str) -> None:
    status, headers, text = answer
    if kind == "json":
        reply = Reply(status, headers, json.loads(text))
        assert_error(reply, 400, "invalid_request")
        assert reply.body["error_description"] == HTTPS_REQUIRED
    else:
        # The person sees an error page, never a redirect (it may not be safe to follow).
        assert status == 400, text
        assert "Location" not in headers
        assert headers["Content-Type"].startswith("text/html")
        assert page_message(text) == HTTPS_REQUIRED
        assert "Error code: <code>invalid_request</code>" in text
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in headers


def assert_passed(answer: Answered, status: int, text: str) -> None:
    """Past Require HTTPS: the endpoint's own answer, not the HTTPS refusal."""
    got, _, body = answer
    assert got == status, answer
    assert text in body, body
    assert HTTPS_REQUIRED not in body


def settings_for(stack: Stack, **env: str) -> Settings:
    return production_settings(stack.redis_url, **env)


# --- refused over plain http ---------------------------------------------------------------


@pytest.mark.parametrize(ENDPOINT_ARGS, ENDPOINTS)
async def test_a_plain_http_request_is_refused(
    stack: Stack,
    aiohttp_client: AiohttpClient,
    create_app: AppFactory,
    method: str,
    path: str,
    kind: str,
    status: int,
    text: str,
) -> None:
    client = await aiohttp_client(create_app(settings_for(stack)))

    assert_https_required(await call(client, method, path), kind)


@pytest.mark.parametrize(ENDPOINT_ARGS, ENDPOINTS)
async def test_https_from_the_trusted_ingress_is_served(
    stack: Stack,
    aiohttp_client: AiohttpClient,
    create_app: AppFactory,
    method: str,
    path: str,
    kind: str,
    status: int,
    text: str,
) -> None:
    client = await aiohttp_client(create_app(settings_for(stack)))

    assert_passed(await call(client, method, path, FORWARDED_HTTPS), status, text)


@pytest.mark.parametrize(
    "trusted",
    [
        pytest.param("", id="no-trusted-proxies"),
        pytest.param("10.0.0.0/8,fd00::/8", id="proxies-elsewhere"),
        pytest.param("127.0.0.2", id="a-neighbouring-address"),
    ],
)
@pytest.mark.parametrize(ENDPOINT_ARGS, ENDPOINTS[:5])
async def test_x_forwarded_proto_from_an_untrusted_peer_is_ignored(
    stack: Stack,
    aiohttp_client: AiohttpClient,
    create_app: AppFactory,
    method: str,
    path: str,
    kind: str,
    status: int,
    text: str,
    trusted: str,
) -> None:
    """The spoofing attack: anyone can send the header; only a trusted proxy is believed."""
    client = await aiohttp_client(create_app(settings_for(stack, TESSERA_TRUSTED_PROXIES=trusted)))

    assert_https_required(await call(client, method, path, FORWARDED_HTTPS), kind)


@pytest.mark.parametrize(
    ("value", "served"),
    [
        pytest.param("http", False, id="http"),
        pytest.param("https, http", False, id="https-then-http"),
        pytest.param("https,http", False, id="https-then-http-no-space"),
        pytest.param("", False, id="empty"),
        pytest.param("httpss", False, id="httpss"),
        pytest.param("https;", False, id="https-semicolon"),
        pytest.param("wss", False, id="wss"),
        pytest.param("http, https", True, id="http-then-https"),
        pytest.param("HTTPS", True, id="upper-case"),
        pytest.param(" https ", True, id="spaces"),
    ],
)
async def test_the_last_x_forwarded_proto_value_counts(
    stack: Stack, aiohttp_client: AiohttpClient, value: str, served: bool
) -> None:
    """The nearest (trusted) proxy appends its value last; what the client sent before it
    proves nothing."""
    client = await aiohttp_client(token_app(settings_for(stack)))

    answer = await call(client, "GET", "/jwks.json", {"X-Forwarded-Proto": value})

    if served:
        assert answer[0] == 200, answer
    else:
        assert_https_required(answer, "json")


async def test_x_forwarded_proto_in_two_header_lines_counts_the_last(
    stack: Stack, aiohttp_client: AiohttpClient
) -> None:
    """RFC 9110 §5.3: two field lines are one comma-joined value, so a client's own
    ``https`` followed by the proxy's ``http`` is plain http."""
    client = await aiohttp_client(token_app(settings_for(stack)))
    spoofed = CIMultiDict([("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")])

    assert_https_required(await call(client, "GET", "/jwks.json", spoofed), "json")


async def test_a_refused_request_has_no_effect(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, aiohttp_client: AiohttpClient
) -> None:
    """Require HTTPS comes before anything else: credentials sent in the clear do not
    get a token, and a revocation sent in the clear revokes nothing."""
    scope = await make_scope(redis)
    client = await make_client(redis, [scope], grants=["client_credentials"])
    api = await make_resource_server(redis, [scope])
    token_service = await aiohttp_client(token_app(settings_for(stack)))
    issued = await token_request(
        http, stack, client, {"grant_type": "client_credentials", "scope": scope}
    )
    assert issued.status == 200
    token = issued.body["access_token"]
    tokens_before = await live_tokens(http, stack, client=client.client_id)

    for path, form in (
        ("/token", {"grant_type": "client_credentials", "scope": scope}),
        ("/revoke", {"token": token}),
    ):
        async with token_service.post(path, data=form, headers=basic_auth_for(client)) as r:
            assert r.status == 400
            assert (await r.json())["error_description"] == HTTPS_REQUIRED

    assert await live_tokens(http, stack, client=client.client_id) == tokens_before
    assert await is_active(http, stack, api, token)


async def test_a_direct_tls_connection_needs_no_header(
    stack: Stack, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """TLS to the service itself (no ingress) is HTTPS whatever the proxy settings."""
    server = TestServer(token_app(settings_for(stack, TESSERA_TRUSTED_PROXIES="")))
    await server.start_server(ssl=_server_tls(tmp_path))
    client: TestClient[web.Request, None] = await aiohttp_client(
        server, connector=aiohttp.TCPConnector(ssl=False)
    )
    assert str(client.make_url("/")).startswith("https://")

    status, headers, _ = await call(client, "GET", "/jwks.json")

    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=300"


def _server_tls(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


# --- exempt, switched off, development ---------------------------------------------------


@pytest.mark.parametrize("create_app", [token_app, introspect_app, authorize_app])
async def test_probes_answer_over_plain_http(
    stack: Stack, aiohttp_client: AiohttpClient, create_app: AppFactory
) -> None:
    """Kubelet probes come over plain http from inside the cluster and carry nothing."""
    client = await aiohttp_client(create_app(settings_for(stack)))

    for path, status in (("/healthz", "ok"), ("/readyz", "ready")):
        async with client.get(path) as r:
            assert r.status == 200
            assert await r.json() == {"status": status}


@pytest.mark.parametrize(ENDPOINT_ARGS, ENDPOINTS)
async def test_with_require_https_off_plain_http_is_served(
    stack: Stack,
    aiohttp_client: AiohttpClient,
    create_app: AppFactory,
    method: str,
    path: str,
    kind: str,
    status: int,
    text: str,
) -> None:
    client = await aiohttp_client(
        create_app(settings_for(stack, TESSERA_REQUIRE_HTTPS="0", TESSERA_TRUSTED_PROXIES=""))
    )

    assert_passed(await call(client, method, path), status, text)


@pytest.mark.parametrize(ENDPOINT_ARGS, ENDPOINTS)
async def test_the_development_switch_serves_loopback_over_plain_http(
    stack: Stack,
    aiohttp_client: AiohttpClient,
    create_app: AppFactory,
    method: str,
    path: str,
    kind: str,
    status: int,
    text: str,
) -> None:
    # As `make run` and the test stack run: an http loopback issuer, no trusted proxy.
    settings = settings_for(
        stack,
        TESSERA_ISSUER="http://127.0.0.1:9000",
        TESSERA_INSECURE_LOOPBACK="1",
        TESSERA_TRUSTED_PROXIES="",
    )
    client = await aiohttp_client(create_app(settings))

    assert_passed(await call(client, method, path), status, text)


def test_switching_https_off_or_the_development_switch_on_is_logged_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tessera.settings"):
        Settings.from_env({"TESSERA_ISSUER": "https://id.example.com"})
        assert caplog.records == []
        Settings.from_env(
            {"TESSERA_ISSUER": "https://id.example.com", "TESSERA_REQUIRE_HTTPS": "false"}
        )
        Settings.from_env(
            {"TESSERA_ISSUER": "http://127.0.0.1:9000", "TESSERA_INSECURE_LOOPBACK": "1"}
        )
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("TESSERA_REQUIRE_HTTPS is off")
    assert messages[1].startswith("TESSERA_INSECURE_LOOPBACK is on")
    assert all(record.levelno == logging.WARNING for record in caplog.records)


# --- the peer's address decides (shared/web/transport.py) ------------------------------------


def _request(settings: Settings, peer: str, headers: dict[str, str] | None = None) -> web.Request:
    """A request as it reaches a service from ``peer``, over plain TCP."""
    transport = mock.Mock()
    extra = {"peername": (peer, 40000), "sockname": ("10.1.0.5", 8080), "sslcontext": None}
    transport.get_extra_info.side_effect = lambda name, default=None: extra.get(name, default)
    app = web.Application()
    app[SETTINGS] = settings
    return make_mocked_request("GET", "/token", headers=headers, app=app, transport=transport)


@pytest.mark.parametrize(
    ("trusted", "peer", "believed"),
    [
        pytest.param("10.244.0.0/16", "10.244.3.7", True, id="ingress-pod-in-the-pod-cidr"),
        pytest.param("10.244.0.0/16", "10.245.0.1", False, id="outside-the-pod-cidr"),
        pytest.param("10.244.0.0/16", "192.168.1.20", False, id="another-network"),
        pytest.param("10.244.0.0/16,fd00::/8", "fd00::12", True, id="ipv6-range"),
        pytest.param("10.244.0.0/16", "fd00::12", False, id="ipv6-not-listed"),
        pytest.param("10.244.3.7", "10.244.3.7", True, id="single-address"),
        pytest.param("", "10.244.3.7", False, id="none-trusted"),
    ],
)
def test_x_forwarded_proto_is_believed_only_from_a_trusted_peer(
    trusted: str, peer: str, believed: bool
) -> None:
    settings = Settings.from_env(
        {"TESSERA_ISSUER": "https://id.example.com", "TESSERA_TRUSTED_PROXIES": trusted}
    )

    assert is_https(_request(settings, peer, FORWARDED_HTTPS), settings) is believed
    # Without the header nobody's plain http is HTTPS.
    assert is_https(_request(settings, peer), settings) is False


@pytest.mark.parametrize(
    ("peer", "served"),
    [
        pytest.param("127.0.0.1", True, id="ipv4-loopback"),
        pytest.param("127.8.9.10", True, id="ipv4-loopback-range"),
        pytest.param("::1", True, id="ipv6-loopback"),
        pytest.param("10.1.2.3", False, id="private-network"),
        pytest.param("203.0.113.9", False, id="public-address"),
    ],
)
async def test_the_development_switch_serves_loopback_peers_only(peer: str, served: bool) -> None:
    settings = Settings.from_env(
        {"TESSERA_ISSUER": "http://127.0.0.1:9000", "TESSERA_INSECURE_LOOPBACK": "1"}
    )
    request = _request(settings, peer)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="served")

    if served:
        response = await require_https(request, handler)
        assert isinstance(response, web.Response)
        assert response.text == "served"
    else:
        with pytest.raises(OAuthError) as refused:
            await require_https(request, handler)
        assert refused.value.error == "invalid_request"
        assert refused.value.status == 400
        assert refused.value.description == HTTPS_REQUIRED


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not-an-address", id="a-name"),
        pytest.param("10.0.0.1/8", id="host-bits-set"),
        pytest.param("300.1.2.3", id="octet-out-of-range"),
        pytest.param("10.0.0.0/33", id="prefix-too-long"),
        pytest.param("127.0.0.1;10.0.0.0/8", id="semicolon-separated"),
        pytest.param("127.0.0.1,*", id="wildcard"),
    ],
)
def test_a_bad_trusted_proxies_value_is_a_settings_error_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(
            {"TESSERA_ISSUER": "https://id.example.com", "TESSERA_TRUSTED_PROXIES": value}
        )
    assert str(refused.value).startswith(f"TESSERA_TRUSTED_PROXIES={value!r}: ")


def test_trusted_proxies_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "TESSERA_ISSUER": "https://id.example.com",
            "TESSERA_TRUSTED_PROXIES": " 10.244.0.0/16 , ,::1,192.0.2.7",
        }
    )
    assert [str(network) for network in settings.trusted_proxies] == [
        "10.244.0.0/16",
        "::1/128",
        "192.0.2.7/32",
    ]
    assert Settings.from_env({"TESSERA_ISSUER": "https://id.example.com"}).trusted_proxies == ()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({"TESSERA_REQUIRE_HTTPS": "maybe"}, "TESSERA_REQUIRE_HTTPS", id="bool"),
        pytest.param(
            {"TESSERA_ISSUER": "http://id.example.com"}, "TESSERA_ISSUER", id="http-issuer"
        ),
        pytest.param(
            {"TESSERA_ISSUER": "http://127.0.0.1:9000"},
            "TESSERA_ISSUER",
            id="http-loopback-issuer-without-the-switch",
        ),
        pytest.param(
            {"TESSERA_ISSUER": "http://id.example.com", "TESSERA_INSECURE_LOOPBACK": "1"},
            "TESSERA_ISSUER",
            id="switch-on-but-not-loopback",
        ),
        pytest.param(
            {"TESSERA_TOKEN_ENDPOINT": "http://id.example.com/token"},
            "TESSERA_TOKEN_ENDPOINT",
            id="http-token-endpoint",
        ),
    ],
)
def test_plain_http_urls_need_the_development_switch_and_loopback(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"TESSERA_ISSUER": "https://id.example.com", **env})
    assert str(refused.value).startswith(f"{variable}=")
