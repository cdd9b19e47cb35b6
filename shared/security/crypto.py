"""Random values, hashes of stored secrets, and argon2id for user passwords.

DESIGN: never store a secret in clear. Codes, tokens, session ids and client secrets are
high-entropy random values, so one SHA-256 is enough to make a leaked store useless;
user passwords are low-entropy and get argon2id, checked in a thread
(``shared.web.password_checks``) so the event loop never blocks on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_password_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory: 64 MiB, 3 passes


# Verified against when the user does not exist, so a wrong username costs what a wrong
# password costs and the response time does not tell them apart. A hash of a random
# password nobody kept, made once with the hasher's parameters (a test checks they still
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


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches its argon2id hash (None: a user that does not exist,
    checked against the dummy hash all the same). Blocks for 64 MiB and about a tenth of
    a second: services run it through ``shared.web.password_checks``, never on the loop."""
    try:
        return _password_hasher.verify(password_hash or DUMMY_PASSWORD_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
