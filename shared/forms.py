"""Reading OAuth request parameters strictly (RFC 6749 §3.1, §3.2).

Parameters must not be repeated, and a parameter sent without a value is treated as if
it were omitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from aiohttp import web

from shared import fingerprint
from shared.errors import invalid_request

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64
# The parameter names of the protocol (RFC 6749, RFC 7009, RFC 7636, RFC 7662, OpenID
# Connect Core §3.1.2.1) and of Tessera's own forms: a log line names these, and any
# other name by its fingerprint. A body that is nothing but a secret is one such name.
PARAMETER_NAMES = frozenset(
    {
        "client_id",
        "client_secret",
        "code",
        "code_challenge",
        "code_challenge_method",
        "code_verifier",
        "grant_type",
        "nonce",
        "password",
        "prompt",
        "redirect_uri",
        "refresh_token",
        "response_mode",
        "response_type",
        "scope",
        "state",
        "token",
        "token_type_hint",
        "username",
        # The sign-in, approval and connected-applications forms, and the admin API.
        "client",
        "csrf_token",
        "decision",
        "interaction",
        "next",
        "user",
    }
)

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


def logged_names(names: Iterable[str]) -> list[str]:
    """Parameter names for a log line: those of the protocol as they are, others as
    fingerprints."""
    return sorted(fingerprint.shown(name, PARAMETER_NAMES) for name in names)


def single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    params, repeated = collect(pairs)
    if repeated:
        # The names are the caller's; they go to the log, not into the response.
        raise invalid_request(
            "A request parameter is repeated.", f"repeated: {logged_names(repeated)}"
        )
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
