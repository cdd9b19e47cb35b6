"""RFC 8414 metadata and the health endpoints of every service."""

from __future__ import annotations

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from tests.records import make_scope
from tests.stack import Stack, unreachable_redis


async def test_metadata_lists_everything_implemented(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    async with http.get(f"{stack.authorize}/.well-known/oauth-authorization-server") as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        meta = await r.json()

    # RFC 8414 §3.3: the issuer is identical to the one the metadata was fetched from.
    assert meta["issuer"] == stack.issuer
    assert meta["authorization_endpoint"] == f"{stack.issuer}/authorize"
    assert meta["token_endpoint"] == f"{stack.token}/token"
    assert meta["introspection_endpoint"] == f"{stack.introspect}/introspect"
    assert meta["revocation_endpoint"] == f"{stack.token}/revoke"
    assert meta["jwks_uri"] == f"{stack.token}/jwks.json"
    assert meta["response_types_supported"] == ["code", "token"]
    assert meta["response_modes_supported"] == ["query", "fragment"]
    assert meta["grant_types_supported"] == [
        "authorization_code",
        "implicit",
        "client_credentials",
        "password",
        "refresh_token",
    ]
    assert meta["code_challenge_methods_supported"] == ["plain", "S256"]
    secret_methods = {"client_secret_basic", "client_secret_post"}
    assert set(meta["token_endpoint_auth_methods_supported"]) == {*secret_methods, "none"}
    # RFC 7009 §2.1: public clients revoke with their client_id alone.
    assert set(meta["revocation_endpoint_auth_methods_supported"]) == {*secret_methods, "none"}
    # RFC 7662 §2.1: introspection needs an authenticated caller.
    assert set(meta["introspection_endpoint_auth_methods_supported"]) == secret_methods
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert scope in meta["scopes_supported"]

    # Every advertised endpoint answers.
    async with http.get(meta["jwks_uri"]) as r:
        assert r.status == 200
        assert (await r.json())["keys"]
    async with http.post(meta["revocation_endpoint"], data={}) as r:
        assert r.status == 401  # there, but wants a client


@pytest.mark.parametrize("service", ["authorize", "token", "introspect"])
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_and_readiness(
    stack: Stack, http: aiohttp.ClientSession, service: str, path: str
) -> None:
    async with http.get(f"{getattr(stack, service)}{path}") as r:
        assert r.status == 200
        body = await r.json()
    assert body["status"] in {"ok", "ready"}


async def test_readiness_fails_when_redis_does_not_answer(aiohttp_client: AiohttpClient) -> None:
    from services.token.app import create_app

    client = await aiohttp_client(create_app(unreachable_redis()))
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["status"] == "unavailable"
    alive = await client.get("/healthz")
    assert alive.status == 200


async def test_unexpected_paths_are_plain_404s(stack: Stack, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{stack.token}/nothing-here") as r:
        assert r.status == 404
