"""Verifying JWT access tokens (RFC 9068 §4), following the JWT BCP (RFC 8725): the one
verifier, used by resource servers against Tessera's JWK Set (``jwks``) and by Tessera
itself against its own keys (introspection, revocation).

- The algorithm is on an allowlist, ES256 and RS256, the only ones Tessera signs with;
  ``none`` and every HS* are refused before any key is looked at (RFC 8725 §3.1, §2.1:
  HS256 "signed" with a public key as the secret).
- ``typ`` is ``at+jwt`` (RFC 9068 §4, RFC 8725 §3.11).
- The key is picked by ``kid`` from the verifier's own keys only, and the token's ``alg``
  must be the key's own, so no token chooses how it is checked.
- ``iss`` is the issuer, ``aud`` the audience (when one is asked for), ``exp`` and
  ``nbf`` hold with a leeway, and the claims RFC 9068 §2.2 requires are present.

Two steps, so that finding the key may be a fetch (a resource server's JWK Set) or a
lookup in memory (Tessera's key set): ``read_header`` checks all that needs no key,
``verify_with`` the signature and the claims with the key found; ``verify`` does both
with keys held in memory.

Other kinds of JWT that Tessera signs with the same keys (ID tokens, whose ``typ`` is
``JWT``) are checked by the same code with another ``JwtKind``: explicit typing
(RFC 8725 §3.11) keeps one kind from passing for another.

A refusal is ``JwtRefused``, whose reason names the check for the log, never the token.
A header value the sender chose (a kid, an alg or typ that is no word of the protocol)
appears in it only as ``shown`` renders it: Tessera logs a fingerprint of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

PublicKey: TypeAlias = EllipticCurvePublicKey | RSAPublicKey
# How a header value the sender chose goes into a reason.
Shown: TypeAlias = Callable[[object], str]

# RFC 8725 §3.1: the algorithms accepted, and the key type (RFC 7518 §6.1) each needs.
ALLOWED_ALGORITHMS = {"ES256": "EC", "RS256": "RSA"}
MIN_RSA_BITS = 2048  # RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used"
# RFC 9068 §4: "at+jwt" or its full media type; media types compare case-insensitively
# (RFC 7515 §4.1.9).
ACCEPTED_TYPS = frozenset({"at+jwt", "application/at+jwt"})
# What a token must carry to be accepted: the REQUIRED claims of RFC 9068 §2.2.
VERIFY_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


@dataclass(frozen=True, slots=True)
class JwtKind:
    """What sets one kind of JWT apart: its ``typ`` values (lower case), the claims it
    must carry, and whether it is refused once expired."""

    name: str
    typs: frozenset[str]
    required: tuple[str, ...]
    verify_exp: bool = True


ACCESS_TOKEN = JwtKind("at+jwt (RFC 9068 §4)", ACCEPTED_TYPS, VERIFY_CLAIMS)

# Far above any token Tessera issues (an RS256 signature of 4096 bits is 683 characters),
# and small enough that nothing is decoded from a huge input.
MAX_TOKEN_LENGTH = 8192

# The "alg" and "typ" values a reason names as they are (RFC 7518 §3.1, RFC 9068 §4).
KNOWN_ALGS = frozenset(jwt.algorithms.get_default_algorithms())
KNOWN_TYPS = ACCEPTED_TYPS | {"jwt", "application/jwt"}

# Compact JWS (RFC 7515 §7.1): three base64url segments. The signature segment may be
# empty (an unsecured JWT, RFC 7519 §6): still a JWT, so the verifier gets to refuse it.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key that verifies tokens of one algorithm. Made only as RFC 8725 §3.1 and
    RFC 7518 allow: an allowed alg, the key type it needs (§6.1; the P-256 curve for
    ES256, §3.4), an RSA key of at least MIN_RSA_BITS (§3.3); else ValueError."""

    kid: str
    alg: str
    key: PublicKey

    def __post_init__(self) -> None:
        key = self.key
        if self.alg == "ES256":
            if not isinstance(key, EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ValueError(f"key {self.kid!r}: ES256 needs a P-256 key")
        elif self.alg == "RS256":
            if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
                raise ValueError(
                    f"key {self.kid!r}: RS256 needs an RSA key of {MIN_RSA_BITS}+ bits"
                )
        else:
            raise ValueError(f"key {self.kid!r}: alg {self.alg!r} is not allowed")


@dataclass(frozen=True, slots=True)
class JwtHeader:
    """The header members that decide how a token is checked, as ``read_header`` found
    them acceptable."""

    alg: str
    kid: str


class JwtRefused(Exception):
    """The token is no valid access token. ``reason`` names the check that failed;
    ``kid`` is the kid of the key that checked it (one of the verifier's, public), if
    it got that far; ``malformed``: the value is not a JWT at all."""

    def __init__(self, reason: str, *, kid: str | None = None, malformed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kid = kid
        self.malformed = malformed


def as_sent(value: object) -> str:
    """A header value as the sender wrote it, cut short (the default ``shown``)."""
    return f"{value!r:.80}"


def looks_like_jwt(token: str) -> bool:
    """Whether the value has the shape of a JWT rather than of an opaque Tessera token
    (``<family>.<secret>``: two segments, one dot). Says nothing about validity."""
    return _COMPACT_JWS.fullmatch(token) is not None


def read_header(token: str, *, shown: Shown = as_sent, kind: JwtKind = ACCESS_TOKEN) -> JwtHeader:
    """The token's ``alg`` and ``kid`` when its shape, algorithm and type are acceptable,
    checked before any key is looked up, so that a forgery costs no key fetch."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise JwtRefused("not a string, or too long", malformed=True)
    if not looks_like_jwt(token):
        raise JwtRefused("not a compact JWS", malformed=True)
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, RecursionError) as exc:
        # pyjwt 2.8 lets a deeply nested header escape as RecursionError.
        raise JwtRefused(f"malformed header: {type(exc).__name__}", malformed=True) from None
    alg, typ, kid = header.get("alg"), header.get("typ"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise JwtRefused(f"alg {_named(alg, KNOWN_ALGS, shown)} is not allowed (RFC 8725 §3.1)")
    if not isinstance(typ, str) or typ.lower() not in kind.typs:
        named = _named(typ.lower() if isinstance(typ, str) else typ, KNOWN_TYPS, shown)
        raise JwtRefused(f"typ {named} is not {kind.name}")
    if not isinstance(kid, str) or not kid:
        raise JwtRefused("no kid")
    return JwtHeader(alg=alg, kid=kid)


def verify_with(
    token: str,
    header: JwtHeader,
    key: VerificationKey | None,
    *,
    issuer: str,
    audience: str | None,
    leeway: float,
    shown: Shown = as_sent,
    kind: JwtKind = ACCESS_TOKEN,
) -> dict[str, Any]:
    """The claims of the token that ``read_header`` accepted, checked with ``key``, the
    verifier's key named by its kid (None: no such key)."""
    if key is None:
        raise JwtRefused(f"unknown kid {shown(header.kid)}")
    if header.alg != key.alg:
        raise JwtRefused(
            f"alg {header.alg} is not the key's {key.alg} (RFC 8725 §2.1)", kid=key.kid
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.alg],
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            options={
                "require": list(kind.required),
                "verify_aud": audience is not None,
                "verify_exp": kind.verify_exp,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        # Whatever a bad token makes pyjwt raise is a refusal, never a server error. Its
        # messages name the check and the claim, never the token.
        raise JwtRefused(f"{type(exc).__name__}: {exc}", kid=key.kid) from None
    return claims


def verify(
    token: str,
    keys: Mapping[str, VerificationKey],
    *,
    issuer: str,
    audience: str | None = None,
    leeway: float = 0,
    shown: Shown = as_sent,
    kind: JwtKind = ACCESS_TOKEN,
) -> dict[str, Any]:
    """The claims of a valid token of ``kind`` (an access token unless told) signed by
    one of ``keys`` (by kid) and issued by ``issuer``, else JwtRefused. ``audience``,
    when given, must be among its ``aud``."""
    try:
        header = read_header(token, shown=shown, kind=kind)
    except JwtRefused as refused:
        if refused.malformed:
            raise
        # A forgery aimed at one of our keys (another alg, another typ) names the key it
        # targets: worth a log reader's knowing.
        raise JwtRefused(refused.reason, kid=_our_kid(token, keys)) from None
    return verify_with(
        token,
        header,
        keys.get(header.kid),
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        shown=shown,
        kind=kind,
    )


def _our_kid(token: str, keys: Mapping[str, VerificationKey]) -> str | None:
    """The header's kid when it names one of ``keys`` (public), else None."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.PyJWTError, ValueError, RecursionError):
        return None
    return kid if isinstance(kid, str) and kid in keys else None


def _named(value: object, known: frozenset[str], shown: Shown) -> str:
    return repr(value) if isinstance(value, str) and value in known else shown(value)
