"""Which scope covers which resource: Tessera's scope definitions, enforced.

webMethods Integration Server's scope definitions name the folders, services and URL templates a
scope grants, and its resource server checks the requested service is within the
token's scope. Here a scope may list resources as ``METHOD /path/{var}``
(``scope_resources``); the resource server fetches the definitions from
Tessera's ``GET /scopes`` at start-up and every ``scopes_refresh_seconds``.

A request is matched by its method and its route's canonical template
(``request.match_info.route.resource.canonical``, ``/notes/{note_id}``), a string
comparison with no pattern evaluated; HEAD is matched as GET (RFC 9110 §9.3.2).

- Covered by one or more scopes: the token needs any one of them (each scope grants
  what it lists). The 403 names them all in ``scope=`` (RFC 6750 §3).
- Covered by none: refused, 403 ``insufficient_scope`` without ``scope=``. With
  enforcement on, the mapping is the policy, and a route it forgot to name must not be
  open to every token: default-deny. Mark routes meant for anyone ``@public``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tessera_resource_server.scope_resources import parse_resource

log = logging.getLogger("tessera.resource_server")


class ScopeRules:
    def __init__(self, covering: dict[tuple[str, str], frozenset[str]]) -> None:
        self._covering = covering

    @classmethod
    def from_definitions(cls, definitions: Iterable[Any], prefix: str = "") -> ScopeRules:
        """From the ``scopes`` of ``GET /scopes``; only names starting with ``prefix``.
        A malformed entry is skipped with a log line (it covers nothing, so what it
        would have opened stays closed)."""
        covering: dict[tuple[str, str], set[str]] = {}
        for definition in definitions:
            if not isinstance(definition, dict) or not isinstance(definition.get("name"), str):
                log.warning("scope definitions: an entry without a name is skipped")
                continue
            name = definition["name"]
            if not name.startswith(prefix):
                continue
            resources = definition.get("resources", [])
            if not isinstance(resources, list):
                log.warning("scope definitions: %.80r has malformed resources", name)
                continue
            for value in resources:
                try:
                    resource = parse_resource(value) if isinstance(value, str) else None
                except ValueError:
                    resource = None
                if resource is None:
                    log.warning("scope definitions: %.80r lists a bad resource", name)
                    continue
                covering.setdefault((resource.method, resource.path), set()).add(name)
        return cls({key: frozenset(names) for key, names in covering.items()})

    def covering(self, method: str, template: str) -> frozenset[str]:
        """The scopes that cover ``method`` on the route template, any one of which grants
        it; empty when none does."""
        method = "GET" if method == "HEAD" else method
        return self._covering.get((method, template), frozenset())

    def __len__(self) -> int:
        return len(self._covering)
