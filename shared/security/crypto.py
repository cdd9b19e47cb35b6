"""Random values, hashes of stored secrets, and argon2id for user passwords.

DESIGN: never store a secret in clear. Codes, tokens, session ids and client secrets are
high-entropy random values, so one SHA-256 is enough to make a leaked store useless;
user passwords are low-entropy and get argon2id, checked in a thread
(``shared.web.password_checks``) so the event loop never blocks on it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.domain.password_hashing import RFC_9106_LOW_MEMORY, PasswordHashing


def _hasher(hashing: PasswordHashing) -> PasswordHasher:
    return PasswordHasher(
        time_cost=hashing.time_cost, memory_cost=hashing.memory_kib, parallelism=hashing.parallelism
    )


# Verifies a hash of any parameters: argon2 reads them from the hash itself.
_password_hasher = _hasher(RFC_9106_LOW_MEMORY)


# Verified against when the user does not exist, so a wrong username costs what a wrong
# password costs and the response time does not tell them apart. A hash of a random
# password nobody kept, made once with the default parameters (a test checks they still
# match): made at start-up instead, its 64 MiB would set the peak memory of every service.
# A hash of nobody's password, never a credential:
DUMMY_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$d/B6SUESjXs1VSXSg+ijpg"  # noqa: S105
    "$gj6Zr01adRXr/aX2WZu5xA3H32ayh9EiBZTL4MeJm6E"
)


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string carrying ``nbytes`` * 8 bits of entropy."""
    return secrets.token_urlsafe(nbytes)


def random_id(nbytes: int = 16) -> str:
    """A random identifier in hex: it never begins with "-", which a command line (the
    ``tessera`` CLI, curl) would take for an option."""
    return secrets.token_hex(nbytes)


def digest(value: str) -> str:
    """The form under which a code, token, session id or client secret is stored."""
    # surrogateescape: a value from a header holds the octets that were not UTF-8 as
    # lone surrogates (aiohttp decodes headers so); they are hashed as the octets sent.
    raw = hashlib.sha256(value.encode(errors="surrogateescape")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str, hashing: PasswordHashing = RFC_9106_LOW_MEMORY) -> str:
    return _hasher(hashing).hash(password)


@functools.cache
def dummy_password_hash(hashing: PasswordHashing) -> str:
    """The hash an unknown username is checked against: made with ``hashing``, as the
    users' own hashes are. The default's is the constant above; any other is made once,
    on the first check that needs it (in a password-check thread, never on the loop)."""
    if hashing == RFC_9106_LOW_MEMORY:
        return DUMMY_PASSWORD_HASH
    return hash_password(random_token(), hashing)


def check_password(
    password_hash: str | None, password: str, hashing: PasswordHashing = RFC_9106_LOW_MEMORY
) -> bool:
    """Whether ``password`` matches its argon2id hash (None: a user that does not exist,
    checked against the dummy hash of ``hashing`` all the same). Blocks for 64 MiB and
    about a tenth of a second: services run it through ``shared.web.password_checks``,
    never on the loop."""
    try:
        return _password_hasher.verify(password_hash or dummy_password_hash(hashing), password)
    except (VerificationError, InvalidHashError):
        return False
