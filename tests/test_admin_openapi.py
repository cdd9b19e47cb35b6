"""The admin API's OpenAPI document (services/admin/openapi.yaml): valid OpenAPI 3.1 (as
openapi-spec-validator reads the specification), served as it is kept, naming every route
the application serves; and the API fuzzed against it with schemathesis, which sends
requests the document allows and many it does not, checking each answer: never a 5xx,
and the status, headers, content type and body as the document says.

Bounded for ``make test``: a few examples per operation, drawn from a fixed seed, against
the session's stack with the bootstrap credential. What the requests create (clients,
people, scopes with generated names) stays in the session's Redis, where every other
test names its own records; what they delete is what they created or nothing (the names
they draw are their own), so no other test's records are touched.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, settings
from openapi_spec_validator import validate

from services.admin.app import create_app
from services.admin.openapi import DOCUMENT
from tests.stack import ADMIN_TOKEN, Stack, production_settings

SCHEMA = schemathesis.openapi.from_path(DOCUMENT)
# Examples per operation: about 250 requests in all, some seconds.
EXAMPLES = 8


def test_the_document_is_valid_openapi_3_1() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_no_description_was_cut_short_into_a_key_of_its_own() -> None:
    """YAML reads ``{description: A, or B.}`` as a description "A" and a key "or B.":
    valid OpenAPI (a schema may hold any key), a wrong document."""
    strays: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if value is None and isinstance(key, str) and " " in key:
                    strays.append(f"{where}/{key}")
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(yaml.safe_load(DOCUMENT.read_text()), "")
    assert strays == []


def test_the_document_describes_every_route_the_application_serves() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    described = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    app = create_app(production_settings("redis://127.0.0.1:1/0"))
    served = {
        (route.method, re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert served == described


async def test_the_document_is_served_as_json_to_anyone(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{stack.admin}/openapi.json") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        assert await r.json() == yaml.safe_load(DOCUMENT.read_text())


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_document_says(
    # The operation's type parameters are schemathesis's own business.
    case: schemathesis.Case[Any],
    stack: Stack,
) -> None:
    case.call_and_validate(
        base_url=stack.admin,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        # Every check but one: a request the document allows may still break a rule no
        # schema states (a scope that is not defined, a redirect URI over plain http, a
        # name taken), which the API answers 422, as the document says it may.
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
