"""The sign-in limits' defaults as the tests meet them (README "Sign-in limits"), and
addresses no other attempt of the run comes from."""

from __future__ import annotations

import secrets

# Failures per (username, address), per address and per username in a window (the
# defaults of TESSERA_LOGIN_PAIR_RATE, _ADDRESS_RATE and _USERNAME_RATE).
PAIR_LIMIT = 5
ADDRESS_LIMIT = 30
USERNAME_LIMIT = 10
WINDOW = 900


def new_address() -> str:
    """An address no other attempt of the run comes from."""
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))
