"""JWT access tokens (RFC 9068) end to end: issued by the code flow and client credentials
to the clients that choose them (or to all, by the global setting), verifiable with the
JWK Set at GET /jwks.json (RFC 7517 §5), recorded by ``jti`` so that introspection
(RFC 7662) and revocation (RFC 7009) treat them as opaque tokens; forgeries of RFC 8725
§2 refused by introspection. Over HTTP against the running services, and in this process
where the settings must differ."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis
from tessera_resource_server.jwt_verification import looks_like_jwt

from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from shared.domain.token_records import Grant
from shared.security.signing_keys import (
    PRIVATE_MEMBERS,
    KeySet,
    SigningKey,
    generate_key_file,
    load_key_set,
)
from shared.storage import clients, families, tokens
from shared.storage.clients import NEVER_EXPIRES
from shared.storage.tessera import Tessera
from tests.assertions import assert_token_response
from tests.flows import (
    exchange,
    introspect,
    is_active,
    obtain_code,
    refresh,
    revoke,
    token_request,
    verify_with_jwks,
)
from tests.records import (
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_setup,
)
from tests.replies import Reply, basic_auth_for
from tests.stack import FORWARDED_HTTPS, Stack, production_settings

JWKS_CACHE_CONTROL = "public, max-age=300"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unsegment(text: str) -> dict[str, Any]:
    """The JSON object of a segment (``segment``'s inverse)."""
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return value


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Header, claims and signature segment of a compact JWS, unverified."""
    header, payload, signature = token.split(".")
    return unsegment(header), unsegment(payload), signature


def stack_key_set(stack: Stack) -> KeySet:
    """The keys the test stack's services sign with and accept."""
    assert stack.signing_keys is not None
    return load_key_set(stack.signing_keys)


async def client_credentials_token(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, scope: str
) -> str:
    reply = await token_request(
        http, stack, client, {"grant_type": "client_credentials", "scope": scope}
    )
    assert_token_response(reply, refresh=False, scope=scope)
    return str(reply.body["access_token"])


async def cc_setup(redis: Redis, **options: Any) -> tuple[str, Registered, Registered]:
    """A scope, a client_credentials client (``options`` go to make_client), and a
    resource server."""
    scope = await make_scope(redis)
    client = await make_client(redis, [scope], grants=["client_credentials"], **options)
    return scope, client, await make_resource_server(redis, [scope])


async def fetch_jwks(http: aiohttp.ClientSession, stack: Stack) -> tuple[Any, dict[str, Any]]:
    async with http.get(f"{stack.token}/jwks.json") as r:
        assert r.status == 200
        return r.headers, await r.json()


def assert_active_record(info: Reply, claims: dict[str, Any], username: str | None) -> None:
    """Introspection answers from the stored record, which agrees with the JWT."""
    assert info.status == 200, info.body
    assert info.body["active"] is True
    assert info.body["client_id"] == claims["client_id"]
    assert info.body["scope"] == claims["scope"]
    assert info.body["sub"] == claims["sub"]
    assert info.body["iat"] == claims["iat"]
    assert info.body["exp"] == claims["exp"]
    assert info.body["iss"] == claims["iss"]
    assert info.body["token_type"] == "Bearer"
    assert info.body.get("username") == username


# --- issued, published, verified --------------------------------------------------------


async def test_the_code_flow_gives_a_jwt_the_jwks_verifies(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, jwt_access_tokens=True, access_token_lifetime=900, refresh_count=1)
    api = await make_resource_server(redis, [s.scope])
    code = await obtain_code(http, stack, s)

    reply = await exchange(http, stack, s.client, code)

    assert_token_response(reply, refresh=True, scope=s.scope)
    assert reply.body["expires_in"] == 900
    token = reply.body["access_token"]
    # RFC 9068 §2.1: typ at+jwt; ES256 by default, with the kid of a published key.
    header, claims = await verify_with_jwks(http, stack, token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": header["kid"]}
    assert header["kid"] == stack_key_set(stack).signing.kid
    # RFC 9068 §2.2.
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}
    assert claims["iss"] == stack.issuer
    assert claims["aud"] == stack.issuer
    assert claims["client_id"] == s.client.client_id
    assert claims["scope"] == s.scope
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 30
    assert claims["sub"] and claims["sub"] != s.user
    assert families.family_of(claims["jti"]) == families.family_of(code)
    # The refresh token stays opaque.
    assert not looks_like_jwt(reply.body["refresh_token"])
    assert_active_record(await introspect(http, stack, api, token), claims, s.user)

    # A refresh gives a new JWT with a jti of its own, in the same family.
    refreshed = await refresh(http, stack, s.client, reply.body["refresh_token"])
    assert_token_response(refreshed, refresh=False, scope=s.scope)
    _, newer = await verify_with_jwks(http, stack, refreshed.body["access_token"])
    assert newer["jti"] != claims["jti"]
    assert families.family_of(newer["jti"]) == families.family_of(claims["jti"])
    assert newer["sub"] == claims["sub"]

    # RFC 7009: revoking the JWT revokes it, and the family with it.
    status, _, body = await revoke(http, stack, s.client, token)
    assert (status, body) == (200, "")
    assert not await is_active(http, stack, api, token)
    assert not await is_active(http, stack, api, refreshed.body["access_token"])


async def test_client_credentials_gives_a_jwt_whose_subject_is_the_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope, client, api = await cc_setup(redis, jwt_access_tokens=True)

    token = await client_credentials_token(http, stack, client, scope)

    header, claims = await verify_with_jwks(http, stack, token)
    assert header["alg"] == "ES256"
    # RFC 9068 §2.2: with no resource owner, sub names the client.
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert claims["exp"] - claims["iat"] == 3600
    info = await introspect(http, stack, api, token)
    assert_active_record(info, claims, None)
    assert "owner_id" not in info.body

    status, _, _ = await revoke(http, stack, client, token)
    assert status == 200
    assert not await is_active(http, stack, api, token)


async def test_the_jwks_publishes_public_keys_only(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    headers, jwks = await fetch_jwks(http, stack)

    # Resource servers may cache it (RFC 9068 §4 has them fetch it by jwks_uri).
    assert headers["Cache-Control"] == JWKS_CACHE_CONTROL
    assert headers["Content-Type"].startswith("application/json")
    assert jwks == stack_key_set(stack).jwks()
    assert jwks["keys"]
    for jwk in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["kid"] and jwk["use"] == "sig"
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    # RFC 8414 §2: the metadata points at it.
    async with http.get(f"{stack.authorize}/.well-known/oauth-authorization-server") as r:
        assert (await r.json())["jwks_uri"] == f"{stack.token}/jwks.json"


# --- which clients get a JWT ------------------------------------------------------------


async def test_opaque_clients_get_opaque_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    api = await make_resource_server(redis, [scope])
    # False: the client's choice; None: the global setting, opaque in the test stack.
    for choice in (False, None):
        client = await make_client(
            redis, [scope], grants=["client_credentials"], jwt_access_tokens=choice
        )
        token = await client_credentials_token(http, stack, client, scope)
        assert not looks_like_jwt(token)
        assert token.count(".") == 1 and families.family_of(token) is not None
        assert await is_active(http, stack, api, token)


async def test_tokens_that_never_expire_are_never_jwts(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    api = await make_resource_server(redis, [scope])
    # RFC 9068 §2.2: exp is REQUIRED, so registration refuses the combination ...
    with pytest.raises(ValueError, match="RFC 9068"):
        await make_client(
            redis,
            [scope],
            grants=["client_credentials"],
            access_token_lifetime=NEVER_EXPIRES,
            jwt_access_tokens=True,
        )
    # ... and a record that has it anyway (edited, or from an older release) gets opaque
    # tokens rather than a JWT without exp.
    client = await make_client(redis, [scope], grants=["client_credentials"])
    client.client.access_token_lifetime = NEVER_EXPIRES
    client.client.jwt_access_tokens = True
    await clients.save(redis, client.client)

    reply = await token_request(
        http, stack, client, {"grant_type": "client_credentials", "scope": scope}
    )

    assert_token_response(reply, refresh=False, scope=scope)
    assert "expires_in" not in reply.body
    assert not looks_like_jwt(reply.body["access_token"])
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert "exp" not in info.body


async def test_the_global_setting_chooses_jwt_for_clients_without_a_choice(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, aiohttp_client: AiohttpClient
) -> None:
    settings = production_settings(
        stack.redis_url,
        TESSERA_ACCESS_TOKEN_FORMAT="jwt",
        TESSERA_SIGNING_KEYS=str(stack.signing_keys),
    )
    service = await aiohttp_client(token_app(settings), headers=FORWARDED_HTTPS)
    scope = await make_scope(redis)
    api = await make_resource_server(redis, [scope])
    signing = stack_key_set(stack).signing

    async def issue(**options: Any) -> dict[str, Any]:
        client = await make_client(redis, [scope], grants=["client_credentials"], **options)
        form = {"grant_type": "client_credentials", "scope": scope}
        async with service.post("/token", data=form, headers=basic_auth_for(client)) as r:
            assert r.status == 200
            assert r.headers["Cache-Control"] == "no-store"
            return dict(await r.json())

    by_default = await issue()
    claims = jwt.decode(
        by_default["access_token"],
        signing.public_key,
        algorithms=["ES256"],
        issuer="https://id.example.com",
        audience="https://id.example.com",
    )
    assert claims["exp"] - claims["iat"] == by_default["expires_in"] == 3600
    assert jwt.get_unverified_header(by_default["access_token"])["typ"] == "at+jwt"
    # The client's own choice wins over the global one.
    assert not looks_like_jwt((await issue(jwt_access_tokens=False))["access_token"])
    # A token that never expires cannot be a JWT (RFC 9068 §2.2: exp is required).
    forever = await issue(access_token_lifetime=NEVER_EXPIRES)
    assert not looks_like_jwt(forever["access_token"])
    assert "expires_in" not in forever
    # Opaque tokens do not depend on the issuer: the stack's introspection knows them.
    assert await is_active(http, stack, api, forever["access_token"])


# --- forgeries, refused by introspection (RFC 8725 §2, §3.1; RFC 9068 §4) ----------------

Forge = Callable[[str, SigningKey], str]


def _other_key_same_kid(token: str, key: SigningKey) -> str:
    header, claims, _ = parts(token)
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, other, algorithm="ES256", headers=header)


def _unknown_key_live_jti(token: str, key: SigningKey) -> str:
    # A key of the attacker's, with its own kid: the jti names the live token.
    _, claims, _ = parts(token)
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, other, algorithm="ES256", headers={"typ": "at+jwt", "kid": "k1"})


def _alg_none(token: str, key: SigningKey) -> str:
    header, claims, _ = parts(token)
    return f"{segment({**header, 'alg': 'none'})}.{segment(claims)}."


def _alg_none_keeping_the_signature(token: str, key: SigningKey) -> str:
    header, claims, signature = parts(token)
    return f"{segment({**header, 'alg': 'none'})}.{segment(claims)}.{signature}"


def _hs256_with_the_public_key(token: str, key: SigningKey) -> str:
    # RFC 8725 §2.1: the published public key, as PEM, used as the HMAC secret.
    header, claims, _ = parts(token)
    public_pem = jwt.PyJWK(key.public_jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{segment({**header, 'alg': 'HS256'})}.{segment(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _scope_widened(token: str, key: SigningKey) -> str:
    _, claims, signature = parts(token)
    widened = {**claims, "scope": f"{claims['scope']} admin"}
    return f"{token.split('.')[0]}.{segment(widened)}.{signature}"


def _client_id_swapped(token: str, key: SigningKey) -> str:
    _, claims, signature = parts(token)
    return f"{token.split('.')[0]}.{segment({**claims, 'client_id': 'other'})}.{signature}"


def _signature_stripped(token: str, key: SigningKey) -> str:
    return token.rsplit(".", 1)[0] + "."


def _our_key_wrong_typ(token: str, key: SigningKey) -> str:
    # Signed with our own key, but not an access token (RFC 9068 §4: typ must be at+jwt).
    _, claims, _ = parts(token)
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})


def _our_key_other_issuer(token: str, key: SigningKey) -> str:
    header, claims, _ = parts(token)
    return jwt.encode(
        {**claims, "iss": "https://evil.example.net"},
        key.private_key,
        algorithm="ES256",
        headers=header,
    )


def _our_key_expired(token: str, key: SigningKey) -> str:
    header, claims, _ = parts(token)
    past = int(time.time()) - 60
    return jwt.encode(
        {**claims, "iat": past - 3600, "exp": past},
        key.private_key,
        algorithm="ES256",
        headers=header,
    )


FORGERIES = [
    pytest.param(_other_key_same_kid, id="other-key-same-kid"),
    pytest.param(_unknown_key_live_jti, id="unknown-key-live-jti"),
    pytest.param(_alg_none, id="alg-none"),
    pytest.param(_alg_none_keeping_the_signature, id="alg-none-with-signature"),
    pytest.param(_hs256_with_the_public_key, id="hs256-public-key-as-secret"),
    pytest.param(_scope_widened, id="payload-scope-widened"),
    pytest.param(_client_id_swapped, id="payload-client-id-swapped"),
    pytest.param(_signature_stripped, id="signature-stripped"),
    pytest.param(_our_key_wrong_typ, id="our-key-typ-jwt"),
    pytest.param(_our_key_other_issuer, id="our-key-other-issuer"),
    pytest.param(_our_key_expired, id="our-key-expired"),
]


@pytest.mark.parametrize("forge", FORGERIES)
async def test_a_forged_jwt_is_inactive_and_revokes_nothing(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, forge: Forge
) -> None:
    scope, client, api = await cc_setup(redis, jwt_access_tokens=True)
    genuine = await client_credentials_token(http, stack, client, scope)
    key = stack_key_set(stack).signing
    forged = forge(genuine, key)
    assert forged != genuine
    assert looks_like_jwt(forged)
    # Each forgery still names the live token by its jti.
    assert parts(forged)[1]["jti"] == parts(genuine)[1]["jti"]

    info = await introspect(http, stack, api, forged)

    assert info.status == 200
    assert info.body == {"active": False}
    assert info.headers["Cache-Control"] == "no-store"
    # Presented for revocation by the token's own client, it revokes nothing either.
    status, _, body = await revoke(http, stack, client, forged)
    assert (status, body) == (200, "")
    assert await is_active(http, stack, api, genuine)


async def test_the_jti_of_a_jwt_is_not_itself_an_access_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The jti is an identifier (RFC 7519 §4.1.7), which resource servers log for replay
    detection and audit; it must not work as a bearer token on its own."""
    scope, client, api = await cc_setup(redis, jwt_access_tokens=True)
    genuine = await client_credentials_token(http, stack, client, scope)
    jti = parts(genuine)[1]["jti"]

    assert not await is_active(http, stack, api, jti)
    assert await is_active(http, stack, api, genuine)


# --- key rotation (shared/security/signing_keys.py) ----------------------------------------------


async def test_a_token_signed_by_an_older_key_of_the_directory_still_verifies(
    stack: Stack, redis: Redis, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    old = generate_key_file(keys_dir / "2025-01-01.pem")
    new = generate_key_file(keys_dir / "2025-07-01.pem")
    removed = generate_key_file(tmp_path / "2024-01-01.pem")  # no longer in the directory
    directory = load_key_set(keys_dir)
    # The file whose name sorts last signs; both are accepted.
    assert directory.signing.kid == new.kid
    assert {key.kid for key in directory.keys} == {old.kid, new.kid}
    settings = production_settings(stack.redis_url, TESSERA_SIGNING_KEYS=str(keys_dir))
    service = await aiohttp_client(introspect_app(settings), headers=FORWARDED_HTTPS)
    scope, client, api = await cc_setup(redis, jwt_access_tokens=True)

    async def issue(key_set: KeySet) -> str:
        grant = Grant(families.new_family(), client.client_id, [scope], None, client.client_id)
        tessera = Tessera(settings, redis, key_set)
        issued = await tokens.issue(tessera, client.client, grant, refreshable=False)
        assert issued is not None
        return issued.access_token

    async def active(token: str) -> bool:
        async with service.post(
            "/introspect", data={"token": token}, headers=basic_auth_for(api)
        ) as r:
            assert r.status == 200
            return bool((await r.json())["active"])

    by_old = await issue(KeySet(signing=old, keys=directory.keys))
    by_new = await issue(directory)
    by_removed = await issue(KeySet(signing=removed, keys=(removed,)))
    assert parts(by_old)[0]["kid"] == old.kid
    assert parts(by_new)[0]["kid"] == new.kid

    assert await active(by_old)
    assert await active(by_new)
    # Once its key is taken out of the directory, a token no longer verifies, though its
    # record is still stored.
    assert not await active(by_removed)
    assert await tokens.find_unverified(redis, by_removed) is not None


async def test_a_jwt_client_without_signing_keys_fails_before_its_code_is_used(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, aiohttp_client: AiohttpClient
) -> None:
    s = await make_setup(redis, jwt_access_tokens=True)
    code = await obtain_code(http, stack, s)
    # A token service configured without TESSERA_SIGNING_KEYS, behind a TLS proxy.
    keyless = await aiohttp_client(
        token_app(production_settings(stack.redis_url)), headers=FORWARDED_HTTPS
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": s.client.client_id,
        "client_secret": s.client.secret or "",
    }

    failed = await keyless.post("/token", data=form)

    assert failed.status == 500
    assert (await failed.json())["error"] == "server_error"
    # The code was not used up: a service with keys still redeems it.
    assert_token_response(await exchange(http, stack, s.client, code), refresh=False)
