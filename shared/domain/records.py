"""Records read back from Redis, forward-compatibly.

During a rolling update old and new replicas share one Redis, and after a rollback an
older release reads what a newer one wrote. So a record is read by the fields this
release knows: a field it does not know (added by a newer release) is ignored, and a
field the record lacks (written by an older one) takes its default. A release that adds
a field therefore gives it a default; one that changes what a field means, or removes
one that older releases require, says so in its upgrade notes (README, "Rolling
updates"). This is for the records stored as named JSON; the compact ones (tokens,
pending requests) are read by position, and a newer release only appends to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from functools import cache
from typing import Any, TypeVar, cast

import orjson

Record = TypeVar("Record")


@cache
def _fields(cls: type[Any]) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(cls))


def from_dict(cls: type[Record], data: Mapping[str, Any], **given: Any) -> Record:
    """The dataclass ``cls`` from a decoded record, with the fields of ``given`` added
    (those kept beside the record rather than in it, such as a session's id)."""
    known = _fields(cast(Hashable, cls))  # a type is hashable; mypy cannot tell for a TypeVar
    found = {name: value for name, value in data.items() if name in known}
    return cls(**{**found, **given})


def from_json(cls: type[Record], raw: str | bytes, **given: Any) -> Record:
    """As ``from_dict``, from the record's JSON."""
    return from_dict(cls, orjson.loads(raw), **given)
