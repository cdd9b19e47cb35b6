"""Records written by a newer release are read by this one (README, "Rolling updates").

During a rolling update old and new replicas share one Redis; after a rollback an older
release reads what a newer one wrote. So every record Tessera reads may carry a field it
does not know. The test walks a whole flow through the three services (a client, a
scope, a person, the browser session, the pending request, the code, the approval, the
tokens, a refresh, a remembered approval, the connected applications page) and, before
each step, gives every record the step reads a field from a newer release, as such a
release would write it. Every step still succeeds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import orjson
from redis.asyncio import Redis

from shared.domain.token_records import TokenRecord
from shared.security import crypto
from shared.storage import keys, tokens
from tests.flows import (
    code_request,
    decide,
    exchange,
    grant_family,
    introspect,
    refresh,
    sign_in,
    start_authorization,
)
from tests.records import PASSWORD, make_resource_server, make_setup
from tests.replies import fetch, query_of, session_cookie
from tests.stack import Stack

NEWER = "field_of_a_newer_release"
# A compact token record's fields (shared/domain/token_records.py, encode), the trailing ones elided
# when they say nothing; a newer release adding one writes those out first.
TOKEN_FIELDS = 7
ELIDED = [None, None, 0]


def _newer_json(value: str) -> str | None:
    """The record as a newer release would write it, or None for a value that is not a
    JSON record (a digest, a counter)."""
    try:
        found: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(found, dict):
        return orjson.dumps({**found, NEWER: {"any": ["shape"]}}).decode()
    if isinstance(found, list) and len(found) >= 4:
        if len(found) <= TOKEN_FIELDS:  # a compact token record
            found = found + ELIDED[len(found) - 4 :]
        return orjson.dumps([*found, {"any": ["shape"]}]).decode()
    return None


def _newer(value: str) -> str | None:
    """Also for a record between parts of Tessera's: a family's first token is
    "<digest> <record>", a pending request "<binding><record>\n<state>"."""
    if value.startswith(keys.ROTATED_MARKER):
        return None
    starts = [at for at in (value.find("{"), value.find("[")) if at >= 0]
    if not starts:
        return None
    at = min(starts)
    record, newline, state = value[at:].partition("\n")
    newer = _newer_json(record)
    return None if newer is None else value[:at] + newer + newline + state


def _text(reply: bytes | str | None) -> str:
    """A stored value as the tests' client reads it: decoded (``decode_responses``, which
    redis-py's types do not follow)."""
    assert isinstance(reply, str), reply
    return reply


async def from_a_newer_release(redis: Redis, *names: str) -> int:
    """Give each record stored under these keys a field this release does not know, TTLs
    kept; returns how many records changed."""
    changed = 0
    for key in names:
        kind = await redis.type(key)
        if kind == "string":
            newer = _newer(_text(await redis.get(key)))
            if newer is not None:
                await redis.set(key, newer, keepttl=True)
                changed += 1
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                newer = _newer(_text(value))
                if newer is not None:
                    await redis.hset(key, field, newer)
                    changed += 1
    return changed


async def family_keys(redis: Redis, value: str) -> list[str]:
    return [k async for k in redis.scan_iter(match=f"tessera:{{g:{grant_family(value)}}}:*")]


async def test_every_record_with_a_field_of_a_newer_release_is_still_read(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=2, remember_consent=True)
    api = await make_resource_server(redis, [s.scope])
    client_key = keys.client(s.client.client_id)
    changed = await from_a_newer_release(
        redis, client_key, keys.client(api.client_id), keys.scope(s.scope), keys.user(s.user)
    )
    assert changed == 4
    # As a newer replica's save does: the services' client caches forget the old records.
    await redis.publish(keys.CLIENT_CHANGES, s.client.client_id)
    await redis.publish(keys.CLIENT_CHANGES, api.client_id)

    params = code_request(s.client, s.scope)
    started = await start_authorization(http, stack, params)
    assert started.status == 303
    login = started.headers["Location"]
    interaction = keys.interaction(query_of(login)["interaction"])
    assert await from_a_newer_release(redis, interaction) == 1

    signed_in = await sign_in(http, stack, login, s.user, PASSWORD)
    assert signed_in.status == 303
    session = keys.session(crypto.digest(session_cookie(http, stack)))
    assert await from_a_newer_release(redis, session, interaction) == 2

    decided = await decide(http, stack, signed_in.headers["Location"])
    assert decided.status == 303
    code = query_of(decided.headers["Location"])["code"]
    approvals = keys.consents(s.user)
    assert await from_a_newer_release(redis, *await family_keys(redis, code), approvals) == 2

    issued = await exchange(http, stack, s.client, code)
    assert issued.status == 200, issued.body
    access, refresh_token = issued.body["access_token"], issued.body["refresh_token"]
    assert await from_a_newer_release(redis, *await family_keys(redis, access)) >= 2

    assert (await introspect(http, stack, api, access)).body["active"] is True
    renewed = await refresh(http, stack, s.client, refresh_token)
    assert renewed.status == 200, renewed.body
    assert await from_a_newer_release(redis, *await family_keys(redis, access)) >= 2
    assert (await introspect(http, stack, api, renewed.body["access_token"])).body["active"]

    # The person's remembered approval answers a second request without the page.
    again = await start_authorization(http, stack, code_request(s.client, s.scope))
    assert again.status == 303
    assert "code" in query_of(again.headers["Location"]), again.headers["Location"]

    assert await from_a_newer_release(redis, session, approvals) == 2
    page = await fetch(http, "GET", f"{stack.authorize}/connected-apps")
    assert page.status == 200
    assert s.client.client.name in page.text


def test_a_token_record_stored_as_named_json_with_a_newer_field_is_read() -> None:
    """Records from before they were compact (named JSON) are read too, unknown fields
    ignored."""
    record = TokenRecord("fam", "client", ["read"], "alice", "sub", 1, 2**40, 0)
    stored = {**dataclasses.asdict(record), NEWER: 1}

    assert tokens.parse_record(orjson.dumps(stored).decode(), "fam") == record
