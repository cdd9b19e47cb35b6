"""Keys and tokens for the library's own tests, made with pyjwt and cryptography: the
tests need nothing of Tessera's server, whose JWT access tokens these are shaped like
(RFC 9068 §2)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tessera_resource_server.jwt_verification import PublicKey, VerificationKey

ISSUER = "https://id.example.com"
AUDIENCE = "https://api.example.com"


@dataclass(frozen=True)
class Signer:
    """A signing key as an authorization server holds it, and its public JWK."""

    kid: str
    alg: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    @property
    def verification_key(self) -> VerificationKey:
        return VerificationKey(self.kid, self.alg, self.public_key)

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public: dict[str, Any] = algorithm.to_jwk(self.public_key, as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """An access token signed with this key, ``typ`` and ``kid`` as given."""
        headers = {"typ": "at+jwt", "kid": self.kid, **header}
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=headers)

    def sign_as_is(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        """A token with exactly this header, validly signed: for headers pyjwt refuses
        to write."""
        signing_input = f"{segment(header)}.{segment(claims)}"
        algorithm = jwt.get_algorithm_by_name(self.alg)
        signature = algorithm.sign(signing_input.encode(), self.private_key)
        return f"{signing_input}.{b64url(signature)}"


def access_claims(**changes: Any) -> dict[str, Any]:
    """The claims of an RFC 9068 access token; a change to None drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": "9f1c2d3e4b5a",
        "client_id": "c0ffee",
        "scope": "notes:read",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: object) -> str:
    """A JWS header or payload segment (RFC 7515 §7.1) holding ``value`` as JSON."""
    return b64url(json.dumps(value).encode())
