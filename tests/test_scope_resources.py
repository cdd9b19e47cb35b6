"""Scope definitions that list the resources they cover ("METHOD /path/{var}", as the
seed's scopes list folders and services): defined with ``tessera scope add --resource``,
shown by ``scope show`` and ``scope list``."""

from __future__ import annotations

import orjson
import pytest
from redis.asyncio import Redis

from shared import keys, scopes
from tests.oauth import Stack, unique
from tests.test_cli import assert_refused, tessera


async def test_scope_add_with_resources_and_show(stack: Stack, redis: Redis) -> None:
    name = unique("notes:read")

    run = await tessera(
        stack,
        "scope", "add", name, "--description", "Read your notes",
        "--resource", "GET /notes",
        "--resource", "get /notes/{note_id}",
        "--resource", "GET /notes",
    )  # fmt: skip

    assert run.status == 0, run.stderr
    # Methods upper-cased, duplicates dropped, order kept.
    record = orjson.loads(await redis.get(keys.scope(name)) or "{}")
    assert record == {
        "name": name,
        "description": "Read your notes",
        "resources": ["GET /notes", "GET /notes/{note_id}"],
    }
    shown = await tessera(stack, "scope", "show", name)
    assert "resource     GET /notes\n" in shown.stdout
    assert "resource     GET /notes/{note_id}\n" in shown.stdout
    as_json = (await tessera(stack, "scope", "show", name, "--json")).json()
    assert as_json["resources"] == ["GET /notes", "GET /notes/{note_id}"]
    listed = (await tessera(stack, "scope", "list", "--json")).json()
    assert record in listed


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("/notes", "is not 'METHOD /path/template'"),
        ("FETCH /notes", "is not 'METHOD /path/template'"),
        ("HEAD /notes", "is not 'METHOD /path/template'"),
        ("GET notes", "the path must start with /"),
        ("GET /notes/{id:\\d+}", "no regular expressions"),
        ("GET /notes/{id}x", "the path must start with /"),
        ("GET /notes//x", "the path must start with /"),
        ("GET /notes?x=1", "the path must start with /"),
        ("GET /no tes", "the path must start with /"),
    ],
)
async def test_a_bad_resource_is_refused_and_nothing_written(
    stack: Stack, redis: Redis, resource: str, message: str
) -> None:
    name = unique("notes:read")
    args = ["scope", "add", name, "--description", "x", "--resource", resource]

    await assert_refused(stack, redis, args, message)


def test_parse_resource_gives_the_canonical_form() -> None:
    assert str(scopes.parse_resource("  delete   /a/{b}/c/ ")) == "DELETE /a/{b}/c/"
    assert scopes.parse_resource("GET /") == scopes.Resource("GET", "/")
