"""POST /token with grant_type=client_credentials (RFC 6749 §4.4): the client acts for
itself. Every error of RFC 6749 §5.2 this grant can produce, with status, body and
headers, over HTTP against the running services."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.storage import clients
from tests.assertions import (
    assert_error,
    assert_invalid_client,
    assert_invalid_scope,
    assert_no_store,
    assert_token_response,
)
from tests.flows import grant_family, introspect, live_tokens, token_request
from tests.records import (
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    unique,
)
from tests.replies import basic_auth_for, post_form
from tests.stack import Stack

FORM = "application/x-www-form-urlencoded"
GRANT = {"grant_type": "client_credentials"}


async def service_client(redis: Redis, scope_names: list[str], **options: Any) -> Registered:
    """A confidential client allowed client_credentials (and nothing else)."""
    return await make_client(
        redis, scope_names, grants=["client_credentials"], redirect_uris=[], **options
    )


# --- success ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_a_client_gets_an_access_token_for_the_scope_it_asks(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, auth: str
) -> None:
    read, write = await make_scope(redis), await make_scope(redis)
    client = await service_client(redis, [read, write])
    api = await make_resource_server(redis, [read, write])

    reply = await token_request(http, stack, client, {**GRANT, "scope": read}, auth=auth)

    assert_token_response(reply, refresh=False, scope=read)
    assert reply.body["expires_in"] == 3600  # TESSERA_ACCESS_TOKEN_LIFETIME default
    assert set(reply.body) == {"access_token", "token_type", "expires_in", "scope"}
    assert "WWW-Authenticate" not in reply.headers
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.status == 200
    assert info.body["active"] is True
    assert info.body["scope"] == read
    assert info.body["client_id"] == client.client_id


async def test_several_scopes_may_be_asked_at_once(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write = await make_scope(redis), await make_scope(redis)
    client = await service_client(redis, [read, write])

    reply = await token_request(http, stack, client, {**GRANT, "scope": f"{write} {read}"})

    assert_token_response(reply, refresh=False)
    assert reply.body["scope"].split(" ") == [write, read]


async def test_without_scope_the_clients_default_scopes_are_granted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write, admin = [await make_scope(redis) for _ in range(3)]
    client = await service_client(redis, [read, write, admin], default_scopes=[read, write])
    api = await make_resource_server(redis, [read])

    # An empty scope parameter counts as absent (RFC 6749 §3.1).
    for form in (GRANT, {**GRANT, "scope": ""}):
        reply = await token_request(http, stack, client, form)

        # RFC 6749 §3.3: the default applies, and the response names it (§5.1).
        assert_token_response(reply, refresh=False, scope=f"{read} {write}")
        info = await introspect(http, stack, api, reply.body["access_token"])
        assert info.body["scope"] == f"{read} {write}"


async def test_sub_is_the_client_and_no_person_is_named(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])
    api = await make_resource_server(redis, [read])

    reply = await token_request(http, stack, client, {**GRANT, "scope": read})
    assert_token_response(reply, refresh=False)

    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.status == 200
    assert_no_store(info)
    assert info.body["active"] is True
    # RFC 9068 §2.2: without a resource owner, sub names the client.
    assert info.body["sub"] == client.client_id
    assert info.body["client_id"] == client.client_id
    assert "username" not in info.body
    assert "owner_id" not in info.body
    assert info.body["iss"] == stack.issuer
    assert info.body["exp"] - info.body["iat"] == 3600


async def test_no_refresh_token_even_with_a_refresh_count(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read], refresh_count=5)

    reply = await token_request(http, stack, client, {**GRANT, "scope": read})

    # RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
    assert_token_response(reply, refresh=False, scope=read)
    # Nor is one kept (how the token is stored: tests/test_storage.py).
    listed = await live_tokens(http, stack, client=client.client_id)
    assert [token["kind"] for token in listed] == ["access_token"]


async def test_each_request_is_a_grant_family_of_its_own(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])

    first = await token_request(http, stack, client, {**GRANT, "scope": read})
    second = await token_request(http, stack, client, {**GRANT, "scope": read})

    assert_token_response(first, refresh=False)
    assert_token_response(second, refresh=False)
    assert first.body["access_token"] != second.body["access_token"]
    assert grant_family(first.body["access_token"]) != grant_family(second.body["access_token"])


async def test_the_clients_own_access_token_lifetime(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read], access_token_lifetime=120)
    api = await make_resource_server(redis, [read])

    reply = await token_request(http, stack, client, {**GRANT, "scope": read})

    assert_token_response(reply, refresh=False)
    assert reply.body["expires_in"] == 120
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.body["active"] is True
    assert info.body["exp"] - info.body["iat"] == 120
    # Token management shows when it expires (and Redis drops it then: test_storage.py).
    (listed,) = await live_tokens(http, stack, client=client.client_id)
    assert listed["expires_at"] - listed["issued_at"] == 120


async def test_an_access_token_that_never_expires(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read], access_token_lifetime=clients.NEVER_EXPIRES)
    api = await make_resource_server(redis, [read])

    reply = await token_request(http, stack, client, {**GRANT, "scope": read})

    assert_token_response(reply, refresh=False, scope=read)
    # RFC 6749 §5.1: expires_in is RECOMMENDED, so it is left out when there is no expiry.
    assert "expires_in" not in reply.body
    info = await introspect(http, stack, api, reply.body["access_token"])
    assert info.status == 200
    assert info.body["active"] is True
    assert "exp" not in info.body  # RFC 7662 §2.2
    assert isinstance(info.body["iat"], int)
    # Token management lists it without an expiry (stored without a TTL: test_storage.py).
    (listed,) = await live_tokens(http, stack, client=client.client_id)
    assert listed["expires_at"] is None


# --- invalid_scope (400) ---------------------------------------------------------------


async def test_without_scope_and_without_default_scopes_is_invalid_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])

    reply = await token_request(http, stack, client, GRANT)

    # RFC 6749 §3.3: no scope and no default: the request fails.
    assert_invalid_scope(reply)


async def test_a_scope_outside_the_clients_registration_is_invalid_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, other = await make_scope(redis), await make_scope(redis)
    client = await service_client(redis, [read], default_scopes=[read])

    # Defined but not the client's; never defined; one good and one bad.
    for scope in (other, unique("undefined"), f"{read} {other}"):
        assert_invalid_scope(await token_request(http, stack, client, {**GRANT, "scope": scope}))


async def test_a_malformed_scope_is_invalid_scope(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read], default_scopes=[read])

    # RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by one space.
    for scope in (f'{read}"', f"{read}\\", f"{read}  {read}", f" {read}", "r\u00e9ad", "a\tb"):
        reply = await token_request(http, stack, client, {**GRANT, "scope": scope})
        assert_invalid_scope(reply)


# --- unauthorized_client (400) ---------------------------------------------------------


async def test_a_client_not_allowed_the_grant_is_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await make_client(redis, [read], grants=["authorization_code", "password"])

    reply = await token_request(http, stack, client, {**GRANT, "scope": read})

    assert_error(reply, 400, "unauthorized_client")
    assert await live_tokens(http, stack, client=client.client_id) == []


async def test_a_public_client_is_unauthorized_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    registered = await service_client(redis, [read])
    # Registration refuses the combination (below), so the record is written directly,
    # as a hand-edited or migrated record might be.
    record = registered.client
    record.type = "public"
    record.secret_hash = None
    await clients.save(redis, record)
    public = Registered(record, None)

    reply = await token_request(http, stack, public, {**GRANT, "scope": read}, auth="none")

    # RFC 6749 §4.4: confidential clients only.
    assert_error(reply, 400, "unauthorized_client")
    assert await live_tokens(http, stack, client=public.client_id) == []


async def test_registration_refuses_client_credentials_for_a_public_client(
    redis: Redis,
) -> None:
    read = await make_scope(redis)

    with pytest.raises(ValueError, match="confidential clients only"):
        await clients.create(
            redis,
            name=unique("Public service"),
            client_type="public",
            redirect_uris=[REDIRECT_URI],
            grants=["authorization_code", "client_credentials"],
            scope_names=[read],
        )
    # Nothing was stored.
    stored = [c for c in await clients.list_all(redis) if read in c.scopes]
    assert stored == []


# --- invalid_client (401) --------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_a_wrong_secret_is_invalid_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, auth: str
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])
    wrong = Registered(client.client, "not-the-secret")

    reply = await token_request(http, stack, wrong, {**GRANT, "scope": read}, auth=auth)

    assert_invalid_client(reply)
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="tessera", charset="UTF-8"'
    assert await live_tokens(http, stack, client=client.client_id) == []


async def test_no_client_authentication_is_invalid_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])

    # client_id alone, as a public client would send it.
    reply = await token_request(http, stack, client, {**GRANT, "scope": read}, auth="none")

    assert_invalid_client(reply)


async def test_a_disabled_client_is_invalid_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])
    await clients.set_enabled(redis, client.client_id, False)

    reply = await token_request(http, stack, client, {**GRANT, "scope": read})

    assert_invalid_client(reply)


# --- invalid_request (400) -------------------------------------------------------------


async def test_a_missing_grant_type_is_invalid_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client = await service_client(redis, [read])

    reply = await token_request(http, stack, client, {"scope": read})

    assert_error(reply, 400, "invalid_request")
    assert await live_tokens(http, stack, client=client.client_id) == []


async def test_a_repeated_parameter_is_invalid_request(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read, write = await make_scope(redis), await make_scope(redis)
    client = await service_client(redis, [read, write])
    headers = {"Content-Type": FORM, **basic_auth_for(client)}

    # RFC 6749 §3.2: parameters must not be included more than once.
    for body in (
        f"grant_type=client_credentials&scope={read}&scope={write}",
        f"grant_type=client_credentials&grant_type=client_credentials&scope={read}",
        f"grant_type=client_credentials&scope={read}&scope=",
    ):
        reply = await post_form(http, f"{stack.token}/token", body, headers)
        assert_error(reply, 400, "invalid_request")
    assert await live_tokens(http, stack, client=client.client_id) == []
