"""Keyed fingerprints: how a log line names a value a caller sent that may be a credential.

The cause of a refusal goes to the log, never a credential, even a misplaced one
(DESIGN). A value that did not turn out to name something Tessera knows (a client secret
sent as ``client_id``, a password typed as the username, a token pasted into the URL) is
logged as its fingerprint: ``fp:`` and 12 characters (72 bits) of the base64url
HMAC-SHA256 of the value. Client ids, usernames and scope names that a lookup found are
logged as they are.

- Keyed, so that a reader of the logs cannot test guesses against a fingerprint: an
  unkeyed digest of a short password is found by hashing a dictionary.
- The same on every replica and after restarts, so an operator can see one bad value
  arriving from many addresses. The key is 32 random bytes kept in Redis
  (``shared.storage.log_fingerprint_key``, no TTL): the first service to start makes it (SET NX),
  and every service reads it at start-up into memory. A fingerprint then costs one HMAC,
  a few microseconds, and never a Redis round trip. A setting could hold the key too,
  but would be one more secret for operators to make and keep the same everywhere;
  whoever can read Redis can read far more than this key.
- While Redis cannot be read at start-up a process uses a random key of its own, and
  says so with the prefix ``fp-local:`` (such a fingerprint matches no other process's).
  It keeps trying in the background and takes the shared key once Redis answers.

The same key signs what one replica issues and another checks (``shared_mac``: the
sign-in page's device cookies), under a purpose label and never while the key is the
process's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Container, Iterable
from dataclasses import dataclass

PREFIX = "fp:"
LOCAL_PREFIX = "fp-local:"
KEY_BYTES = 32
# 9 bytes are 12 base64url characters without padding: plenty to tell values apart.
FINGERPRINT_BYTES = 9
# scrub() leaves shorter values alone: every credential Tessera takes is at least this
# long (a password's minimum), and replacing "1" or "GET" would make a text unreadable.
MIN_SCRUBBED_CHARS = 8


@dataclass(frozen=True, slots=True)
class _Key:
    secret: bytes
    prefix: str


# This process's key: its own random one until the shared one is read from Redis.
_key = _Key(secrets.token_bytes(KEY_BYTES), LOCAL_PREFIX)


def with_key(key: bytes, value: str, prefix: str = PREFIX) -> str:
    """The fingerprint of ``value`` under ``key``."""
    # surrogatepass: a fingerprint never fails, whatever a decoder let through.
    mac = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return prefix + base64.urlsafe_b64encode(mac[:FINGERPRINT_BYTES]).decode()


def shared_mac(purpose: str, message: str) -> bytes | None:
    """HMAC-SHA256 of ``message`` for ``purpose`` under the key every process shares;
    None while this process has only its own (a value it signed would be refused by
    every other replica, and one they signed by it)."""
    key = _key
    if key.prefix == LOCAL_PREFIX:
        return None
    # 0xFF never occurs in UTF-8: no value fingerprinted (anything anyone sends, in the
    # logs by its fingerprint) is ever a message signed here, so no fingerprint gives
    # away part of a MAC.
    signed = b"\xff" + purpose.encode() + b"\x00" + message.encode()
    return hmac.new(key.secret, signed, hashlib.sha256).digest()


def of(value: str) -> str:
    """The fingerprint of ``value`` under this process's key."""
    key = _key
    return with_key(key.secret, value, key.prefix)


def shown(value: str, known: Container[str]) -> str:
    """``value`` itself when it is one of ``known`` (a word of the protocol, a name that
    exists), else its fingerprint."""
    return value if value in known else of(value)


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of each of ``values`` (of at least
    MIN_SCRUBBED_CHARS) replaced by its fingerprint."""
    for value in sorted(set(values), key=len, reverse=True):  # a longer value first
        if len(value) >= MIN_SCRUBBED_CHARS and value in text:
            text = text.replace(value, of(value))
    return text


def use_shared_key(secret: bytes) -> None:
    """From now on, fingerprint under the key every process shares (read from Redis by
    ``shared.web.log_fingerprints``)."""
    global _key
    _key = _Key(secret, PREFIX)
