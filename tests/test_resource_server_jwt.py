"""JWT access tokens (RFC 9068) verified by the resource server itself, against Tessera's
JWK Set: the example API accepts a JWT from the browser flow with introspection down;
refuses the forgeries of RFC 8725 §2 and every token failing a check of RFC 9068 §4;
fetches a key rotated in when a token names its kid, but not more often than its
rate limit; and, with ``introspect_jwts``, refuses a revoked JWT at once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from redis.asyncio import Redis
from tessera_resource_server import RESOURCE_SERVER, ResourceServerSettings
from tessera_resource_server.jwt_verification import looks_like_jwt

from devtools.local_processes import free_port
from services.example_api.app import READ, WRITE
from services.token.app import create_app as token_app
from shared.security import jwt_access_tokens
from shared.security.signing_keys import generate_key_file, load_key_set
from tests.flows import revoke
from tests.resource_servers import (
    REALM,
    Start,
    assert_challenge,
    browser_token,
    call,
    nowhere,
    requests_served,
    rs_settings,
)
from tests.stack import Stack, production_settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


# --- verified locally --------------------------------------------------------------------


async def test_a_jwt_from_the_browser_flow_is_verified_without_introspection(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ, jwt_access_tokens=True)
    assert looks_like_jwt(holder.token)
    # Introspection is unreachable: an answer can only come from local verification.
    down = f"{nowhere()}/introspect"
    api = await notes_api(rs_settings(stack, holder.api, introspection_endpoint=down))

    read = await call(api, "GET", "/notes", holder.token)

    assert read.status == 200, read.body
    # A JWT names the user by sub (RFC 9068 §2.2), not by username.
    assert read.body["owner"] == unverified(holder.token)[1]["sub"]
    write = await call(api, "POST", "/notes", holder.token, json={"text": "x"})
    assert_challenge(write, 403, "insufficient_scope", scope=WRITE)


async def test_forged_and_failing_jwts_are_invalid_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ, jwt_access_tokens=True)
    down = f"{nowhere()}/introspect"
    api = await notes_api(rs_settings(stack, holder.api, introspection_endpoint=down))
    jwks_before = await requests_served(http, stack.token, "/jwks.json")
    assert stack.signing_keys is not None
    key = load_key_set(stack.signing_keys).signing
    header, claims = unverified(holder.token)
    now = int(time.time())

    def signed(changes: dict[str, Any], **header_changes: Any) -> str:
        """Signed with Tessera's real key: only the changed claim or header is wrong."""
        return jwt.encode(
            {**claims, **changes}, key.private_key, algorithm=key.alg,
            headers={"typ": "at+jwt", "kid": key.kid, **header_changes},
        )  # fmt: skip

    # The same claims re-signed are accepted, so every refusal below is for its change.
    assert (await call(api, "GET", "/notes", signed({}))).status == 200
    within_leeway = signed({"exp": now - 5})
    assert (await call(api, "GET", "/notes", within_leeway)).status == 200

    other_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = f"{segment({**header, 'alg': 'HS256'})}.{segment(claims)}"
    hs_signature = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    h, _, s = holder.token.split(".")
    forgeries = {
        "another key, same kid": jwt.encode(
            claims, other_key, algorithm="ES256", headers={"typ": "at+jwt", "kid": key.kid}
        ),
        "alg none": f"{segment({**header, 'alg': 'none'})}.{segment(claims)}.",
        "HS256 with the public key as secret": f"{hs_input}.{b64(hs_signature)}",
        "more scope, same signature": f"{h}.{segment({**claims, 'scope': f'{READ} {WRITE}'})}.{s}",
        "another user, same signature": f"{h}.{segment({**claims, 'sub': 'someone'})}.{s}",
        "typ JWT": signed({}, typ="JWT"),
        "no typ": jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid}),
        "wrong aud": signed({"aud": "https://other-api.example.com"}),
        "wrong iss": signed({"iss": "https://evil.example.com"}),
        "expired": signed({"exp": now - 120}),
        "not yet valid": signed({"nbf": now + 120}),
        "no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            key.private_key,
            algorithm=key.alg,
            headers={"typ": "at+jwt", "kid": key.kid},
        ),
        "RS256 named for an EC key": f"{segment({**header, 'alg': 'RS256'})}.{segment(claims)}.{s}",
        "unknown kid": jwt.encode(
            claims, other_key, algorithm="ES256", headers={"typ": "at+jwt", "kid": "made-up"}
        ),
    }
    for name, forged in forgeries.items():
        answer = await call(api, "GET", "/notes", forged)
        assert answer.status == 401, name
        assert_challenge(answer, 401, "invalid_token")

    # One fetch of the JWK Set for all of it: the unknown kid did not cause another.
    assert await requests_served(http, stack.token, "/jwks.json") == jwks_before + 1


async def test_the_jwks_unreachable_is_503(
    stack: Stack,
    redis: Redis,
    http: aiohttp.ClientSession,
    notes_api: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = await browser_token(http, stack, redis, READ, jwt_access_tokens=True)
    jwks = f"{nowhere()}/jwks.json"
    api = await notes_api(ResourceServerSettings(issuer=stack.issuer, jwks_uri=jwks, realm=REALM))

    with caplog.at_level(logging.INFO, logger="tessera.resource_server"):
        answer = await call(api, "GET", "/notes", holder.token)
        # Within jwks_min_refresh_seconds of the failed fetch: nothing was ever loaded, so
        # still 503 (not 401 for an "unknown kid"), and without asking again.
        again = await call(api, "GET", "/notes", holder.token)

    for each in (answer, again):
        assert each.status == 503, each.body
        assert "WWW-Authenticate" not in each.headers
        assert each.body["error"] == "temporarily_unavailable"
    assert api.app[RESOURCE_SERVER].jwks.fetches == 1  # type: ignore[union-attr]
    assert caplog.text.count(f"Tessera unavailable: GET {jwks}: ClientConnectorError") == 2
    # Without introspection an opaque token cannot be checked at all: refused.
    opaque = await browser_token(http, stack, redis, READ)
    assert_challenge(await call(api, "GET", "/notes", opaque.token), 401, "invalid_token")


async def test_audience_is_checked_on_jwts_only(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    """What the settings docstring and README say: introspection answers carry no aud
    (RFC 7662 §2.2), so an opaque token is not held to ``audience``; a JWT is."""
    jwt_holder = await browser_token(http, stack, redis, READ, jwt_access_tokens=True)
    opaque = await browser_token(http, stack, redis, READ)
    assert not looks_like_jwt(opaque.token)
    other = "https://other-api.example.com"  # not the aud Tessera puts in its JWTs

    for introspect_jwts in (False, True):
        settings = rs_settings(stack, opaque.api, audience=other, introspect_jwts=introspect_jwts)
        api = await notes_api(settings)
        assert (await call(api, "GET", "/notes", opaque.token)).status == 200
        refused = await call(api, "GET", "/notes", jwt_holder.token)
        assert_challenge(refused, 401, "invalid_token")


# --- key rotation ------------------------------------------------------------------------


ISSUER = "https://id.example.com"  # production_settings' issuer


def sign_with(keys_dir: Path, subject: str) -> str:
    """A JWT access token signed by Tessera's signer with the directory's signing key (the
    file that sorts last), as the token service would sign it."""
    now = int(time.time())
    return jwt_access_tokens.sign(
        load_key_set(keys_dir),
        {
            "iss": ISSUER, "sub": subject, "aud": ISSUER, "exp": now + 300, "iat": now,
            "jti": f"jti-{subject}", "client_id": "rotation-test", "scope": READ,
        },
    )  # fmt: skip


async def start_token_service(stack: Stack, keys_dir: Path, port: int) -> TestServer:
    """The real token service (its /jwks.json) signing with ``keys_dir``, on ``port``: the
    same port each time, so that a resource server sees one JWK Set go down and come back."""
    settings = production_settings(
        stack.redis_url, TESSERA_SIGNING_KEYS=str(keys_dir), TESSERA_REQUIRE_HTTPS="false"
    )
    server = TestServer(token_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    return server


def jwks_settings(port: int, **extra: Any) -> ResourceServerSettings:
    jwks = f"http://127.0.0.1:{port}/jwks.json"
    return ResourceServerSettings(issuer=ISSUER, jwks_uri=jwks, realm=REALM, **extra)


async def test_a_key_published_later_is_fetched_when_a_token_names_it(
    tmp_path: Path, stack: Stack, notes_api: Start
) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    generate_key_file(keys_dir / "2026-01.pem")
    port = free_port()

    async def token_service() -> TestServer:
        return await start_token_service(stack, keys_dir, port)

    def settings(**extra: Any) -> ResourceServerSettings:
        return jwks_settings(port, **extra)

    first = await token_service()
    try:
        # Far shorter than the rotation below takes (settings refuse 0).
        eager = await notes_api(settings(jwks_min_refresh_seconds=0.001))
        limited = await notes_api(settings())  # the default: 30 s between kid refreshes
        old = sign_with(keys_dir, "old")
        for api in (eager, limited):
            assert (await call(api, "GET", "/notes", old)).status == 200
    finally:
        await first.close()

    # Rotation, step one (shared.security.signing_keys): the new key is published.
    generate_key_file(keys_dir / "2026-02.pem")
    second = await token_service()
    try:
        new = sign_with(keys_dir, "new")
        assert unverified(new)[0]["kid"] != unverified(old)[0]["kid"]

        answer = await call(eager, "GET", "/notes", new)
        assert answer.status == 200, answer.body
        assert answer.body["owner"] == "new"
        assert eager.app[RESOURCE_SERVER].jwks.fetches == 2  # type: ignore[union-attr]

        # Within the rate limit the unknown kid refetches nothing: made-up kids cannot
        # make the resource server hammer /jwks.json. (The key comes with the next
        # refresh, which is why the signing key changes only in step two.)
        assert_challenge(await call(limited, "GET", "/notes", new), 401, "invalid_token")
        for n in range(20):
            made_up = jwt.encode(
                {"n": n}, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                headers={"typ": "at+jwt", "kid": f"kid-{n}"},
            )  # fmt: skip
            assert (await call(limited, "GET", "/notes", made_up)).status == 401
        assert limited.app[RESOURCE_SERVER].jwks.fetches == 1  # type: ignore[union-attr]
    finally:
        await second.close()


async def test_a_key_rotated_in_while_the_jwks_is_down_is_503_then_200(
    tmp_path: Path, stack: Stack, notes_api: Start
) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    generate_key_file(keys_dir / "2026-01.pem")
    port = free_port()
    window = 0.3  # jwks_min_refresh_seconds, small so that the test need not wait 30 s
    api = await notes_api(jwks_settings(port, jwks_min_refresh_seconds=window))
    keys = api.app[RESOURCE_SERVER].jwks
    assert keys is not None
    old = sign_with(keys_dir, "old")
    server = await start_token_service(stack, keys_dir, port)
    try:
        assert (await call(api, "GET", "/notes", old)).status == 200
    finally:
        await server.close()

    # A key is rotated in while /jwks.json is down; once the window has passed, a token
    # naming it makes the resource server try to fetch it, and that fetch fails.
    generate_key_file(keys_dir / "2026-02.pem")
    new = sign_with(keys_dir, "new")
    await asyncio.sleep(window + 0.05)
    down = await call(api, "GET", "/notes", new)
    assert down.status == 503, down.body  # not 401: the token may well be good
    assert "WWW-Authenticate" not in down.headers
    assert keys.fetches == 2
    # The keys fetched before still serve their tokens, and within the window the new kid
    # is 503 again without another fetch: the rate limit holds while Tessera is down.
    assert (await call(api, "GET", "/notes", old)).status == 200
    assert (await call(api, "GET", "/notes", new)).status == 503
    assert keys.fetches == 2

    server = await start_token_service(stack, keys_dir, port)
    try:
        await asyncio.sleep(window + 0.05)
        back = await call(api, "GET", "/notes", new)
        assert back.status == 200, back.body
        assert back.body["owner"] == "new"
        assert keys.fetches == 3
        # A kid that the successful fetch did not bring is truly unknown: 401, no fetch.
        made_up = jwt.encode(
            {"sub": "x"}, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
            headers={"typ": "at+jwt", "kid": "made-up"},
        )  # fmt: skip
        assert_challenge(await call(api, "GET", "/notes", made_up), 401, "invalid_token")
        assert keys.fetches == 3
    finally:
        await server.close()


# --- the trade-off, and its switch -------------------------------------------------------


async def test_a_revoked_jwt_stays_valid_locally_unless_jwts_are_introspected(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, notes_api: Start
) -> None:
    holder = await browser_token(http, stack, redis, READ, jwt_access_tokens=True)
    local = await notes_api(rs_settings(stack, holder.api))
    checked = await notes_api(rs_settings(stack, holder.api, introspect_jwts=True, cache_seconds=0))
    for api in (local, checked):
        assert (await call(api, "GET", "/notes", holder.token)).status == 200

    status, _, _ = await revoke(http, stack, holder.setup.client, holder.token)
    assert status == 200

    # Local verification cannot know: the JWT is good until its exp (README) ...
    assert (await call(local, "GET", "/notes", holder.token)).status == 200
    # ... unless the resource server introspects JWTs too.
    assert_challenge(await call(checked, "GET", "/notes", holder.token), 401, "invalid_token")
