"""Grant families: everything issued from one approval, revocable as one.

A code or token value is ``<family>.<secret>``. The family id is public and random; the
secret carries the entropy. Knowing the family from the value lets Tessera find the
family's keys (one Redis Cluster slot) without any index lookup.
"""

from __future__ import annotations

from shared.security import crypto

FAMILY_BYTES = 16  # 128-bit family ids


def new_family() -> str:
    return crypto.random_token(FAMILY_BYTES)


def new_value(family: str, nbytes: int) -> str:
    return f"{family}.{crypto.random_token(nbytes)}"


def family_of(value: str) -> str | None:
    """The family id a code or token value names, or None when it is not one of ours."""
    family, dot, secret = value.partition(".")
    if not dot or not family or not secret or len(value) > 256:
        return None
    if not all(ch.isalnum() or ch in "-_" for ch in family):
        return None
    return family


# How long a revoked family stays marked, so nothing more is issued into it: longer than
# a code can live (TESSERA_CODE_LIFETIME is at most an hour), since redeeming a code is
# the only way into a family whose tokens are gone.
TOMBSTONE_TTL = 24 * 3600
