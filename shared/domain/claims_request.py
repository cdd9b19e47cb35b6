"""The ``claims`` request parameter (OpenID Connect Core §5.5): individual claims asked
for in the ID token or from the UserInfo endpoint. No I/O.

Its JSON is kept in the pending request, which anyone may make, so it is bounded, and
only what Tessera acts on is kept: for each of the two members, the names asked for and
whether each is ``essential``. A ``value`` or ``values`` asked for is dropped; Core
§5.5.1 lets a server treat such a request as voluntary. Members Tessera does not know
are ignored (§5.5).
"""

from __future__ import annotations

from typing import Any

import orjson

# Where requested claims may go (Core §5.5).
MEMBERS = ("userinfo", "id_token")
MAX_LENGTH = 1024
MAX_CLAIM_NAME = 64

# The parsed form: member -> claim name -> essential.
ClaimsRequest = dict[str, dict[str, bool]]


class ClaimsRequestError(ValueError):
    """The parameter is no claims request; the message says why, for the client, in the
    characters an error_description may hold (RFC 6749 §4.1.2.1: no quote, no backslash,
    ASCII only), and never a name the caller chose."""


def parse(value: str | None) -> ClaimsRequest | None:
    """The claims request in ``value``; None when absent. ClaimsRequestError when it is
    not a JSON object of the shape Core §5.5 gives."""
    if value is None:
        return None
    if len(value) > MAX_LENGTH:
        raise ClaimsRequestError(f"the claims parameter is longer than {MAX_LENGTH} characters")
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ClaimsRequestError(
            "the claims parameter is not JSON (OpenID Connect Core, section 5.5)"
        ) from None
    if not isinstance(found, dict):
        raise ClaimsRequestError(
            "the claims parameter must be a JSON object (OpenID Connect Core, section 5.5)"
        )
    parsed: ClaimsRequest = {}
    for member in MEMBERS:
        asked = found.get(member)
        if asked is None:
            continue
        if not isinstance(asked, dict):
            raise ClaimsRequestError(f"claims.{member} must be a JSON object")
        parsed[member] = {name: _essential(member, name, how) for name, how in asked.items()}
    return parsed


def _essential(member: str, name: str, how: Any) -> bool:
    if len(name) > MAX_CLAIM_NAME:
        raise ClaimsRequestError(f"a claim name in claims.{member} is too long")
    if how is None:
        return False  # Core §5.5.1: null asks for the claim in the default manner
    if not isinstance(how, dict):
        raise ClaimsRequestError(f"a claim in claims.{member} must be null or an object")
    essential = how.get("essential", False)
    if not isinstance(essential, bool):
        raise ClaimsRequestError(f"essential in claims.{member} must be true or false")
    return essential


def sub_value(value: str | None) -> str | None:
    """The ``sub`` a valid claims parameter asks for by value (Core §5.5.1: the answer is
    positive only for that person), if any."""
    if value is None:
        return None
    found = orjson.loads(value)
    for member in MEMBERS:
        asked = (found.get(member) or {}).get("sub")
        if isinstance(asked, dict) and isinstance(asked.get("value"), str):
            return str(asked["value"])
    return None


def names_for(request: ClaimsRequest | None, member: str) -> list[str]:
    """The claim names asked for in ``member`` ("userinfo" or "id_token")."""
    return list((request or {}).get(member, {}))
