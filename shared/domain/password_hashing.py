"""The cost parameters of argon2id password hashes (RFC 9106 §3.1), and the production
default: a value the settings read and the hashing code (``shared.security.crypto``)
uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PasswordHashing:
    """argon2id's passes, memory (KiB) and lanes. Salt (16 bytes) and tag (32 bytes) are
    argon2-cffi's defaults, as RFC 9106 §4 recommends."""

    time_cost: int
    memory_kib: int
    parallelism: int


# RFC 9106 §4, the second recommended option, for machines without 2 GiB a check:
# t=3 passes, 64 MiB, p=4 lanes. Every password is hashed so unless the settings say
# otherwise (TESSERA_PASSWORD_HASH_*, lowered only by the tests).
RFC_9106_LOW_MEMORY = PasswordHashing(time_cost=3, memory_kib=64 * 1024, parallelism=4)
