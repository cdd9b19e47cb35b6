"""What the commands print: JSON and YAML for programs (the API's own representation,
unchanged), or a table for people (``-o table``, the default).

A listing is a table with a header row and a column per chosen field; one record is a
FIELD/VALUE table with every field, nested objects (a user's claims) flattened as
``claims.email`` and a list's items one per row. Times the API gives as Unix seconds
are shown in RFC 3339 (UTC).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

FORMATS = ("table", "json", "yaml")

# Fields holding Unix seconds; a table shows them as times.
TIME_FIELDS = frozenset(
    {
        "created_at",
        "updated_at",
        "client_id_issued_at",
        "secret_rotated_at",
        "previous_secret_expires_at",
        "issued_at",
        "expires_at",
        "granted_at",
        "last_used_at",
    }
)


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    # How the field's value is shown, when not as ``cell`` shows it.
    show: Callable[[Any], str] | None = None

    def cell(self, item: Mapping[str, Any]) -> str:
        value = item.get(self.field)
        return self.show(value) if self.show else cell(value, self.field)


def as_json(data: object) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def as_yaml(data: object) -> str:
    # The API's key order, not sorted; text kept as typed (allow_unicode).
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def when(timestamp: object) -> str:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        return "-" if timestamp is None else str(timestamp)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def cell(value: Any, field: str = "") -> str:
    """One value as a table shows it."""
    if field in TIME_FIELDS:
        return when(value)
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def listing(items: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    return table([c.header for c in columns], ([c.cell(item) for c in columns] for item in items))


def _flattened(record: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    """A row per field; a nested object's fields as ``name.field``; a list's items one
    per row (a scope's resources hold spaces)."""
    for name, value in record.items():
        if isinstance(value, dict) and value:
            yield from _flattened(value, f"{prefix}{name}.")
        elif isinstance(value, list) and value:
            for number, item in enumerate(value):
                yield (f"{prefix}{name}" if number == 0 else ""), cell(item)
        else:
            yield f"{prefix}{name}", cell(value, name)


def one_record(record: Mapping[str, Any]) -> str:
    return table(["FIELD", "VALUE"], _flattened(record))


def render(
    data: object, fmt: str, columns: Sequence[Column] | None = None, message: str | None = None
) -> str:
    """``data`` in ``fmt``. A table shows a list with ``columns``, a record field by field,
    and ``message`` instead, when given (what an action did, in words)."""
    if fmt == "json":
        return as_json(data)
    if fmt == "yaml":
        return as_yaml(data)
    if message is not None:
        return message + "\n"
    if isinstance(data, list):
        assert columns is not None, "a listing names its columns"
        return listing(data, columns)
    assert isinstance(data, Mapping)
    return one_record(data)
