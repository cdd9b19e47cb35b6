"""What kind of refusal each storage operation raises (shared/domain/domain_errors.py):
the admin API and the CLI answer by the kind alone, so an operation that raised the
wrong one would get the wrong status. Nothing is written when one is refused."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from shared.domain.domain_errors import Conflict, DomainError, Invalid, NotFound
from shared.storage import clients, management, scopes, users
from tests.records import PASSWORD, make_setup, unique


async def test_an_unknown_name_is_not_found(redis: Redis) -> None:
    scope, client_id = unique("no-such-scope"), unique("no-such-client")
    for refused in (
        clients.existing(redis, client_id),
        clients.set_enabled(redis, client_id, False),
        clients.delete(redis, client_id),
        management.delete_client(redis, client_id),
    ):
        with pytest.raises(NotFound) as caught:
            await refused
        assert (caught.value.kind, caught.value.name) == ("client", client_id)
        assert caught.value.message == f"no client {client_id!r}"
    for unknown_scope in (
        scopes.delete(redis, scope),
        management.show_scope(redis, scope),
        management.delete_scope(redis, scope),
    ):
        with pytest.raises(NotFound) as caught:
            await unknown_scope
        assert (caught.value.kind, caught.value.name) == ("scope", scope)
    assert await clients.get(redis, client_id) is None
    assert await scopes.get(redis, scope) is None


async def test_a_taken_name_or_a_scope_in_use_is_a_conflict(redis: Redis) -> None:
    s = await make_setup(redis)
    for refused in (
        scopes.add(redis, s.scope, "Another description"),
        users.add(redis, s.user, "another long password"),
        management.delete_scope(redis, s.scope),
    ):
        with pytest.raises(Conflict):
            await refused
    assert (await management.show_scope(redis, s.scope)).client_ids == [s.client.client_id]


async def test_a_bad_value_is_invalid_and_a_value_error(redis: Redis) -> None:
    scope = unique("read")
    for refused in (
        users.add(redis, unique("bob"), "short"),
        users.add(redis, "two words", PASSWORD),
        scopes.add(redis, "two words", "x"),
        # The resource's parser is the resource servers' too, with ValueError of its own.
        scopes.add(redis, scope, "x", ["FETCH /notes"]),
        clients.create(
            redis,
            name=unique("App"),
            client_type="public",
            redirect_uris=["https://app.example.com/cb"],
            grants=["client_credentials"],
            scope_names=[],
        ),
    ):
        with pytest.raises(Invalid) as caught:
            await refused
        assert isinstance(caught.value, ValueError)
    with pytest.raises(Invalid, match="malformed scope parameter"):
        scopes.parse_requested('quo"te')
    assert await scopes.get(redis, scope) is None


def test_the_kinds_are_distinct_domain_errors() -> None:
    for kind in (NotFound, Conflict, Invalid):
        assert issubclass(kind, DomainError)
    assert not issubclass(NotFound, ValueError)
    assert not issubclass(Conflict, ValueError)
