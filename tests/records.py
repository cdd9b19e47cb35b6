"""What a test registers, written straight to Redis as the ``tessera`` CLI would: scopes,
users (who all sign in with ``PASSWORD``) and clients, each under a name of its own."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from shared.domain.password_hashing import PasswordHashing
from shared.storage import clients, scopes, users
from shared.storage.clients import Client
from shared.storage.redis_store import RedisClient
from tests.secrets_ledger import SECRETS_USED
from tests.stack import TEST_PASSWORD_HASHING

REDIRECT_URI = "https://app.example.com/callback"
PASSWORD = "correct horse battery"
SECRETS_USED.add(PASSWORD)


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str | None

    @property
    def client_id(self) -> str:
        return self.client.client_id


@dataclass(frozen=True)
class Setup:
    """What most tests start from: a scope, a user who can sign in, and a client
    registered for that scope."""

    scope: str
    user: str
    client: Registered


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def make_scope(redis: RedisClient, description: str = "Read things") -> str:
    name = unique("read")
    await scopes.add(redis, name, description)
    return name


async def make_user(redis: RedisClient, hashing: PasswordHashing = TEST_PASSWORD_HASHING) -> str:
    username = unique("alice")
    await users.add(redis, username, PASSWORD, hashing)
    return username


async def make_client(
    redis: RedisClient,
    scope_names: list[str],
    *,
    client_type: str = "confidential",
    redirect_uris: list[str] | None = None,
    **options: Any,
) -> Registered:
    client, secret = await clients.create(
        redis,
        name=options.pop("name", unique("App")),
        client_type=client_type,
        redirect_uris=redirect_uris if redirect_uris is not None else [REDIRECT_URI],
        grants=options.pop("grants", ["authorization_code"]),
        scope_names=scope_names,
        **options,
    )
    if secret:
        SECRETS_USED.add(secret)
    return Registered(client, secret)


async def make_resource_server(
    redis: RedisClient, scope_names: list[str], name: str = "Resource server"
) -> Registered:
    """A confidential client allowed to introspect."""
    return await make_client(redis, scope_names, introspect=True, name=name)


async def make_setup(redis: RedisClient, **client_options: Any) -> Setup:
    """A fresh scope, user and client; ``client_options`` go to ``make_client``."""
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope], **client_options)
    return Setup(scope, user, client)
