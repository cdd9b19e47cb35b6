"""Reading OAuth request parameters strictly (RFC 6749 §3.1, §3.2, Appendix B).

Parameters come in a query string or an ``application/x-www-form-urlencoded`` body, both
decoded by one parser here. Parameters must not be repeated, and a parameter sent without
a value is treated as if it were omitted.

What cannot be decoded is refused with 400 ``invalid_request`` before anything in it is
believed (so /authorize shows its error page rather than redirect to a URI read from
it): a body with a content coding (Tessera does not decompress request bodies: no OAuth
client compresses a form of a few hundred bytes, and inflating one is work an anonymous
caller would choose), a ``%`` not followed by two hex digits (RFC 3986 §2.1), and octets
that are not UTF-8 (Appendix B). A charset label on the Content-Type is not read:
Appendix B says the octets are UTF-8, and a percent-encoded form is ASCII, which reads
the same in any charset a client names.

The forms of the APIs and of the sign-in pages (``read_form``) also refuse control
characters: every parameter's syntax is within Appendix A's UNICODECHARNOCRLF, so a NUL,
CR or LF is never part of a value. /authorize checks its own parameters instead, so that
it can answer a bad one by redirect once client and redirect URI are known (§4.1.2.1).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable
from urllib.parse import parse_qsl

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from shared.domain.oauth_errors import invalid_request
from shared.security import fingerprint

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

# A "%" that does not start a percent-encoded octet (RFC 3986 §2.1).
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Outside RFC 6749 Appendix A's UNICODECHARNOCRLF: %x09 / %x20-7E / %x80-D7FF /
# %xE000-FFFD / %x10000-10FFFF (surrogates cannot come out of strict UTF-8 decoding).
_NOT_A_PARAMETER_CHARACTER = re.compile("[\x00-\x08\x0a-\x1f\x7f\ufffe\uffff]")
# Content codings that leave the body as it is (RFC 9110 §8.4.1).
_NO_CODING = frozenset({"", "identity"})


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


def parse(encoded: str, where: str) -> Pairs:
    """The parameters of a form-urlencoded string (a query, or a body), in order, repeats
    included; ``where`` names it in the refusal ("query", "request body")."""
    if _BROKEN_ESCAPE.search(encoded):
        raise invalid_request(f"The {where} has a malformed percent-encoding.")
    try:
        return parse_qsl(
            encoded, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"
        )
    except UnicodeDecodeError:  # before ValueError, its base class. RFC 6749 Appendix B
        raise invalid_request(f"The {where} is not valid UTF-8.") from None
    except ValueError:
        raise invalid_request(f"The {where} has too many parameters.") from None


async def read_pairs(request: web.Request) -> Pairs:
    """The parameters of a form-encoded POST body, in order, repeats included."""
    if request.content_type != FORM_CONTENT_TYPE:
        raise invalid_request(f"The request body must be {FORM_CONTENT_TYPE}.")
    codings = ",".join(request.headers.getall(hdrs.CONTENT_ENCODING, [])).split(",")
    if any(coding.strip().lower() not in _NO_CODING for coding in codings):
        raise invalid_request(
            "The request body must not have a content coding.", "Content-Encoding not identity"
        )
    where = "request body"
    try:
        body = (await request.read()).decode()
    except UnicodeDecodeError:
        raise invalid_request(f"The {where} is not valid UTF-8.") from None
    except web.RequestPayloadError as exc:
        # Broken chunked framing (RFC 9112 §7.1).
        raise invalid_request(
            f"The {where} could not be read.",
            f"unreadable body: {type(exc.__cause__ or exc).__name__}",
        ) from None
    except ConnectionResetError:
        # No one is left to answer; the refusal puts the reason on the request's log line.
        raise invalid_request(
            f"The {where} ended early.", "the client closed the connection within its body"
        ) from None
    return parse(body, where)


async def read_form(request: web.Request) -> dict[str, str]:
    """The body of an OAuth POST as single-valued parameters, none holding a control
    character (RFC 6749 Appendix A)."""
    pairs = await read_pairs(request)
    for name, value in pairs:
        if _NOT_A_PARAMETER_CHARACTER.search(name) or _NOT_A_PARAMETER_CHARACTER.search(value):
            raise invalid_request("The request body holds a control character.")
    return single_valued(pairs)


# Not a coroutine function: every request passes here, and one without a query (each
# POST to /token and /introspect) is handed on without a frame of its own to await.
@web.middleware
def well_formed_query(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Refuse a query string ``parse`` cannot decode, before any handler reads
    ``request.query``: yarl decodes a well-formed query as ``parse`` does, but would
    quietly turn a broken escape or an octet that is no UTF-8 into other characters."""
    query = request.rel_url.raw_query_string
    if query:
        parse(query, "query")
    return handler(request)
