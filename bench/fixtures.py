"""What the scenarios need, made through Tessera's own code against the benchmark's Redis:
the clients, the users, and the fresh codes and tokens that requests use up."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from shared.config.settings import Settings
from shared.security import pkce
from shared.security.signing_keys import KeySet
from shared.storage import clients, codes, families, scopes, tokens, users
from shared.storage.clients import Client
from shared.storage.codes import CodeRecord
from shared.storage.redis_store import RedisClient
from shared.storage.tokens import Grant

SCOPE = "api:read"
REDIRECT_URI = "http://127.0.0.1:8080/cb"
PASSWORD = "bench-password"  # noqa: S105 - the benchmark's throw-away users
VERIFIER = "bench-" + "v" * 60  # RFC 7636 §4.1: 43 to 128 characters
BATCH = 50  # requests to Redis in flight while preparing (within the pool's limit)


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str

    @property
    def basic_auth(self) -> str:
        """client_secret_basic (RFC 6749 §2.3.1); our ids and secrets need no escaping."""
        pair = f"{self.client.client_id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()


@dataclass(frozen=True)
class Fixtures:
    opaque: Registered  # client_credentials, may introspect
    jwt: Registered  # the same with JWT access tokens
    app: Registered  # authorization_code with PKCE, refreshable
    usernames: list[str]


async def register(redis: RedisClient, flow_users: int) -> Fixtures:
    await scopes.add(redis, SCOPE, "Read the benchmark's data")

    async def confidential(name: str, grants: list[str], **options: object) -> Registered:
        client, secret = await clients.create(
            redis,
            name=name,
            client_type="confidential",
            redirect_uris=[REDIRECT_URI] if "authorization_code" in grants else [],
            grants=grants,
            scope_names=[SCOPE],
            **options,  # type: ignore[arg-type]
        )
        assert secret is not None
        return Registered(client, secret)

    opaque = await confidential("bench opaque", ["client_credentials"], introspect=True)
    jwt = await confidential(
        "bench jwt", ["client_credentials"], introspect=True, jwt_access_tokens=True
    )
    # A refresh count no run can use up: every refresh request gets a new refresh token.
    app = await confidential("bench app", ["authorization_code"], refresh_count=1_000_000)
    names = [f"bench-{i}" for i in range(flow_users)]
    # One person per concurrent flow: a person's sign-ins are counted (login_throttle).
    await asyncio.gather(*(users.add(redis, name, PASSWORD) for name in names))
    return Fixtures(opaque, jwt, app, names)


async def _many(count: int, make: Callable[[], Awaitable[str]]) -> list[str]:
    made: list[str] = []
    for start in range(0, count, BATCH):
        made += await asyncio.gather(*(make() for _ in range(min(BATCH, count - start))))
    return made


def user_grant(client: Client) -> Grant:
    """A grant of a person of their own, as real traffic has: a person signs in now and
    then, so their index is never one the token service has just pruned."""
    person = families.new_family()
    return Grant(families.new_family(), client.client_id, [SCOPE], person, f"{person}-sub")


async def codes_for(
    redis: RedisClient, settings: Settings, client: Client, count: int
) -> list[str]:
    """Codes as an approval makes them (services/authorize/authorization_response.py),
    each with an S256 challenge."""
    challenge = pkce.s256(VERIFIER)

    async def one() -> str:
        grant = user_grant(client)
        record = CodeRecord(
            grant.family,
            client.client_id,
            REDIRECT_URI,
            grant.username or "",
            grant.sub,
            grant.scope,
            challenge,
            "S256",
        )
        return await codes.create(redis, settings, record)

    return await _many(count, one)


async def issued_for(
    redis: RedisClient,
    settings: Settings,
    client: Client,
    count: int,
    *,
    refresh: bool,
    key_set: KeySet | None = None,
) -> list[str]:
    """Access tokens (or refresh tokens) as the token endpoint issues them."""

    async def one() -> str:
        grant = (
            user_grant(client)
            if refresh
            else Grant(families.new_family(), client.client_id, [SCOPE], None, client.client_id)
        )
        issued = await tokens.issue(
            redis, settings, client, grant, key_set=key_set, refreshable=refresh
        )
        assert issued is not None
        value = issued.refresh_token if refresh else issued.access_token
        assert value is not None
        return value

    return await _many(count, one)


def write_bodies(path: Path, bodies: list[dict[str, str]]) -> Path:
    path.write_text("".join(urlencode(body) + "\n" for body in bodies))
    return path


def code_exchange_bodies(found: list[str]) -> list[dict[str, str]]:
    return [
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": VERIFIER,
        }
        for code in found
    ]
