"""OpenID Connect's JWTs: ID tokens (Core §2) and logout tokens (Back-Channel Logout 1.0
§2.4), signed with the key set that signs JWT access tokens and published at ``jwks_uri``.

Each kind has a ``typ`` of its own (RFC 8725 §3.11): ``JWT`` for ID tokens, as most
OpenID Providers send, ``logout+jwt`` for logout tokens (§2.4), ``at+jwt`` for access
tokens. Tessera's verifier checks it, so no kind passes for another: an ID token is never
accepted as an access token, nor an access token as an ``id_token_hint``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.utils import base64url_encode
from tessera_resource_server import jwt_verification
from tessera_resource_server.jwt_verification import JwtKind, JwtRefused

from shared.security import fingerprint
from shared.security.signing_keys import KeySet

log = logging.getLogger("tessera.jwt")

ID_TOKEN_TYP = "JWT"  # noqa: S105 - a header value, no secret
LOGOUT_TOKEN_TYP = "logout+jwt"  # noqa: S105 - a header value
# Core §2: what every ID token carries; Back-Channel Logout 1.0 §2.4 for logout tokens.
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat")
LOGOUT_TOKEN_CLAIMS = ("iss", "aud", "iat", "exp", "jti", "events")

# An id_token_hint (Core §3.1.2.1, RP-Initiated Logout 1.0 §2) is one of our ID tokens,
# expired or not: the RP may hold it long after it expired.
ID_TOKEN_HINT = JwtKind(
    "JWT (an ID token)",
    frozenset({"jwt", "application/jwt"}),
    ("iss", "sub", "aud", "iat"),
    verify_exp=False,
)
LOGOUT_TOKEN = JwtKind(
    "logout+jwt (Back-Channel Logout 1.0 §2.4)",
    frozenset({"logout+jwt", "application/logout+jwt"}),
    LOGOUT_TOKEN_CLAIMS,
)

# Core §3.1.3.6: at_hash uses the hash of the signing algorithm.
_HASHES = {"ES256": hashlib.sha256, "RS256": hashlib.sha256}


def _sign(key_set: KeySet, claims: Mapping[str, Any], typ: str, required: tuple[str, ...]) -> str:
    missing = [name for name in required if claims.get(name) is None]
    if missing:
        raise ValueError(f"{typ} token without {', '.join(missing)}")
    key = key_set.signing
    return jwt.encode(
        dict(claims), key.private_key, algorithm=key.alg, headers={"typ": typ, "kid": key.kid}
    )


def sign_id_token(key_set: KeySet, claims: Mapping[str, Any]) -> str:
    """An ID token of ``claims`` (Core §2), signed with the key set's signing key."""
    return _sign(key_set, claims, ID_TOKEN_TYP, ID_TOKEN_CLAIMS)


def sign_logout_token(key_set: KeySet, claims: Mapping[str, Any]) -> str:
    """A logout token (Back-Channel Logout 1.0 §2.4). It never carries a nonce (§2.4)."""
    if "nonce" in claims:
        raise ValueError("a logout token must not carry a nonce (Back-Channel Logout §2.4)")
    return _sign(key_set, claims, LOGOUT_TOKEN_TYP, LOGOUT_TOKEN_CLAIMS)


def token_hash(key_set: KeySet, value: str) -> str:
    """``at_hash`` of an access token (Core §3.1.3.6): the left half of the hash of its
    ASCII octets, with the hash of the signing key's algorithm, base64url encoded."""
    digest = _HASHES[key_set.signing.alg](value.encode("ascii")).digest()
    return base64url_encode(digest[: len(digest) // 2]).decode("ascii")


def read_hint(key_set: KeySet, token: str, *, issuer: str) -> dict[str, Any] | None:
    """The claims of an ID token Tessera signed and issued as ``issuer``, expired or not;
    None for anything else, with the reason in the log (never the token)."""
    try:
        return jwt_verification.verify(
            token,
            key_set.verification_keys,
            issuer=issuer,
            kind=ID_TOKEN_HINT,
            shown=lambda value: fingerprint.of(str(value)),
        )
    except JwtRefused as refused:
        log.info("id_token_hint refused: %s (kid %r)", refused.reason, refused.kid)
        return None
