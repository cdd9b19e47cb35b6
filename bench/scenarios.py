"""The measured requests. Each scenario knows its endpoint, how to check an answer, and,
where every request uses something up (a code, a refresh token, a token to revoke), how to
make that many fresh ones through Tessera's own code beforehand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from bench import fixtures
from bench.fixtures import SCOPE, Fixtures
from bench.wrk import Load
from shared.config.settings import Settings
from shared.storage import tokens
from shared.storage.redis_store import RedisClient

# Given how many requests a run may make, a Load whose bodies file holds that many.
Prepare = Callable[[int, Path], Awaitable[Load]]
CLIENT_CREDENTIALS = urlencode({"grant_type": "client_credentials", "scope": SCOPE})


# After a run: what is wrong with its effect, given how many requests it made, or None.
Verify = Callable[[int], Awaitable[str | None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str  # "tessera", "reference" or "floor"
    prepare: Prepare
    verify: Verify | None = None


def fixed(load: Load) -> Prepare:
    async def prepare(_count: int, _path: Path) -> Load:
        return load

    return prepare


def tessera_scenarios(
    redis: RedisClient,
    settings: Settings,
    made: Fixtures,
    urls: dict[str, str],
    active: dict[str, str],
) -> list[Scenario]:
    """``active``: an opaque and a JWT access token that stay active throughout."""
    token, revoke = f"{urls['token']}/token", f"{urls['token']}/revoke"
    introspect = f"{urls['introspect']}/introspect"
    app = made.app

    async def code_exchange(count: int, path: Path) -> Load:
        found = await fixtures.codes_for(redis, settings, app.client, count)
        bodies = fixtures.write_bodies(path, fixtures.code_exchange_bodies(found))
        return Load(token, auth=app.basic_auth, bodies=bodies, expect='"access_token"')

    async def refresh(count: int, path: Path) -> Load:
        found = await fixtures.issued_for(redis, settings, app.client, count, refresh=True)
        bodies = fixtures.write_bodies(
            path, [{"grant_type": "refresh_token", "refresh_token": t} for t in found]
        )
        return Load(token, auth=app.basic_auth, bodies=bodies, expect='"refresh_token"')

    sent_to_revoke: list[str] = []

    async def revocation(count: int, path: Path) -> Load:
        found = await fixtures.issued_for(redis, settings, made.opaque.client, count, refresh=False)
        sent_to_revoke[:] = found
        bodies = fixtures.write_bodies(
            path, [{"token": t, "token_type_hint": "access_token"} for t in found]
        )
        # RFC 7009 §2.2: 200 with an empty body, for a token unknown as for one revoked.
        return Load(revoke, auth=made.opaque.basic_auth, bodies=bodies)

    async def revoked(requests: int) -> str | None:
        """Since any token gets a 200, check the effect: those sent are gone. The first
        body is not among them: wrk makes one request at start-up that it never sends."""
        sample = sent_to_revoke[1 : min(requests // 2, 500)]
        live = [t for t in sample if await tokens.find_access_token(redis, settings, t, None)]
        return f"{len(live)} of {len(sample)} tokens sent still active" if live else None

    def introspection(value: str) -> Load:
        return Load(
            introspect,
            auth=made.opaque.basic_auth,
            body=urlencode({"token": value}),
            expect='"active":true',
        )

    cc = CLIENT_CREDENTIALS
    return [
        Scenario(
            "client_credentials",
            "tessera",
            fixed(Load(token, made.opaque.basic_auth, cc, expect='"access_token"')),
        ),
        Scenario(
            "client_credentials (JWT)",
            "tessera",
            fixed(Load(token, made.jwt.basic_auth, cc, expect='"access_token":"ey')),
        ),
        Scenario("introspection", "tessera", fixed(introspection(active["opaque"]))),
        Scenario("introspection (JWT)", "tessera", fixed(introspection(active["jwt"]))),
        Scenario("authorization_code (PKCE S256)", "tessera", code_exchange),
        Scenario("refresh_token", "tessera", refresh),
        Scenario("revocation", "tessera", revocation, revoked),
    ]


def floor_scenarios(floor_url: str) -> list[Scenario]:
    """bench.floor: what aiohttp and a Redis client cost before Tessera does anything."""
    body = urlencode({"token": "x"})

    def floor_load(path: str) -> Load:
        return Load(f"{floor_url}{path}", body=body, expect='"active":true')

    return [
        Scenario(
            "floor: aiohttp, no work",
            "floor",
            fixed(floor_load("/nothing")),
        ),
        Scenario("floor: aiohttp, one Redis GET", "floor", fixed(floor_load("/one-get"))),
        Scenario(
            "floor: aiohttp, one Redis GET, pipelined",
            "floor",
            fixed(floor_load("/one-get-pipelined")),
        ),
    ]


def reference_scenarios(endpoints: dict[str, str], basic_auth: str) -> list[Scenario]:
    """The two scenarios the reference server runs too, with its own client."""
    token = endpoints["token_endpoint"]

    async def introspection(_count: int, _path: Path) -> Load:
        # A token of its own for each run: the reference's in-memory store keeps only
        # about 1,000 entries, so the client_credentials runs evict older tokens.
        async with aiohttp.ClientSession() as session:
            async with session.post(
                token,
                data={"grant_type": "client_credentials", "scope": SCOPE},
                headers={"Authorization": basic_auth},
            ) as r:
                active = (await r.json())["access_token"]
        return Load(
            endpoints["introspection_endpoint"], basic_auth, urlencode({"token": active}),
            expect='"active":true',
        )  # fmt: skip

    return [
        Scenario(
            "client_credentials",
            "reference",
            fixed(Load(token, basic_auth, CLIENT_CREDENTIALS, expect='"access_token"')),
        ),
        Scenario("introspection", "reference", introspection),
    ]
