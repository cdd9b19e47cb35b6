"""The UserInfo endpoint (OpenID Connect Core §5.3) on the token service, over HTTP
against the running services: tokens from the real flows (the code flow through the
sign-in and approval pages, the password grant, client credentials), presented as RFC 6750
§2.1 and §2.2 allow; the answers read by a third-party client (Authlib) and checked
against the ID token of the same sign-in; every refusal of RFC 6750 §3 tried as an
attacker would."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oidc.core import UserInfo  # type: ignore[import-untyped]
from redis.asyncio import Redis

from shared.storage import clients, keys, users
from tests.flows import (
    authorize,
    code_request,
    exchange,
    new_verifier,
    revoke,
    s256,
    token_request,
)
from tests.records import PASSWORD, Registered, make_client, make_scope, unique
from tests.replies import Reply, cors_preflight
from tests.secrets_ledger import SECRETS_USED
from tests.stack import TEST_PASSWORD_HASHING, Stack, logged_lines
from tests.waiting import until_origin

# A profile holding every standard claim (Core §5.1), so what is left out of an answer
# was left out by the endpoint, not missing from the profile.
PROFILE: dict[str, Any] = {
    "name": "Zoë O'Brien",
    "given_name": "Zoë",
    "family_name": "O'Brien",
    "middle_name": "Ann",
    "nickname": "Z",
    "preferred_username": "zoe",
    "profile": "https://people.example.com/zoe",
    "picture": "https://cdn.example.com/zoe.png",
    "website": "https://zoe.example",
    "email": "zoe@example.com",
    "email_verified": True,
    "gender": "female",
    "birthdate": "0000-02-29",
    "zoneinfo": "Europe/Dublin",
    "locale": "en-IE",
    "phone_number": "+353 1 234 5678",
    "phone_number_verified": False,
    "address": {"street_address": "1 Main St", "locality": "Dublin", "country": "Ireland"},
}
PROFILE_CLAIMS = {
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
}
INVALID_TOKEN_DESCRIPTION = "The access token is invalid, expired or revoked."


async def make_person(redis: Redis) -> users.User:
    return await users.add(redis, unique("zoe"), PASSWORD, TEST_PASSWORD_HASHING, claims=PROFILE)


async def openid_client(
    redis: Redis, scope_names: list[str] | None = None, **options: Any
) -> Registered:
    """A confidential client of the code flow, allowed openid and the profile scopes."""
    allowed = scope_names if scope_names is not None else ["openid", "profile", "email", "phone"]
    return await make_client(redis, allowed, **options)


@dataclass(frozen=True)
class SignedIn:
    """What a client holds after the code flow: the token response's body."""

    access_token: str
    id_token: str | None
    scope: str


async def sign_in(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    username: str,
    scope: str,
    *,
    tick: list[str] | None = None,
    **extra: str,
) -> SignedIn:
    """The code flow over HTTP: the sign-in and approval pages, then the code's exchange."""
    params = code_request(client, scope, nonce=secrets.token_urlsafe(8), **extra)
    back = await authorize(http, stack, params, username, tick=tick)
    reply = await exchange(http, stack, client, back["code"])
    assert reply.status == 200, reply.body
    id_token = reply.body.get("id_token")
    if id_token is not None:
        SECRETS_USED.add(id_token)  # a credential of the person, for the no-secrets check
    return SignedIn(reply.body["access_token"], id_token, reply.body["scope"])


def userinfo_url(stack: Stack) -> str:
    return f"{stack.token}/userinfo"


async def ask(
    http: aiohttp.ClientSession,
    stack: Stack,
    token: str | None,
    method: str = "GET",
    *,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Reply:
    """A request to the UserInfo endpoint, the token in the Authorization header."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with http.request(
        method, userinfo_url(stack), headers=sent, data=form, params=params
    ) as r:
        return Reply(r.status, r.headers, orjson.loads(await r.read()))


def assert_answer(reply: Reply) -> None:
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/json"  # UTF-8, Core §5.3.2
    assert reply.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in reply.headers


def assert_refused(reply: Reply, status: int, error: str, **challenge: str) -> None:
    """RFC 6750 §3: the status, the error in the body and in the Bearer challenge."""
    assert reply.status == status, reply.body
    assert reply.body["error"] == error
    assert set(reply.body) == {"error", "error_description"}
    assert reply.headers["Cache-Control"] == "no-store"
    assert parse_challenge(reply.headers["WWW-Authenticate"]) == {
        "realm": "tessera",
        "error": error,
        "error_description": reply.body["error_description"],
        **challenge,
    }


def assert_invalid_token(reply: Reply) -> None:
    assert_refused(reply, 401, "invalid_token")
    assert reply.body["error_description"] == INVALID_TOKEN_DESCRIPTION


def parse_challenge(value: str) -> dict[str, str]:
    """The parameters of a ``Bearer`` challenge (RFC 6750 §3: quoted strings)."""
    scheme, _, params = value.partition(" ")
    assert scheme == "Bearer", value
    found: dict[str, str] = {}
    for part in params.split('", '):
        name, _, quoted = part.partition('="')
        found[name] = quoted.rstrip('"')
    return found


async def verified_id_token(http: aiohttp.ClientSession, stack: Stack, token: str) -> Any:
    """The claims of an ID token, verified as a relying party does (Core §3.1.3.7) with
    the JWK Set."""
    async with http.get(f"{stack.token}/jwks.json") as r:
        jwks = jwt.PyJWKSet.from_dict(await r.json())
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT"
    key = jwks[header["kid"]]
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        issuer=stack.issuer,
        options={"verify_aud": False},
    )


# --- the answer --------------------------------------------------------------------------


async def test_an_authlib_client_reads_the_claims_of_its_scopes_and_the_sub_of_its_id_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid profile email")
    assert signed_in.id_token is not None

    async with AsyncOAuth2Client(
        client_id=client.client_id, token={"access_token": signed_in.access_token}
    ) as oauth:
        answer = await oauth.get(userinfo_url(stack))
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    info = UserInfo(answer.json())

    # Core §5.3.2: the sub must match the ID token's exactly.
    id_token = await verified_id_token(http, stack, signed_in.id_token)
    assert id_token["aud"] == client.client_id
    assert info["sub"] == id_token["sub"] == person.sub
    # Exactly the claims the two scopes ask for (Authlib's own table of Core §5.4).
    assert info.filter(signed_in.scope) == info
    assert set(info) == {"sub", "email", "email_verified", *PROFILE_CLAIMS}
    assert info["updated_at"] == person.updated_at
    assert info["email_verified"] is True
    assert info["birthdate"] == "0000-02-29"
    info.validate_locale()  # Authlib's check of BCP 47
    # Not the phone scope's, which the client may have but did not ask for.
    assert "phone_number" not in info and "address" not in info


async def test_the_claims_of_a_scope_the_person_did_not_approve_are_never_released(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis)

    signed_in = await sign_in(
        http, stack, client, person.username, "openid email phone", tick=["openid", "phone"]
    )

    assert signed_in.scope == "openid phone"
    reply = await ask(http, stack, signed_in.access_token)
    assert_answer(reply)
    # The stored number in its E.164 form (shared/domain/user_claims.py).
    assert reply.body == {
        "sub": person.sub,
        "phone_number": "+35312345678",
        "phone_number_verified": False,
    }


async def test_openid_alone_answers_the_sub_only(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis)

    signed_in = await sign_in(http, stack, client, person.username, "openid")

    reply = await ask(http, stack, signed_in.access_token)
    assert_answer(reply)
    assert reply.body == {"sub": person.sub}


async def test_claims_asked_for_by_name_are_released_only_within_the_approved_scopes(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Core §5.5's claims parameter: the id_token member places approved claims in the
    ID token; a claim whose scope the person never saw on the approval page is released
    nowhere, whichever member names it."""
    person = await make_person(redis)
    client = await openid_client(redis)
    claims = {
        "userinfo": {"nickname": {"essential": True}},
        "id_token": {"email": None, "website": {"essential": True}},
    }

    signed_in = await sign_in(
        http, stack, client, person.username, "openid email", claims=orjson.dumps(claims).decode()
    )

    reply = await ask(http, stack, signed_in.access_token)
    assert_answer(reply)
    assert reply.body == {
        "sub": person.sub,
        "email": "zoe@example.com",
        "email_verified": True,
    }
    assert signed_in.id_token is not None
    id_token = await verified_id_token(http, stack, signed_in.id_token)
    assert id_token["email"] == "zoe@example.com"
    assert "website" not in id_token and "nickname" not in id_token


async def test_a_claim_the_profile_lacks_is_left_out_and_a_change_shows_at_once(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid email profile")

    changed = await users.update_claims(
        redis, person.username, {"email": None, "email_verified": None, "locale": "ga-IE"}
    )

    reply = await ask(http, stack, signed_in.access_token)
    assert_answer(reply)
    # Core §5.3.2: a claim without a value is omitted, never null.
    assert "email" not in reply.body and "email_verified" not in reply.body
    assert reply.body["locale"] == "ga-IE"
    assert reply.body["updated_at"] == changed.updated_at


async def test_a_pairwise_client_sees_its_own_sub_the_same_as_in_its_id_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    pairwise = await openid_client(redis, subject_type="pairwise")
    signed_in = await sign_in(http, stack, pairwise, person.username, "openid")
    assert signed_in.id_token is not None

    reply = await ask(http, stack, signed_in.access_token)

    assert_answer(reply)
    id_token = await verified_id_token(http, stack, signed_in.id_token)
    assert reply.body == {"sub": id_token["sub"]}
    assert reply.body["sub"] != person.sub


@pytest.mark.parametrize("token_format", [False, True], ids=["opaque", "jwt"])
async def test_a_token_in_the_form_body_of_a_post_is_read(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, token_format: bool
) -> None:
    """RFC 6750 §2.2, as Authlib sends it (token_placement="body"); a JWT access token
    (RFC 9068) as well as an opaque one."""
    person = await make_person(redis)
    client = await openid_client(redis, jwt_access_tokens=token_format)
    signed_in = await sign_in(http, stack, client, person.username, "openid email")
    assert signed_in.access_token.count(".") == (2 if token_format else 1)

    async with AsyncOAuth2Client(
        client_id=client.client_id,
        token={"access_token": signed_in.access_token},
        token_placement="body",
    ) as oauth:
        # RFC 6750 §2.2: the client must label the body so; Authlib leaves that to it.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = await oauth.post(userinfo_url(stack), headers=form)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "sub": person.sub,
        "email": "zoe@example.com",
        "email_verified": True,
    }
    # And in the header of a POST, and of a GET.
    for method in ("POST", "GET"):
        reply = await ask(http, stack, signed_in.access_token, method)
        assert_answer(reply)
        assert reply.body == answer.json()


async def test_a_password_grant_token_with_openid_gets_the_claims_of_its_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A grant of no authentication request (no ID token), but of a person and the
    openid scope: its scope's claims all the same."""
    person = await make_person(redis)
    client = await make_client(redis, ["openid", "phone"], grants=["password"], redirect_uris=[])
    form = {"grant_type": "password", "username": person.username, "password": PASSWORD}
    issued = await token_request(http, stack, client, {**form, "scope": "openid phone"})
    assert issued.status == 200, issued.body
    assert "id_token" not in issued.body

    reply = await ask(http, stack, issued.body["access_token"])

    assert_answer(reply)
    assert reply.body == {
        "sub": person.sub,
        "phone_number": "+35312345678",
        "phone_number_verified": False,
    }


# --- refusals (RFC 6750 §3) ----------------------------------------------------------------


async def test_a_request_without_a_token_is_challenged_without_an_error_code(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for method, headers in (
        ("GET", {}),
        ("POST", {}),
        ("GET", {"Authorization": "Basic dXNlcjpwYXNz"}),  # no bearer credential at all
    ):
        reply = await ask(http, stack, None, method, headers=headers)
        assert reply.status == 401
        # RFC 6750 §3.1: no error code when the request had no credential.
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'
        assert "error" not in reply.body
        assert reply.headers["Cache-Control"] == "no-store"
    # A form without the field is no credential either; nor a JSON body holding one.
    async with http.post(userinfo_url(stack), data={"scope": "openid"}) as r:
        assert (r.status, r.headers["WWW-Authenticate"]) == (401, 'Bearer realm="tessera"')
    async with http.post(userinfo_url(stack), json={"access_token": "x.y"}) as r:
        assert (r.status, r.headers["WWW-Authenticate"]) == (401, 'Bearer realm="tessera"')


async def test_an_unknown_or_malformed_token_is_refused(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for token in ("no.such-token", "a" * 40, "e30.e30.c2ln"):
        assert_invalid_token(await ask(http, stack, token))
    # Not a b64token (RFC 6750 §2.1): a malformed request.
    reply = await ask(http, stack, None, headers={"Authorization": "Bearer a,b"})
    assert_refused(reply, 400, "invalid_request")


async def test_an_id_token_presented_as_the_access_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """An ID token is signed by the same keys, but its typ is JWT, not at+jwt (RFC 9068
    §4, RFC 8725 §3.11): it is no access token, whoever holds it."""
    person = await make_person(redis)
    client = await openid_client(redis, jwt_access_tokens=True)
    signed_in = await sign_in(http, stack, client, person.username, "openid profile")
    assert signed_in.id_token is not None

    assert_invalid_token(await ask(http, stack, signed_in.id_token))
    assert_invalid_token(
        await ask(http, stack, None, "POST", form={"access_token": signed_in.id_token})
    )
    assert_answer(await ask(http, stack, signed_in.access_token))


async def test_a_token_without_openid_is_insufficient_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    scope = await make_scope(redis)
    # A client of plain OAuth, even one allowed the profile scopes but not openid.
    client = await make_client(redis, [scope, "profile", "email"])

    signed_in = await sign_in(http, stack, client, person.username, f"{scope} profile email")

    assert signed_in.id_token is None
    reply = await ask(http, stack, signed_in.access_token)
    assert_refused(reply, 403, "insufficient_scope", scope="openid")
    assert "email" not in reply.body


async def test_a_client_credentials_token_names_no_person_and_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    client = await make_client(
        redis, ["openid", "profile"], grants=["client_credentials"], redirect_uris=[]
    )
    issued = await token_request(
        http, stack, client, {"grant_type": "client_credentials", "scope": "openid profile"}
    )
    assert issued.status == 200, issued.body

    assert_invalid_token(await ask(http, stack, issued.body["access_token"]))


async def test_a_revoked_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid email")
    assert_answer(await ask(http, stack, signed_in.access_token))

    status, _, _ = await revoke(http, stack, client, signed_in.access_token)

    assert status == 200
    assert_invalid_token(await ask(http, stack, signed_in.access_token))


async def test_an_expired_token_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis, access_token_lifetime=1)
    signed_in = await sign_in(http, stack, client, person.username, "openid")
    assert_answer(await ask(http, stack, signed_in.access_token))

    await asyncio.sleep(1.2)

    assert_invalid_token(await ask(http, stack, signed_in.access_token))


async def test_a_token_of_a_disabled_client_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid")

    await clients.set_enabled(redis, client.client_id, False)

    # The token service forgets the client as soon as the change is announced.
    for _ in range(100):
        reply = await ask(http, stack, signed_in.access_token)
        if reply.status != 200:
            break
        await asyncio.sleep(0.02)
    assert_invalid_token(reply)


async def test_a_token_of_a_person_removed_or_replaced_since_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The token outlives its person: gone, or another person added under the name since,
    it tells nothing of anyone."""
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid email")

    await redis.delete(keys.user(person.username))
    assert_invalid_token(await ask(http, stack, signed_in.access_token))

    newcomer = await users.add(
        redis, person.username, PASSWORD, TEST_PASSWORD_HASHING, claims={"email": "new@example.com"}
    )
    assert newcomer.sub != person.sub
    reply = await ask(http, stack, signed_in.access_token)
    assert_invalid_token(reply)
    assert "new@example.com" not in str(reply.body)


async def test_a_token_in_the_query_is_refused_and_never_logged(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """RFC 6750 §2.3 is not supported: the URI ends up in logs and histories (§5.3)."""
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid email")

    reply = await ask(http, stack, None, params={"access_token": signed_in.access_token})

    assert_refused(reply, 400, "invalid_request")
    assert "query is not accepted" in reply.body["error_description"]
    # As Authlib sends it with token_placement="uri".
    async with AsyncOAuth2Client(
        client_id=client.client_id,
        token={"access_token": signed_in.access_token},
        token_placement="uri",
    ) as oauth:
        answer = await oauth.get(userinfo_url(stack))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    # Even beside a good header, it is not believed.
    reply = await ask(
        http, stack, signed_in.access_token, params={"access_token": signed_in.access_token}
    )
    assert_refused(reply, 400, "invalid_request")
    lines = await logged_lines(http, stack.token, "token")
    assert signed_in.access_token not in orjson.dumps(lines).decode()


async def test_a_token_in_two_places_is_refused(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """RFC 6750 §2: "Clients MUST NOT use more than one method"."""
    person = await make_person(redis)
    client = await openid_client(redis)
    signed_in = await sign_in(http, stack, client, person.username, "openid")
    token = signed_in.access_token

    reply = await ask(http, stack, token, "POST", form={"access_token": token})

    assert_refused(reply, 400, "invalid_request")
    # A repeated form field is refused as everywhere (RFC 6749 §3.2).
    form = [("access_token", token), ("access_token", token)]
    async with http.post(userinfo_url(stack), data=form) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "invalid_request"


# --- browser apps (CORS) ---------------------------------------------------------------------


async def test_a_browser_app_may_call_it_with_the_authorization_header(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    person = await make_person(redis)
    origin = f"https://{unique('spa')}.example.com"
    app = await make_client(
        redis, ["openid", "email"], client_type="public", redirect_uris=[f"{origin}/callback"]
    )
    await until_origin(http, stack, origin, allowed=True)
    verifier = new_verifier()
    params = code_request(
        app,
        "openid email",
        redirect_uri=f"{origin}/callback",
        code_challenge=s256(verifier),
        code_challenge_method="S256",
    )
    back = await authorize(http, stack, params, person.username)
    issued = await exchange(
        http,
        stack,
        app,
        back["code"],
        auth="none",
        redirect_uri=f"{origin}/callback",
        code_verifier=verifier,
    )
    assert issued.status == 200, issued.body

    for method in ("GET", "POST"):
        status, headers = await cors_preflight(
            http, userinfo_url(stack), origin, method, headers="authorization"
        )
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == origin
        assert headers["Access-Control-Allow-Methods"] == "GET, POST"
        assert headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
        assert "Access-Control-Allow-Credentials" not in headers
    reply = await ask(http, stack, issued.body["access_token"], headers={"Origin": origin})
    assert_answer(reply)
    assert reply.headers["Access-Control-Allow-Origin"] == origin
    assert reply.body["email"] == "zoe@example.com"
    # Errors too, so the app can read why.
    refused = await ask(http, stack, "no.such-token", headers={"Origin": origin})
    assert refused.headers["Access-Control-Allow-Origin"] == origin
    # No other origin.
    other = f"https://{unique('evil')}.example"
    status, headers = await cors_preflight(http, userinfo_url(stack), other, "GET", "authorization")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    # The token endpoint still allows Content-Type alone: a secret has no place there.
    _, headers = await cors_preflight(http, f"{stack.token}/token", origin)
    assert headers["Access-Control-Allow-Headers"] == "Content-Type"
