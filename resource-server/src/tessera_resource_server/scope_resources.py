"""The resources a scope definition lists, ``"METHOD /path/template"``: their grammar.

Tessera checks each definition with ``parse_resource`` when a scope is added, and a
resource server parses the definitions it fetches from ``GET /scopes`` with the same
function (``scope_rules``), so the two never disagree on what a resource means.

A template is compared as a string with the route's canonical template
(``/notes/{note_id}``, aiohttp's ``resource.canonical``), so variables are written
``{name}`` without a regular expression, and no pattern is ever evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The methods a resource may name (RFC 9110 §9.3). HEAD is not listed: a resource server
# answers HEAD with its GET route (aiohttp's add_get adds both), so GET covers it.
RESOURCE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# An aiohttp canonical path template: "/" then segments of URL path characters (RFC 3986
# §3.3, without "%" escapes, braces or "?#") or whole-segment variables "{name}".
_SEGMENT = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]+|\{[A-Za-z_][A-Za-z0-9_]*\})"
_PATH_TEMPLATE = re.compile(rf"/(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?")


@dataclass(frozen=True, slots=True)
class Resource:
    """One HTTP method on one path template, as a scope definition lists it."""

    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def parse_resource(value: str) -> Resource:
    """``"GET /notes/{note_id}"`` as a Resource; ValueError naming what is wrong."""
    method, space, path = value.strip().partition(" ")
    if not space or method.upper() not in RESOURCE_METHODS:
        raise ValueError(
            f"resource {value!r} is not 'METHOD /path/template' with METHOD one of "
            f"{', '.join(RESOURCE_METHODS)}"
        )
    path = path.strip()
    if _PATH_TEMPLATE.fullmatch(path) is None:
        raise ValueError(
            f"resource {value!r}: the path must start with / and use {{name}} for a whole "
            "path segment (aiohttp's canonical template, no regular expressions)"
        )
    return Resource(method.upper(), path)
