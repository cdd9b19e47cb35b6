"""The resources a scope definition lists, "METHOD /path/template" (``scope_resources``),
and the policy a resource server makes of Tessera's definitions (``scope_rules``)."""

from __future__ import annotations

import logging

import pytest

from tessera_resource_server.scope_resources import Resource, parse_resource
from tessera_resource_server.scope_rules import ScopeRules


def test_parse_resource_gives_the_canonical_form() -> None:
    assert str(parse_resource("  delete   /a/{b}/c/ ")) == "DELETE /a/{b}/c/"
    assert parse_resource("GET /") == Resource("GET", "/")


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("/notes", "is not 'METHOD /path/template'"),
        ("HEAD /notes", "is not 'METHOD /path/template'"),  # GET covers HEAD
        ("GET notes", "the path must start with /"),
        ("GET /notes/{id:\\d+}", "no regular expressions"),
        ("GET /notes//x", "the path must start with /"),
    ],
)
def test_a_bad_resource_is_refused(resource: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_resource(resource)


def test_the_rules_map_each_route_to_the_scopes_that_cover_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    definitions = [
        {"name": "notes:read", "resources": ["GET /notes", "GET /notes/{note_id}"]},
        {"name": "notes:admin", "resources": ["GET /notes/{note_id}", "POST /notes"]},
        {"name": "notes:plain"},
        {"name": "other:read", "resources": ["GET /notes"]},  # another API's: no prefix
        {"name": "notes:odd", "resources": ["GET /notes/{id:\\d+}"]},
        {"resources": ["POST /notes"]},
    ]

    with caplog.at_level(logging.WARNING, logger="tessera.resource_server"):
        rules = ScopeRules.from_definitions(definitions, prefix="notes:")

    assert rules.covering("GET", "/notes") == {"notes:read"}
    assert rules.covering("HEAD", "/notes") == {"notes:read"}  # RFC 9110 §9.3.2
    assert rules.covering("GET", "/notes/{note_id}") == {"notes:read", "notes:admin"}
    assert rules.covering("POST", "/notes") == {"notes:admin"}
    assert rules.covering("DELETE", "/notes/{note_id}") == frozenset()
    assert len(rules) == 3
    # What a malformed entry would have opened stays closed, and the log says so.
    assert "'notes:odd' lists a bad resource" in caplog.text
    assert "an entry without a name is skipped" in caplog.text
