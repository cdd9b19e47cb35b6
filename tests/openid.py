"""Checking ID tokens as a relying party would, with libraries nobody on the team wrote:
joserfc verifies the signature against the keys published at the discovery document's
``jwks_uri``, and Authlib's OpenID Connect ``CodeIDToken`` validates the claims (Core
§3.1.3.7: iss, aud, exp, iat, nonce, azp, at_hash, auth_time when max_age was sent)."""

from __future__ import annotations

from typing import Any

import aiohttp
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.stack import Stack

OPENID_CONFIGURATION = "/.well-known/openid-configuration"


async def discovery(http: aiohttp.ClientSession, stack: Stack) -> dict[str, Any]:
    async with http.get(f"{stack.authorize}{OPENID_CONFIGURATION}") as r:
        assert r.status == 200, await r.text()
        document: dict[str, Any] = await r.json()
        return document


async def published_keys(http: aiohttp.ClientSession, stack: Stack) -> KeySet:
    """The JWK Set at the discovery document's jwks_uri."""
    async with http.get((await discovery(http, stack))["jwks_uri"]) as r:
        assert r.status == 200
        return KeySet.import_key_set(await r.json())


async def validated_id_token(
    http: aiohttp.ClientSession,
    stack: Stack,
    id_token: str,
    *,
    client_id: str,
    nonce: str | None = None,
    access_token: str | None = None,
    max_age: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ID token's header and claims, once its signature and claims are valid for
    ``client_id``; raises otherwise."""
    keys = await published_keys(http, stack)
    token = jwt.decode(id_token, keys, algorithms=["ES256", "RS256"])
    params: dict[str, Any] = {"client_id": client_id}
    if nonce is not None:
        params["nonce"] = nonce
    if access_token is not None:
        params["access_token"] = access_token
    if max_age is not None:
        params["max_age"] = max_age
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": stack.issuer},
            "aud": {"essential": True, "value": client_id},
        },
        params=params,
    )
    claims.validate()
    return dict(token.header), dict(claims)
