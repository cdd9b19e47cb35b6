"""JWT access tokens (RFC 9068): signed at the token endpoint, verified at introspection.

A token is a JWS (RFC 7515) signed with the key set's signing key, with the header
``typ: at+jwt`` (RFC 9068 §2.1) and the claims of RFC 9068 §2.2. Verification follows
RFC 9068 §4 and the JWT BCP (RFC 8725): the key is picked by ``kid`` from our own key set
only, and the algorithm is that key's own, never the one the token names.

Why a token was refused goes to the log, never the token; header values that name no key,
algorithm or type Tessera knows show there as fingerprints (``shared.security.fingerprint``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import jwt

from shared.security import fingerprint
from shared.security.signing_keys import KeySet

log = logging.getLogger("tessera.jwt")

TYP = "at+jwt"
# RFC 9068 §4: "at+jwt" or its full media type; media types compare case-insensitively
# (RFC 7515 §4.1.9).
ACCEPTED_TYPS = frozenset({"at+jwt", "application/at+jwt"})
# What the token endpoint must put in every token: RFC 9068 §2.2, and scope (§2.2.3)
# because Tessera always grants a scope.
SIGN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")
# What a token must carry to be accepted: the REQUIRED claims of RFC 9068 §2.2.
VERIFY_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
# Far above any token we issue (an RS256 signature of 4096 bits is 683 characters), and
# small enough that nothing is decoded from a huge input.
MAX_TOKEN_LENGTH = 8192

# The "alg" and "typ" values a refusal names as they are (RFC 7518 §3.1, RFC 9068 §4).
KNOWN_ALGS = frozenset(jwt.algorithms.get_default_algorithms())
KNOWN_TYPS = ACCEPTED_TYPS | {"jwt", "application/jwt"}

# Compact JWS (RFC 7515 §7.1): three base64url segments. The signature segment may be
# empty (an unsecured JWT, RFC 7519 §6): still a JWT, so verify() gets to reject it.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_jwt(token: str) -> bool:
    """Whether the value has the shape of a JWT rather than of an opaque Tessera token
    (``<family>.<secret>``: two segments, one dot). Says nothing about validity."""
    return _COMPACT_JWS.fullmatch(token) is not None


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
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return _refused("not a string, or too long", level=logging.DEBUG)
    if not looks_like_jwt(token):
        return _refused("not a compact JWS", level=logging.DEBUG)
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, RecursionError) as exc:
        # pyjwt 2.8 lets a deeply nested header escape as RecursionError.
        return _refused(f"malformed header: {type(exc).__name__}", level=logging.DEBUG)

    kid = header.get("kid")
    if not isinstance(kid, str):
        return _refused("no kid")
    key = key_set.by_kid(kid)
    if key is None:
        return _refused(f"unknown kid {fingerprint.of(kid)}")
    # RFC 8725 §3.1: the algorithm is fixed by the key, so "none" and HS256 with the public
    # key as the HMAC secret (RFC 8725 §2.1) never reach a verifier.
    alg = header.get("alg")
    if alg != key.alg:
        return _refused(f"alg {_named(alg, KNOWN_ALGS)} is not the key's {key.alg}", kid)
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPS:
        named = _named(typ.lower() if isinstance(typ, str) else typ, KNOWN_TYPS)
        return _refused(f"typ {named} is not at+jwt (RFC 9068 §4)", kid)

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.alg],
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            options={"require": list(VERIFY_CLAIMS), "verify_aud": audience is not None},
        )
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        # Whatever a bad token makes pyjwt raise is a refusal, never a server error. Its
        # messages name the check and the claim, never the token.
        return _refused(f"{type(exc).__name__}: {exc}", kid)
    return claims


def _named(value: object, known: frozenset[str]) -> str:
    return repr(value) if isinstance(value, str) and value in known else fingerprint.of(str(value))


def _refused(reason: str, kid: str | None = None, *, level: int = logging.INFO) -> None:
    # Only the reason and the kid of one of our keys (public) are logged: a token is a
    # bearer credential (RFC 6750 §5.3) and never goes to a log.
    log.log(level, "JWT access token refused: %s (kid %r)", reason, kid)
    return None


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
