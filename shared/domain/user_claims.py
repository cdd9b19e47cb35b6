"""A person's profile claims (OpenID Connect Core §5.1) and which of them are released to a
client. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Core §5.1: the standard claims a profile may hold. sub is not among them: it is the
# user record's own, and updated_at is kept by Tessera (the time the profile changed).
STANDARD_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
)


def released(profile: Mapping[str, Any], updated_at: int, names: Iterable[str]) -> dict[str, Any]:
    """The claims among ``names`` the profile holds: only standard claims, and only those
    with a value (Core §5.3.2: a claim without a value is omitted, never null)."""
    found: dict[str, Any] = {}
    for name in names:
        if name == "updated_at":
            if updated_at:
                found[name] = updated_at
        elif name in STANDARD_CLAIMS and profile.get(name) is not None:
            found[name] = profile[name]
    return found
