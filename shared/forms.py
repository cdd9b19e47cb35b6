"""Reading OAuth request parameters strictly (RFC 6749 §3.1, §3.2).

Parameters must not be repeated, and a parameter sent without a value is treated as if
it were omitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from aiohttp import web

from shared.errors import invalid_request

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64


def single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise invalid_request(f"The {name} parameter is repeated.")
        params[name] = value
    return {name: value for name, value in params.items() if value != ""}


async def read_form(request: web.Request) -> dict[str, str]:
    """The body of an OAuth POST as single-valued parameters."""
    if request.content_type != FORM_CONTENT_TYPE:
        raise invalid_request(f"The request body must be {FORM_CONTENT_TYPE}.")
    try:
        body = (await request.read()).decode()
    except UnicodeDecodeError:
        raise invalid_request("The request body is not valid UTF-8.") from None
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise invalid_request("The request body has too many parameters.") from None
    return single_valued(pairs)
