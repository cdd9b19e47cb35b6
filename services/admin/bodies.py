"""Request bodies of the admin API: JSON objects (RFC 8259), their fields checked by type
before any rule of storage looks at them.

A body must say it is JSON (``application/json``, or for PATCH RFC 7396's
``application/merge-patch+json``), else 415; carry no content coding (none is offered,
RFC 9110 §8.4), else 415; stay within aiohttp's 1 MiB, else 413; and be a JSON object,
else 400. A field the resource does not have, or of the wrong type, is 400 naming it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson
from aiohttp import web

from services.admin.problems import Problem, invalid

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


async def json_object(request: web.Request, *, media_types: Collection[str] = (JSON,)) -> Any:
    """The request's JSON object (a dict)."""
    if request.content_type not in media_types:
        raise Problem(
            415,
            f"The body must be {' or '.join(media_types)}.",
            headers={"Accept-Patch": MERGE_PATCH} if MERGE_PATCH in media_types else None,
        )
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise Problem(415, "The body must not carry a content coding.")
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    return body


class Fields:
    """A body's fields, read by type; what is wrong is gathered and refused at once
    (``done``) as 400, each wrong field named. ``null`` is a value only in a merge patch
    (``patch``: RFC 7396, it restores the field's default) and where the field may be
    null (a lifetime: the global default)."""

    def __init__(
        self, body: Mapping[str, Any], allowed: Collection[str], *, patch: bool = False
    ) -> None:
        self.body = body
        self.patch = patch
        self.errors: list[dict[str, str]] = [
            {"field": name, "message": "not a field of this resource, or read-only"}
            for name in body
            if name not in allowed
        ]

    def __contains__(self, name: str) -> bool:
        return name in self.body

    def _wrong(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def _null(self, name: str) -> bool:
        """Whether the field is null, which is wrong outside a merge patch."""
        if name in self.body and self.body[name] is None:
            if not self.patch:
                self._wrong(name, "must not be null")
            return True
        return False

    def text(self, name: str, default: str = "") -> str:
        value = self.body.get(name, default)
        if self._null(name):
            return default
        if not isinstance(value, str):
            self._wrong(name, "must be a string")
            return default
        return value

    def choice(self, name: str, choices: Collection[str], default: str) -> str:
        value = self.text(name, default)
        if value not in choices:
            self._wrong(name, f"must be one of {', '.join(choices)}")
            return default
        return value

    def texts(self, name: str) -> list[str]:
        value = self.body.get(name)
        if self._null(name) or value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self._wrong(name, "must be an array of strings")
            return []
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.body.get(name, default)
        if self._null(name):
            return default
        if not isinstance(value, bool):
            self._wrong(name, "must be true or false")
            return default
        return value

    def whole(self, name: str, default: int | None, *, minimum: int = 0) -> int | None:
        """A whole number from ``minimum`` (null allowed when ``default`` is None)."""
        value = self.body.get(name, default)
        if value is None:
            if default is not None:
                self._null(name)  # null, for a field that cannot be: a patch's default
            return default
        # JSON's true and false are no numbers, whatever Python says of bool.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self._wrong(name, f"must be a whole number, {minimum} or more")
            return default
        return value

    def object(self, name: str) -> dict[str, Any] | None:
        value = self.body.get(name)
        if self._null(name) or value is None:
            return None
        if not isinstance(value, dict):
            self._wrong(name, "must be an object")
            return None
        return value

    def done(self) -> None:
        if self.errors:
            names = ", ".join(error["field"] for error in self.errors)
            raise Problem(400, f"Refused: {names}.", errors=self.errors)
