"""OpenID Connect's words (Core 1.0): the scopes it defines, the claims each one asks for,
and the standard claims a person's profile may hold. No I/O.

The five scopes are built in (``shared.storage.scopes``): every OpenID Provider knows
them, so an operator only allows them to a client. Their descriptions are what the
approval page shows, in plain words.
"""

from __future__ import annotations

OPENID = "openid"

# Core §3.1.2.1 (openid) and §5.4 (the others), as the approval page words them.
STANDARD_SCOPES: dict[str, str] = {
    OPENID: "Sign you in to the application with your account",
    "profile": "Your name and profile: name, username, picture, locale and time zone",
    "email": "Your email address",
    "phone": "Your phone number",
    "address": "Your postal address",
}

# Core §5.4: the claims each scope asks for.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}

# RFC 8176 §2: how the person authenticated. Tessera signs people in with a password only.
AMR_PASSWORD = ["pwd"]

# Back-Channel Logout 1.0 §2.4: the event a logout token carries.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def claims_of_scopes(scope: list[str]) -> list[str]:
    """The claims the granted ``scope`` asks for (Core §5.4), in a stable order."""
    return [claim for name in scope for claim in SCOPE_CLAIMS.get(name, ())]
