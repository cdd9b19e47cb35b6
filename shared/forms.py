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

Pairs = list[tuple[str, str]]


def collect(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """The first value of each parameter (empty ones dropped) and the names repeated."""
    params: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name in params:
            repeated.add(name)
        else:
            params[name] = value
    return {name: value for name, value in params.items() if value != ""}, repeated


def single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    params, repeated = collect(pairs)
    if repeated:
        # The names are the caller's; they go to the log, not into the response.
        raise invalid_request("A request parameter is repeated.", f"repeated: {sorted(repeated)}")
    return params


async def read_pairs(request: web.Request) -> Pairs:
    """The parameters of a form-encoded POST body, in order, repeats included."""
    if request.content_type != FORM_CONTENT_TYPE:
        raise invalid_request(f"The request body must be {FORM_CONTENT_TYPE}.")
    try:
        body = (await request.read()).decode()
    except UnicodeDecodeError:
        raise invalid_request("The request body is not valid UTF-8.") from None
    try:
        return parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise invalid_request("The request body has too many parameters.") from None


async def read_form(request: web.Request) -> dict[str, str]:
    """The body of an OAuth POST as single-valued parameters."""
    return single_valued(await read_pairs(request))
