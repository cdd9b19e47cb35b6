"""Proof Key for Code Exchange (RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import re

from shared.security import crypto

METHODS = ("plain", "S256")  # RFC 7636 §4.2; plain is the default (§4.3)
# RFC 7636 §4.1 and §4.2: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
_SYNTAX = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # always fullmatch: "$" admits a final "\n"


def is_valid_challenge(challenge: str) -> bool:
    return _SYNTAX.fullmatch(challenge) is not None


def is_valid_verifier(verifier: str) -> bool:
    return _SYNTAX.fullmatch(verifier) is not None


def s256(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), RFC 7636 §4.2."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def verify(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    if not is_valid_verifier(verifier):
        return False
    computed = s256(verifier) if method == "S256" else verifier
    return crypto.same(computed, challenge)
