"""The library end to end without Tessera's server: an aiohttp API protected with
``protect()`` verifies JWT access tokens (RFC 9068) against a JWK Set that a small aiohttp
app publishes, as Tessera's token service does at /jwks.json, and answers as RFC 6750 §3
says. (Introspection and the scope definitions are tested against the real Tessera in
the repository's tests/.)"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from cryptography.hazmat.primitives.asymmetric import ec
from signers import AUDIENCE, ISSUER, Signer, access_claims, segment
from yarl import URL

from tessera_resource_server import (
    ACCESS_TOKEN,
    ResourceServerSettings,
    protect,
    public,
    requires_scope,
)
from tessera_resource_server.middleware import logged_path

REALM = "notes"
JWKS = web.AppKey("jwks", dict[str, Any])
FETCHES = web.AppKey("fetches", list[str])

ApiClient = TestClient[web.Request, web.Application]


@requires_scope("notes:read")
async def list_notes(request: web.Request) -> web.Response:
    token = request[ACCESS_TOKEN]
    return web.json_response({"sub": token.sub, "scopes": sorted(token.scopes)})


@requires_scope("notes:write")
async def add_note(request: web.Request) -> web.Response:
    return web.json_response({"added": True}, status=201)


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def notes_app(settings: ResourceServerSettings) -> web.Application:
    app = web.Application()
    app.router.add_get("/notes", list_notes)
    app.router.add_post("/notes", add_note)
    app.router.add_get("/healthz", healthz)
    protect(app, settings)
    return app


async def publish_jwks(request: web.Request) -> web.Response:
    request.app[FETCHES].append(request.path)
    return web.json_response(request.app[JWKS])


@pytest.fixture
async def jwks_server(aiohttp_server: Any, es_signer: Signer) -> TestServer:
    """The JWK Set of ``es_signer``, published over HTTP."""
    app = web.Application()
    app[JWKS] = {"keys": [es_signer.jwk()]}
    app[FETCHES] = []
    app.router.add_get("/jwks.json", publish_jwks)
    server: TestServer = await aiohttp_server(app)
    return server


Start = Callable[[str], Awaitable[ApiClient]]


@pytest.fixture
def notes_api(aiohttp_client: Any) -> Start:
    """The notes API, verifying JWTs with the JWK Set at ``jwks_uri``."""

    async def start(jwks_uri: str) -> ApiClient:
        settings = ResourceServerSettings(
            issuer=ISSUER, jwks_uri=jwks_uri, audience=AUDIENCE, realm=REALM
        )
        client: ApiClient = await aiohttp_client(notes_app(settings))
        return client

    return start


async def call(
    api: ApiClient, method: str, path: str, token: str | None = None, **headers: str
) -> tuple[int, Any, Any]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with api.request(method, path, headers=headers) as response:
        return response.status, response.headers, await response.json()


async def test_a_valid_jwt_reaches_the_handler_within_its_scope(
    jwks_server: TestServer, notes_api: Start, es_signer: Signer
) -> None:
    api = await notes_api(str(jwks_server.make_url("/jwks.json")))
    token = es_signer.sign(access_claims(scope="notes:read profile"))

    status, headers, body = await call(api, "GET", "/notes", token)
    assert status == 200, body
    assert body == {"sub": "alice", "scopes": ["notes:read", "profile"]}

    # RFC 6750 §3.1: a good token without the scope; the challenge names the scope.
    status, headers, body = await call(api, "POST", "/notes", token)
    assert status == 403
    assert body["error"] == "insufficient_scope"
    assert headers["WWW-Authenticate"] == (
        f'Bearer realm="{REALM}", error="insufficient_scope", '
        f'error_description="{body["error_description"]}", scope="notes:write"'
    )
    assert headers["Cache-Control"] == "no-store"


async def test_requests_without_a_good_token_get_the_answers_of_rfc_6750(
    jwks_server: TestServer,
    notes_api: Start,
    es_signer: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = await notes_api(str(jwks_server.make_url("/jwks.json")))
    good = es_signer.sign(access_claims())
    unsigned = {"alg": "none", "typ": "at+jwt", "kid": es_signer.kid}
    intruder = Signer(es_signer.kid, "ES256", ec.generate_private_key(ec.SECP256R1()))
    refused_tokens = {
        "another key under our kid": intruder.sign(access_claims()),
        "a kid nobody published": intruder.sign(access_claims(), kid="made-up"),
        "another audience": es_signer.sign(access_claims(aud="https://other.example.com")),
        "alg none": f"{segment(unsigned)}.{segment(access_claims())}.",
        "opaque, and nothing to introspect it with": "family.secret",
    }

    with caplog.at_level(logging.INFO, logger="tessera.resource_server"):
        assert (await call(api, "GET", "/notes", good))[0] == 200
        for name, token in refused_tokens.items():
            status, headers, body = await call(api, "GET", "/notes", token)
            assert status == 401, name
            assert headers["WWW-Authenticate"].startswith(
                f'Bearer realm="{REALM}", error="invalid_token"'
            ), name
            assert body["error"] == "invalid_token", name

    # One fetch of the JWK Set for all of it: the made-up kid did not cause another.
    assert jwks_server.app[FETCHES] == ["/jwks.json"]
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == len(refused_tokens)
    for token in refused_tokens.values():
        credential = token.rsplit(".", 1)[-1] or token  # a JWT's signature makes it one
        assert credential not in "\n".join(refusals)  # never the token

    # §3.1: no credentials (or another scheme's) get a challenge without an error code.
    for headers_sent in ({}, {"Authorization": "Basic ZGVtbzpkZW1v"}):
        status, headers, body = await call(api, "GET", "/notes", **headers_sent)
        assert status == 401
        assert headers["WWW-Authenticate"] == f'Bearer realm="{REALM}"'
        assert "error" not in body
    # §2.3: a token in the query is refused, not read.
    status, _, body = await call(api, "GET", f"/notes?access_token={good}")
    assert (status, body["error"]) == (400, "invalid_request")
    assert (await call(api, "GET", "/healthz"))[0] == 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_an_unreachable_jwks_is_503_not_401(notes_api: Start, es_signer: Signer) -> None:
    api = await notes_api(f"http://127.0.0.1:{free_port()}/jwks.json")

    status, headers, body = await call(api, "GET", "/notes", es_signer.sign(access_claims()))

    # The token may well be good: Tessera could not be asked.
    assert status == 503
    assert body["error"] == "temporarily_unavailable"
    assert headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in headers


def test_a_path_with_raw_control_or_non_ascii_characters_is_logged_escaped() -> None:
    # What aiohttp's pure-Python parser can let into rel_url.raw_path (its C parser
    # answers 400): a raw U+2028 or NEL splits lines for some readers, str.splitlines too.
    for raw in ("/notes/a\u2028b", "/notes/a\x85b", "/notes/a\udc85b", "/notes/a\x1bb"):
        request = make_mocked_request("GET", "/").clone(rel_url=URL.build(path=raw, encoded=True))
        assert request.rel_url.raw_path == raw
        logged = logged_path(request)
        assert logged.isascii() and logged.isprintable(), logged
        assert len(logged.splitlines()) == 1
    plain = make_mocked_request("GET", "/notes/x%0Ay?access_token=secret")
    assert logged_path(plain) == "/notes/x%0Ay"  # as sent, without the query
