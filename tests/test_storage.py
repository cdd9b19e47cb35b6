"""What Tessera leaves in Redis (DESIGN: "Redis is the only store"): no secret in clear,
TTLs equal to lifetimes, argon2id passwords, hashed client secrets, one Redis Cluster hash
slot per grant family, what a revocation or a deletion leaves, and the indexes kept
no larger than what they list. Read from the real Redis server; the other test files
check behaviour through the endpoints, the admin API and the ``tessera`` command."""

from __future__ import annotations

import asyncio
import time
from binascii import crc_hqx
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from shared.security import crypto
from shared.storage import browser_sessions, clients, families, keys, log_fingerprint_key, scopes
from tests.assertions import assert_invalid_grant, assert_token_response
from tests.command_line import tessera
from tests.flows import (
    code_request,
    exchange,
    grant_family,
    introspect,
    new_verifier,
    obtain_code,
    refresh,
    revoke,
    s256,
    sign_in,
    start_authorization,
    token_request,
)
from tests.records import (
    PASSWORD,
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_setup,
    make_user,
)
from tests.replies import query_of, session_cookie
from tests.stack import REFRESH_REUSE_GRACE, Stack

CODE_LIFETIME = 600
ACCESS_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
INTERACTION_LIFETIME = 600
ANONYMOUS_INTERACTION_LIFETIME = 300
SESSION_LIFETIME = 8 * 3600


def _text(values: Iterable[bytes | str]) -> list[str]:
    """Redis replies as text (the suite's clients decode them, as Tessera's do)."""
    return [value if isinstance(value, str) else value.decode() for value in values]


@dataclass(frozen=True)
class Flow:
    user: str
    scope: str
    client: Registered
    verifier: str
    code: str
    code_ttl: int  # the code key's TTL read right after the approval redirect
    access_token: str
    refresh_token: str
    session_id: str


async def _full_flow(stack: Stack, redis: Redis, http: aiohttp.ClientSession) -> Flow:
    s = await make_setup(redis, refresh_count=2)
    verifier = new_verifier()
    code = await obtain_code(
        http, stack, s, code_challenge=s256(verifier), code_challenge_method="S256"
    )
    family = grant_family(code)
    code_ttl = await redis.ttl(keys.code(family, crypto.digest(code)))
    reply = await exchange(http, stack, s.client, code, code_verifier=verifier)
    assert reply.status == 200, reply.body
    return Flow(
        user=s.user,
        scope=s.scope,
        client=s.client,
        verifier=verifier,
        code=code,
        code_ttl=code_ttl,
        access_token=reply.body["access_token"],
        refresh_token=reply.body["refresh_token"],
        session_id=session_cookie(http, stack),
    )


async def _dump(redis: Redis) -> dict[str, list[str]]:
    """Every tessera key with every string stored in it, whatever its type."""
    found: dict[str, list[str]] = {}
    async for key in redis.scan_iter(match="tessera:*", count=1000):
        kind = await redis.type(key)
        if kind == "string":
            values = _text([await redis.get(key) or ""])
        elif kind == "hash":
            values = _text(part for item in (await redis.hgetall(key)).items() for part in item)
        elif kind == "set":
            values = _text(await redis.smembers(key))
        elif kind == "list":
            values = _text(await redis.lrange(key, 0, -1))
        elif kind == "zset":
            # Without scores, the members alone (redis-py types the reply for both).
            values = _text(cast("list[str]", await redis.zrange(key, 0, -1)))
        elif kind == "none":  # expired between SCAN and TYPE
            continue
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} at {key}")
        found[key] = values
    return found


def _secret_part(value: str) -> str:
    family, dot, secret = value.partition(".")
    assert dot and family and len(secret) >= 43
    return secret


async def test_no_secret_is_stored_in_clear(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)
    assert flow.client.secret
    secrets = {
        "code": flow.code,
        "code secret part": _secret_part(flow.code),
        "access token": flow.access_token,
        "access token secret part": _secret_part(flow.access_token),
        "refresh token": flow.refresh_token,
        "refresh token secret part": _secret_part(flow.refresh_token),
        "client secret": flow.client.secret,
        "user password": PASSWORD,
        "code verifier": flow.verifier,
        "session id": flow.session_id,
    }

    stored = await _dump(redis)

    # The flow's records are there: the check below looks at what was written.
    family = grant_family(flow.code)
    assert keys.code(family, crypto.digest(flow.code)) in stored
    assert keys.first_access_token(family) in stored
    assert keys.refresh_token(family, crypto.digest(flow.refresh_token)) in stored
    assert keys.client(flow.client.client_id) in stored
    assert keys.user(flow.user) in stored
    assert keys.session(crypto.digest(flow.session_id)) in stored
    for key, values in stored.items():
        for what, secret in secrets.items():
            assert secret not in key, f"{what} in clear in key name {key}"
            for value in values:
                assert secret not in value, f"{what} in clear in the value of {key}"


async def test_code_ttl_is_the_code_lifetime(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)

    assert CODE_LIFETIME - 10 < flow.code_ttl <= CODE_LIFETIME
    # After redemption the used code is kept (to recognise a replay) with its TTL
    # unchanged: never longer than the code could have lived.
    family = grant_family(flow.code)
    code_key = keys.code(family, crypto.digest(flow.code))
    assert 0 < await redis.ttl(code_key) <= flow.code_ttl
    record = await redis.hgetall(code_key)
    assert record["used"] == "1"
    stored = orjson.loads(record["record"])
    assert stored["client_id"] == flow.client.client_id
    assert stored["redirect_uri"] == REDIRECT_URI
    assert stored["code_challenge"] == s256(flow.verifier)
    assert stored["code_challenge_method"] == "S256"


async def test_code_ttl_right_after_issue(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)

    code = await obtain_code(http, stack, s)

    family = grant_family(code)
    ttl = await redis.ttl(keys.code(family, crypto.digest(code)))
    assert 590 < ttl <= CODE_LIFETIME


async def test_token_ttls_are_their_lifetimes(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)
    family = grant_family(flow.access_token)

    # The family's first access token is named by the family; the refresh token by its
    # digest, and listed in the family's member set.
    at_key = keys.first_access_token(family)
    rt_key = keys.refresh_token(family, crypto.digest(flow.refresh_token))
    at_ttl = await redis.ttl(at_key)
    rt_ttl = await redis.ttl(rt_key)
    members_ttl = await redis.ttl(keys.family_members(family))

    assert ACCESS_TOKEN_LIFETIME - 10 < at_ttl <= ACCESS_TOKEN_LIFETIME
    assert REFRESH_TOKEN_LIFETIME - 10 < rt_ttl <= REFRESH_TOKEN_LIFETIME
    # The family's member list lives as long as its longest-lived listed token.
    assert REFRESH_TOKEN_LIFETIME - 10 < members_ttl <= REFRESH_TOKEN_LIFETIME
    assert await redis.smembers(keys.family_members(family)) == {rt_key}
    # The value is the token's digest, then its record, whose lifetime is the key's TTL:
    # [client_id, scope, iat, lifetime, username, sub].
    (stored,) = _text([await redis.get(at_key) or ""])
    digest, _, raw = stored.partition(" ")
    assert digest == crypto.digest(flow.access_token)
    client_id, scope, iat, lifetime, username, sub = orjson.loads(raw)
    assert lifetime == ACCESS_TOKEN_LIFETIME
    assert abs(iat - time.time()) < 60
    assert (client_id, scope, username) == (flow.client.client_id, flow.scope, flow.user)
    assert isinstance(sub, str)


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    """An unknown username is checked against a fixed hash: made with other parameters
    than the hasher's, it would answer faster or slower, telling usernames apart."""
    assert crypto.DUMMY_PASSWORD_HASH.startswith("$argon2id$")
    assert not crypto._password_hasher.check_needs_rehash(crypto.DUMMY_PASSWORD_HASH)


async def test_user_password_is_an_argon2id_hash(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)

    raw = await redis.get(keys.user(flow.user))
    assert raw is not None
    record = orjson.loads(raw)
    assert record["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in raw
    assert set(record) == {
        "username",
        "sub",
        "password_hash",
        "created_at",
        "claims",
        "updated_at",
        "enabled",
    }
    assert flow.user in await redis.smembers(keys.USER_INDEX)


async def test_client_record_holds_only_the_secret_hash(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)
    assert flow.client.secret

    raw = await redis.get(keys.client(flow.client.client_id))
    assert raw is not None
    record = orjson.loads(raw)
    assert "secret" not in record
    assert "client_secret" not in record
    assert record["secret_hash"] == crypto.digest(flow.client.secret)
    assert record["secret_hash"] != flow.client.secret
    assert flow.client.secret not in raw
    assert flow.client.client_id in await redis.smembers(keys.CLIENT_INDEX)


async def test_public_client_record_has_no_secret_at_all(stack: Stack, redis: Redis) -> None:
    scope = await make_scope(redis)
    client = await make_client(redis, [scope], client_type="public")
    assert client.secret is None

    raw = await redis.get(keys.client(client.client_id))
    assert raw is not None
    assert orjson.loads(raw)["secret_hash"] is None


async def test_a_grant_family_shares_one_cluster_hash_slot(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)
    family = grant_family(flow.code)
    assert families.family_of(flow.access_token) == family
    assert families.family_of(flow.refresh_token) == family
    family_keys = [
        keys.code(family, crypto.digest(flow.code)),
        keys.first_access_token(family),
        keys.refresh_token(family, crypto.digest(flow.refresh_token)),
        keys.family_members(family),
        keys.family_revoked(family),
    ]
    stored = [k async for k in redis.scan_iter(match=f"tessera:{{g:{family}}}:*")]
    # Everything stored for the family is among the keys above (the tombstone only
    # appears once the family is revoked).
    assert set(stored) == set(family_keys[:4])

    slots = {key_slot(key.encode()) for key in family_keys}

    assert slots == {key_slot(f"g:{family}".encode())}
    # The hash tag is what pins the slot: without it the keys would scatter.
    untagged = {key_slot(key.replace("{", "").replace("}", "").encode()) for key in family_keys}
    assert len(untagged) > 1


# Names that callers and administrators choose, each holding what Redis Cluster would
# read as a hash tag. All but the last are valid scope tokens (RFC 6749 §3.3).
TAGGED_NAMES = ["a{g:x}b", "{g:x}", "{}x{y}", "x{", "}{y}", "{y}z", "a{b}c{d}", "u {v}"]
NAMED_KEYS = [
    pytest.param(key_of, id=key_of.__name__)
    for key_of in (
        keys.client,
        keys.scope,
        keys.user,
        keys.interaction,
        keys.client_families,
        keys.user_families,
        keys.consents,
        keys.client_consents,
    )
] + [
    # Addresses and limit subjects are Tessera's own spelling today; the rule holds anyway.
    pytest.param(lambda name: keys.login_known_address("digest", name), id="login_known_address"),
    pytest.param(lambda name: keys.rate_counter("limit", name), id="rate_counter"),
]
SLOTS = 16384


def whole_key_slot(key: str) -> int:
    """Redis Cluster's slot of a key without a hash tag: CRC16 (XMODEM) of all of it."""
    return crc_hqx(key.encode(), 0) % SLOTS


@pytest.mark.parametrize("key_of", NAMED_KEYS)
def test_no_name_chooses_the_slot_of_its_key(key_of: Callable[[str], str]) -> None:
    """DESIGN: no caller-chosen string decides a slot. redis-py computes the slot as a
    Redis Cluster node does; for every named key it is the whole key's."""
    for name in TAGGED_NAMES:
        key = key_of(name)
        assert key.endswith(name)
        assert key_slot(key.encode()) == whole_key_slot(key), key
    # Names without a "{" keep the keys earlier releases wrote, so none moves on upgrade.
    assert key_of("orders:read") == key_of("x").removesuffix("x") + "orders:read"
    # Different names, different keys, even one spelled as another's guarded form.
    names = TAGGED_NAMES + ["{}" + name for name in TAGGED_NAMES] + ["orders:read"]
    assert len({key_of(name) for name in names}) == len(names)


def test_a_scope_name_cannot_join_a_grant_familys_slot() -> None:
    family = "8OB1yr2fEVLT6SdQbGTsKw"  # fixed, so that the test is deterministic
    name = f"a{{g:{family}}}b"
    assert scopes.is_scope_token(name)
    family_slot = key_slot(keys.family_revoked(family).encode())
    # Spelled as earlier releases did, the scope's key would share the family's slot.
    assert key_slot(f"tessera:scope:{name}".encode()) == family_slot
    assert key_slot(keys.scope(name).encode()) != family_slot


async def test_two_grant_families_are_independent(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    first = await _full_flow(stack, redis, http)
    second = await _full_flow(stack, redis, http)

    assert families.family_of(first.code) != families.family_of(second.code)
    assert first.access_token != second.access_token
    assert first.code != second.code


async def test_a_record_stored_before_records_were_compact_is_still_read(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Tokens issued by an earlier release live on through an upgrade: a record stored
    as named JSON under the token's digest, as earlier releases stored it, introspects."""
    s = await make_setup(redis)
    api = await make_resource_server(redis, [s.scope])
    family = families.new_family()
    token = families.new_value(family, 32)
    now = int(time.time())
    record = {
        "family": family, "client_id": s.client.client_id, "scope": [s.scope],
        "username": s.user, "sub": "earlier-sub", "iat": now, "exp": now + 600,
        "refreshes": 0,
    }  # fmt: skip
    await redis.set(keys.access_token(family, crypto.digest(token)), orjson.dumps(record), ex=600)

    info = await introspect(http, stack, api, token)

    assert info.body["active"] is True
    assert (info.body["sub"], info.body["username"]) == ("earlier-sub", s.user)
    assert info.body["exp"] == now + 600


async def test_a_token_in_a_tombstoned_family_is_inactive_even_if_left_behind(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """During a rolling update an earlier release's revocation, which knew no first-token
    key, leaves that key behind but sets the family's tombstone: the token is inactive."""
    flow = await _full_flow(stack, redis, http)
    api = await make_resource_server(redis, [flow.scope])
    family = grant_family(flow.access_token)
    assert (await introspect(http, stack, api, flow.access_token)).body["active"] is True

    await redis.set(keys.family_revoked(family), "1", ex=families.TOMBSTONE_TTL)

    assert await redis.exists(keys.first_access_token(family)) == 1
    assert (await introspect(http, stack, api, flow.access_token)).body == {"active": False}


# --- what revoking a grant family leaves (DESIGN: grant families) ------------------------


async def _replay_the_code(stack: Stack, http: aiohttp.ClientSession, flow: Flow) -> None:
    replayed = await exchange(http, stack, flow.client, flow.code, code_verifier=flow.verifier)
    assert_invalid_grant(replayed)


async def _reuse_a_rotated_refresh_token(
    stack: Stack, http: aiohttp.ClientSession, flow: Flow
) -> None:
    rotated = await refresh(http, stack, flow.client, flow.refresh_token)
    assert_token_response(rotated, refresh=True)
    await asyncio.sleep(REFRESH_REUSE_GRACE + 0.3)  # past the grace: a reuse revokes
    assert_invalid_grant(await refresh(http, stack, flow.client, flow.refresh_token))


async def _revoke_the_access_token(stack: Stack, http: aiohttp.ClientSession, flow: Flow) -> None:
    status, _, body = await revoke(http, stack, flow.client, flow.access_token)
    assert status == 200, body


async def _delete_the_client(stack: Stack, http: aiohttp.ClientSession, flow: Flow) -> None:
    run = await tessera(stack, "client", "delete", flow.client.client_id)
    assert run.status == 0, run.stderr


Revocation = Callable[[Stack, aiohttp.ClientSession, Flow], Awaitable[None]]
REVOCATIONS = [
    pytest.param(revocation, id=revocation.__name__.strip("_").replace("_", "-"))
    for revocation in (
        _replay_the_code,
        _reuse_a_rotated_refresh_token,
        _revoke_the_access_token,
        _delete_the_client,
    )
]


@pytest.mark.parametrize("revocation", REVOCATIONS)
async def test_a_revoked_family_leaves_its_used_code_and_a_tombstone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, revocation: Revocation
) -> None:
    """Whatever revokes a grant family (a code replay, RFC 6749 §4.1.2; a refresh token
    reuse, RFC 9700 §4.14.2; a revocation, RFC 7009 §2.1; its client deleted) deletes
    every token of it. What stays is the used code, kept until it expires to recognise a
    replay, and the tombstone, which keeps anything more from being issued into the
    family for longer than any code of it could be redeemed."""
    flow = await _full_flow(stack, redis, http)
    family = grant_family(flow.code)

    await revocation(stack, http, flow)

    stored = {key async for key in redis.scan_iter(match=f"tessera:{{g:{family}}}:*")}
    assert stored == {keys.code(family, crypto.digest(flow.code)), keys.family_revoked(family)}
    assert await redis.get(keys.family_revoked(family)) == "1"
    ttl = await redis.ttl(keys.family_revoked(family))
    assert families.TOMBSTONE_TTL - 10 < ttl <= families.TOMBSTONE_TTL


# --- token records -------------------------------------------------------------------------


async def _machine_client(redis: Redis, scope: str, **options: Any) -> Registered:
    """A client allowed client_credentials, granted ``scope`` when it names none."""
    return await make_client(
        redis,
        [scope],
        grants=["client_credentials"],
        redirect_uris=[],
        default_scopes=[scope],
        **options,
    )


async def _machine_token(http: aiohttp.ClientSession, stack: Stack, client: Registered) -> str:
    reply = await token_request(http, stack, client, {"grant_type": "client_credentials"})
    assert_token_response(reply, refresh=False)
    token: str = reply.body["access_token"]
    return token


@pytest.mark.parametrize("grant", ["client_credentials", "password"])
async def test_a_family_of_one_access_token_holds_no_member_set(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession, grant: str
) -> None:
    """An access token issued alone (client credentials, RFC 6749 §4.4.3; the password
    grant of a client with a refresh count of 0) is stored under the family's first-token
    key, and the family, with no refresh token to list, has no member set."""
    scope = await make_scope(redis)
    client = await make_client(redis, [scope], grants=[grant], redirect_uris=[])
    form = {"grant_type": grant, "scope": scope}
    if grant == "password":
        form |= {"username": await make_user(redis), "password": PASSWORD}

    reply = await token_request(http, stack, client, form)

    assert_token_response(reply, refresh=False, scope=scope)
    family = grant_family(reply.body["access_token"])
    assert await redis.exists(keys.first_access_token(family)) == 1
    assert await redis.exists(keys.family_members(family)) == 0


async def test_a_clients_own_access_token_lifetime_is_its_records_ttl(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Redis drops a token's record when the token expires, at the client's own lifetime
    when it has one; a token that never expires is stored without a TTL."""
    scope = await make_scope(redis)
    brief = await _machine_client(redis, scope, access_token_lifetime=120)
    lasting = await _machine_client(redis, scope, access_token_lifetime=clients.NEVER_EXPIRES)

    brief_family = grant_family(await _machine_token(http, stack, brief))
    lasting_family = grant_family(await _machine_token(http, stack, lasting))

    assert 110 < await redis.ttl(keys.first_access_token(brief_family)) <= 120
    assert await redis.ttl(keys.first_access_token(lasting_family)) == -1


async def test_a_rotation_marks_the_old_refresh_token_and_stores_the_new_for_its_lifetime(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    flow = await _full_flow(stack, redis, http)
    family = grant_family(flow.refresh_token)
    before = time.time()

    reply = await refresh(http, stack, flow.client, flow.refresh_token)

    assert_token_response(reply, refresh=True)
    successor = keys.refresh_token(family, crypto.digest(reply.body["refresh_token"]))
    assert REFRESH_TOKEN_LIFETIME - 10 < await redis.ttl(successor) <= REFRESH_TOKEN_LIFETIME
    # "rotated:<ms>:<client_id>" where the token was, in milliseconds so the grace
    # (TESSERA_REFRESH_REUSE_GRACE) is the whole configured time.
    marker = await redis.get(keys.refresh_token(family, crypto.digest(flow.refresh_token)))
    assert isinstance(marker, str) and marker.startswith(keys.ROTATED_MARKER), marker
    at, client_id = marker.removeprefix(keys.ROTATED_MARKER).split(":")
    assert client_id == flow.client.client_id
    assert before - 0.05 <= int(at) / 1000 <= time.time() + 0.05


# --- the indexes: no larger than what they list ------------------------------------------


async def test_the_client_index_holds_only_live_grants(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    # Long enough that the last token is still live when it is revoked on a busy machine.
    brief = await _machine_client(redis, scope, access_token_lifetime=3)
    index = keys.client_families(brief.client_id)
    for _ in range(3):
        await _machine_token(http, stack, brief)
    assert await redis.zcard(index) == 3

    await asyncio.sleep(4.2)  # past the lifetime and the whole second pruning rounds to
    kept = await _machine_token(http, stack, brief)
    # Issuing drops the families whose tokens have all expired.
    assert await redis.zcard(index) == 1
    # Revoking takes the family out at once.
    status, _, _ = await revoke(http, stack, brief, kept)
    assert status == 200
    assert await redis.zcard(index) == 0


async def test_deleting_a_client_leaves_no_approval_of_it(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Every approval is listed under its client as it is recorded, so that deleting the
    client finds and forgets each one: none is left, nor the list."""
    s = await make_setup(redis)
    await obtain_code(http, stack, s)
    assert await redis.sismember(keys.client_consents(s.client.client_id), s.user)
    assert await redis.hexists(keys.consents(s.user), s.client.client_id)

    run = await tessera(stack, "client", "delete", s.client.client_id)

    assert run.status == 0, run.stderr
    assert not await redis.hexists(keys.consents(s.user), s.client.client_id)
    assert await redis.exists(keys.client_consents(s.client.client_id)) == 0


# --- sessions and pending requests -----------------------------------------------------------


async def test_an_anonymous_request_is_kept_briefly_until_someone_signs_in(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    started = await start_authorization(http, stack, code_request(s.client, s.scope))
    interaction = keys.interaction(query_of(started.headers["Location"])["interaction"])
    anonymous = keys.session(crypto.digest(session_cookie(http, stack)))
    # The anonymous session is its cookie alone; the pending request lives
    # TESSERA_ANONYMOUS_INTERACTION_LIFETIME ...
    assert await redis.exists(anonymous) == 0
    ttl = await redis.ttl(interaction)
    assert ANONYMOUS_INTERACTION_LIFETIME - 10 <= ttl <= ANONYMOUS_INTERACTION_LIFETIME

    await sign_in(http, stack, started.headers["Location"], s.user, PASSWORD)
    # ... and, once someone signed in, TESSERA_INTERACTION_LIFETIME.
    assert INTERACTION_LIFETIME - 10 <= await redis.ttl(interaction) <= INTERACTION_LIFETIME
    signed_in = keys.session(crypto.digest(session_cookie(http, stack)))
    assert SESSION_LIFETIME - 10 <= await redis.ttl(signed_in) <= SESSION_LIFETIME
    # The anonymous id is retired for as long as the signed-in session may live.
    assert await redis.get(anonymous) == browser_sessions.RETIRED.value
    assert SESSION_LIFETIME - 10 <= await redis.ttl(anonymous) <= SESSION_LIFETIME


async def test_signing_in_again_keeps_the_first_anonymous_id_retired(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    started = await start_authorization(http, stack, code_request(s.client, s.scope))
    anonymous = keys.session(crypto.digest(session_cookie(http, stack)))
    await sign_in(http, stack, started.headers["Location"], s.user, PASSWORD)
    await redis.expire(anonymous, 60)  # as if most of the first session's lifetime passed

    # prompt=login: signed in again, and the session keeps the same browser value ...
    again = await start_authorization(http, stack, code_request(s.client, s.scope, prompt="login"))
    assert (await sign_in(http, stack, again.headers["Location"], s.user, PASSWORD)).status == 303

    # ... so the id it was derived from stays retired as long as the new session lives.
    assert await redis.get(anonymous) == browser_sessions.RETIRED.value
    assert SESSION_LIFETIME - 10 <= await redis.ttl(anonymous) <= SESSION_LIFETIME


async def test_the_log_fingerprint_key_is_kept_for_good(stack: Stack, redis: Redis) -> None:
    """The key every process fingerprints with (shared.storage.log_fingerprint_key) never
    expires: fingerprints in logs months apart stay comparable."""
    made = await log_fingerprint_key.shared_key(redis)
    assert await redis.ttl(keys.LOG_FINGERPRINT_KEY) == -1
    assert await log_fingerprint_key.shared_key(redis) == made
