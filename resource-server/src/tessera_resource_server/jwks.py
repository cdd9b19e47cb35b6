"""Tessera's JWK Set (RFC 7517 §5), fetched and kept, and JWT access tokens verified
against it locally (RFC 9068 §4, with ``jwt_verification``).

The JWK Set is fetched with the application's aiohttp session (never pyjwt's blocking
PyJWKClient), parsed with ``jwt.PyJWK``, kept ``jwks_cache_seconds``, and refetched
early when a token names a kid it lacks (a key rotated in, see Tessera's signing keys),
but at most every ``jwks_min_refresh_seconds``: made-up kids do not reach /jwks.json.

A kid is "unknown" (401) only when the last fetch succeeded without it. While no fetch has
ever succeeded, or after the fetch that should have found the kid failed, nothing says
whether the kid is Tessera's, so the answer is TesseraUnavailable (503, not a refusal of
a token that may be valid), until a later fetch, still rate-limited, succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tessera_resource_server.access_token import AccessToken, MalformedClaims
from tessera_resource_server.challenges import BearerError, TesseraUnavailable, invalid_token
from tessera_resource_server.introspection_client import call_tessera
from tessera_resource_server.jwt_verification import (
    ALLOWED_ALGORITHMS,
    MIN_RSA_BITS,
    JwtRefused,
    PublicKey,
    VerificationKey,
    read_header,
    verify_with,
)

log = logging.getLogger("tessera.resource_server")


def parse_jwks(document: dict[str, Any]) -> dict[str, VerificationKey]:
    """The usable keys of a JWK Set, by kid. A key that is not for signatures, names
    another algorithm, is malformed, too weak or not a public key is skipped with a log
    line."""
    keys: dict[str, VerificationKey] = {}
    members = document.get("keys")
    if not isinstance(members, list):
        return keys
    for jwk in members:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            log.warning("JWK Set: a key without a kid is skipped")
            continue
        kid = jwk["kid"]
        alg = jwk.get("alg") or _algorithm_of(jwk)
        if (
            jwk.get("use", "sig") != "sig"
            or not isinstance(alg, str)
            or ALLOWED_ALGORITHMS.get(alg) != jwk.get("kty")
            or (alg == "ES256" and jwk.get("crv") != "P-256")  # RFC 7518 §3.4
        ):
            log.warning("JWK Set: key %.80r (%.20r) is not an allowed signing key", kid, alg)
            continue
        try:
            parsed = jwt.PyJWK(jwk, algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWK Set: key %.80r cannot be read: %s", kid, type(exc).__name__)
            continue
        key = parsed.key
        if not isinstance(key, PublicKey):
            # RFC 7517 §5: a JWK Set for verifiers holds public keys only.
            log.warning("JWK Set: key %.80r is not a public key", kid)
            continue
        if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:  # RFC 7518 §3.3
            log.warning("JWK Set: RSA key %.80r is shorter than %d bits", kid, MIN_RSA_BITS)
            continue
        keys[kid] = VerificationKey(kid, alg, key)
    return keys


def _algorithm_of(jwk: dict[str, Any]) -> str | None:
    # RFC 7517 §4.4: "alg" is optional; Tessera always sets it, others may not.
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        return "ES256"
    if jwk.get("kty") == "RSA":
        return "RS256"
    return None


class JwksKeys:
    """Tessera's verification keys, fetched on demand and refreshed as described above."""

    def __init__(self, url: str, cache_seconds: float, min_refresh_seconds: float) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.keys: dict[str, VerificationKey] = {}
        self.fetches = 0
        self._fetched_at: float | None = None  # monotonic time of the last attempt
        self._loaded = False
        # Why the last attempt failed; None once one succeeds. While it is set, the keys
        # held (none, before the first success) may lack a key that Tessera publishes.
        self._failure: str | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, session: aiohttp.ClientSession, kid: str) -> VerificationKey | None:
        """The key named ``kid``; None when the last fetch of the JWK Set succeeded without
        it. TesseraUnavailable when it is not held and that fetch failed."""
        if self._due(kid):
            async with self._lock:
                # Another request may have refreshed while this one waited.
                if self._due(kid):
                    await self._refresh(session)
        key = self.keys.get(kid)
        if key is None and self._failure is not None:
            # The kid may be one rotated in since the keys held were fetched (or nothing
            # was ever fetched): 503, as RFC 6750 §3.1's invalid_token would blame a token
            # that may be valid. The retry stays rate-limited by _due, so forged kids still
            # cost at most one fetch per min_refresh_seconds.
            raise TesseraUnavailable(f"{self._failure} (kid {kid!r:.80} not among the keys held)")
        return key

    def _due(self, kid: str) -> bool:
        if self._fetched_at is None:
            return True
        age = time.monotonic() - self._fetched_at
        if age >= self.cache_seconds:
            return True
        return kid not in self.keys and age >= self.min_refresh_seconds

    async def _refresh(self, session: aiohttp.ClientSession) -> None:
        # Set before the attempt, failed or not: a failing /jwks.json is not asked again
        # within min_refresh_seconds, however many tokens arrive.
        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            # The JWK Set is public (RFC 9068 §4): no credentials.
            document = await call_tessera(session, "GET", self.url, authorization=None)
        except TesseraUnavailable as exc:
            self._failure = exc.cause
            if self._loaded:
                log.warning("JWK Set not refreshed, keeping the one fetched before: %s", exc.cause)
            return
        self.keys = parse_jwks(document)
        self._loaded = True
        self._failure = None
        log.info("JWK Set fetched from %s: %d key(s)", self.url, len(self.keys))


async def verify_jwt(
    session: aiohttp.ClientSession,
    keys: JwksKeys,
    token: str,
    *,
    issuer: str,
    audience: str,
    leeway: int,
) -> AccessToken:
    """The verified token, or BearerError invalid_token with the reason as its cause."""
    try:
        header = read_header(token)
        key = await keys.key_for(session, header.kid)
        claims = verify_with(token, header, key, issuer=issuer, audience=audience, leeway=leeway)
    except JwtRefused as exc:
        raise _refused(exc.reason, exc.kid) from None
    try:
        return AccessToken.from_claims(claims, "jwt")
    except MalformedClaims as exc:
        raise _refused(f"malformed claim {exc}", header.kid) from None


def _refused(reason: str, kid: str | None) -> BearerError:
    return invalid_token(f"JWT refused: {reason}" + (f" (kid {kid:.80})" if kid else ""))
