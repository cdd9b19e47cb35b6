"""JWT access tokens (RFC 9068): signed at the token endpoint, verified at introspection.

A token is a JWS (RFC 7515) signed with the key set's signing key, with the header
``typ: at+jwt`` (RFC 9068 §2.1) and the claims of RFC 9068 §2.2. It is verified against
our own key set only, by the one JWT verifier (RFC 9068 §4 and the JWT BCP, RFC 8725),
which the resource-server library holds: ``tessera_resource_server.jwt_verification``.

Why a token was refused goes to the log, never the token; header values that name no key,
algorithm or type Tessera knows show there as fingerprints (``shared.security.fingerprint``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import jwt
from tessera_resource_server import jwt_verification
from tessera_resource_server.jwt_verification import (
    MAX_TOKEN_LENGTH,
    JwtRefused,
    looks_like_jwt,
)

from shared.security import fingerprint
from shared.security.signing_keys import KeySet

log = logging.getLogger("tessera.jwt")

TYP = "at+jwt"
# What the token endpoint must put in every token: RFC 9068 §2.2, and scope (§2.2.3)
# because Tessera always grants a scope.
SIGN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")


def sign(key_set: KeySet, claims: Mapping[str, Any]) -> str:
    """Sign the claims with the key set's signing key (RFC 9068 §2.1, §2.2).

    A missing claim or a scope that is not a string is a programming error: ValueError.
    """
    missing = [name for name in SIGN_CLAIMS if claims.get(name) is None]
    if missing:
        raise ValueError(f"JWT access token without {', '.join(missing)} (RFC 9068 §2.2)")
    if not isinstance(claims["scope"], str):
        raise ValueError("scope must be a space-separated string (RFC 9068 §2.2.3)")
    key = key_set.signing
    return jwt.encode(
        dict(claims),
        key.private_key,
        algorithm=key.alg,
        headers={"typ": TYP, "kid": key.kid},
    )


def verify(
    key_set: KeySet,
    token: str,
    *,
    issuer: str,
    audience: str | None = None,
    leeway: int = 0,
) -> dict[str, Any] | None:
    """The token's claims when it is a valid access token issued by ``issuer``, else None.

    ``audience``, when given, must be among the token's ``aud`` (RFC 9068 §4). Never
    raises for a malformed token; why one was refused goes to the log.
    """
    try:
        return jwt_verification.verify(
            token,
            key_set.verification_keys,
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            shown=_fingerprinted,
        )
    except JwtRefused as refused:
        # Only the reason and the kid of one of our keys (public) are logged: a token is
        # a bearer credential (RFC 6750 §5.3) and never goes to a log.
        level = logging.DEBUG if refused.malformed else logging.INFO
        log.log(level, "JWT access token refused: %s (kid %r)", refused.reason, refused.kid)
        return None


def _fingerprinted(value: object) -> str:
    # A kid, alg or typ that names nothing of ours may be anything, a credential pasted
    # in the wrong place included.
    return fingerprint.of(str(value))


def unverified_jti(token: str) -> str | None:
    """The ``jti`` of a JWT without checking its signature: only for an administrator
    naming a token to revoke, where a forgery can do nothing but revoke what it names."""
    if len(token) > MAX_TOKEN_LENGTH or not looks_like_jwt(token):
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        return None
    jti = claims.get("jti")
    return jti if isinstance(jti, str) else None
