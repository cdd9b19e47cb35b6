"""The commands that work on the Redis at ``REDIS_URL`` itself rather than through the admin
API: ``tessera bootstrap ...`` (the first steps, before the API has a client to be
administered with) and ``tessera log fingerprint``. They bypass the API, its checks of
the caller and its audit trail: run them where the Redis credentials already are."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from shared.admin.session import (
    Session,
    output_option,
    pass_session,
    read_stdin_line,
    say_the_secret_is_shown_once,
)
from shared.config.settings import audit_max_events_from_env, redis_url_from_env
from shared.domain.tessera_scopes import ADMIN as ADMIN_SCOPE
from shared.security import fingerprint
from shared.storage import audit, clients, log_fingerprint_key
from shared.storage.redis_store import AdminClient, RedisClient, connect

T = TypeVar("T")


def on_redis(work: Callable[[AdminClient], Awaitable[T]]) -> T:
    """``work`` with a connection to the Redis at REDIS_URL, closed after."""

    async def run() -> T:
        redis = connect(redis_url_from_env())
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    return asyncio.run(run())


@click.group()
def bootstrap() -> None:
    """First steps, written straight to the Redis at REDIS_URL.

    These bypass the admin API (their changes are audited with the actor bootstrap-cli):
    use them only to make the first administrator, then administer through the API."""


@bootstrap.command("admin-client")
@click.option("--name", required=True, help="The client's name, such as 'Operations'.")
@output_option
@pass_session
def admin_client(session: Session, name: str) -> None:
    """Register a confidential client allowed client_credentials and the tessera:admin
    scope, and print its secret once. Bypasses the admin API; audited as bootstrap-cli."""

    async def create(redis: RedisClient) -> tuple[clients.Client, str | None]:
        return await clients.create(
            redis,
            name=name,
            client_type="confidential",
            redirect_uris=[],
            grants=["client_credentials"],
            scope_names=[ADMIN_SCOPE],
            # Granted when the token request names no scope (RFC 6749 §3.3).
            default_scopes=[ADMIN_SCOPE],
        )

    made, secret = on_redis(create)
    on_redis(lambda redis: _audit_bootstrap(redis, made))
    session.emit(
        {
            "client_id": made.client_id,
            "client_name": made.name,
            "grant_types": made.grants,
            "scope": " ".join(made.scopes),
            "client_secret": secret,
        }
    )
    say_the_secret_is_shown_once()


async def _audit_bootstrap(redis: AdminClient, made: clients.Client) -> None:
    """The bootstrap's change, recorded as the admin API records its own (actor
    ``bootstrap-cli``): no administrative change goes unaudited."""
    await audit.record(
        redis,
        actor="bootstrap-cli",
        action="create",
        resource="client",
        resource_id=made.client_id,
        before=None,
        after={"client_id": made.client_id, "client_name": made.name, "scope": made.scopes},
        max_events=audit_max_events_from_env(),
    )


@click.group()
def log() -> None:
    """The services' logs."""


@log.command("fingerprint")
@output_option
@pass_session
def log_fingerprint(session: Session) -> None:
    """The fingerprint the logs show for a value read from standard input (a credential
    the services must not log): to find where a misplaced one was sent. Reads the
    fingerprint key from the Redis at REDIS_URL."""
    value = read_stdin_line("value")

    async def find(redis: RedisClient) -> str:
        return fingerprint.with_key(await log_fingerprint_key.shared_key(redis), value)

    found = on_redis(find)
    session.emit({"fingerprint": found}, message=found)
