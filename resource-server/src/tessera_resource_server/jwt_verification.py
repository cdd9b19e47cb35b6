"""Verifying JWT access tokens locally (RFC 9068 §4), against Tessera's JWK Set
(RFC 7517 §5), following the JWT BCP (RFC 8725).

- The algorithm is on an allowlist, ES256 and RS256, the only ones Tessera signs with;
  ``none`` and every HS* are refused before any key is looked at (RFC 8725 §3.1, §2.1:
  HS256 "signed" with a public key as the secret).
- The key is picked by ``kid`` from Tessera's JWK Set only, and the token's ``alg`` must
  be the key's own, so no token chooses how it is checked.
- ``typ`` is ``at+jwt`` (RFC 9068 §4, RFC 8725 §3.11), ``iss`` the issuer, ``aud`` this
  resource server's audience, ``exp`` and ``nbf`` with a small leeway.

The JWK Set is fetched with the application's aiohttp session (never pyjwt's blocking
PyJWKClient), parsed with ``jwt.PyJWK``, kept ``jwks_cache_seconds``, and refetched
early when a token names a kid it lacks (a key rotated in, see shared.signing_keys),
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
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from shared.jwt_access_tokens import (
    ACCEPTED_TYPS,
    MAX_TOKEN_LENGTH,
    VERIFY_CLAIMS,
    looks_like_jwt,
)
from shared.signing_keys import MIN_RSA_BITS

from tessera_resource_server.access_token import AccessToken, MalformedClaims
from tessera_resource_server.challenges import BearerError, TesseraUnavailable, invalid_token
from tessera_resource_server.introspection_client import call_tessera

log = logging.getLogger("tessera.resource_server")

# RFC 8725 §3.1: the algorithms this server accepts, and the key type each must have.
ALLOWED_ALGORITHMS = {"ES256": "EC", "RS256": "RSA"}


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    alg: str
    key: Any  # the cryptography public key, from jwt.PyJWK


def parse_jwks(document: dict[str, Any]) -> dict[str, VerificationKey]:
    """The usable keys of a JWK Set, by kid. A key that is not for signatures, names
    another algorithm, is malformed or too weak is skipped with a log line."""
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
        usable = ALLOWED_ALGORITHMS.get(alg) == jwk.get("kty") and (
            alg != "ES256" or jwk.get("crv") == "P-256"  # RFC 7518 §3.4
        )
        if jwk.get("use", "sig") != "sig" or not usable:
            log.warning("JWK Set: key %.80r (%.20r) is not an allowed signing key", kid, alg)
            continue
        try:
            parsed = jwt.PyJWK(jwk, algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWK Set: key %.80r cannot be read: %s", kid, type(exc).__name__)
            continue
        if alg == "RS256" and parsed.key.key_size < MIN_RSA_BITS:  # RFC 7518 §3.3
            log.warning("JWK Set: RSA key %.80r is shorter than %d bits", kid, MIN_RSA_BITS)
            continue
        keys[kid] = VerificationKey(kid, alg, parsed.key)
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
    if len(token) > MAX_TOKEN_LENGTH or not looks_like_jwt(token):
        raise invalid_token("not a compact JWS")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, RecursionError) as exc:
        raise invalid_token(f"malformed JWT header: {type(exc).__name__}") from None
    alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
    # Checked before the key is looked up, so a forgery costs no JWK Set fetch.
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise invalid_token(f"alg {alg!r:.20} is not allowed (RFC 8725 §3.1)")
    if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPS:
        raise invalid_token(f"typ {typ!r:.40} is not at+jwt (RFC 9068 §4)")
    if not isinstance(kid, str) or not kid:
        raise invalid_token("no kid")
    key = await keys.key_for(session, kid)
    if key is None:
        raise invalid_token(f"unknown kid {kid!r:.80}")
    if key.alg != alg:
        raise invalid_token(f"alg {alg} is not the key's {key.alg} (RFC 8725 §2.1)")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.alg],
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            options={"require": list(VERIFY_CLAIMS)},
        )
        return AccessToken.from_claims(claims, "jwt")
    except (jwt.PyJWTError, MalformedClaims, ValueError, TypeError, RecursionError) as exc:
        # pyjwt's messages name the check and the claim, never the token.
        raise _refused(f"{type(exc).__name__}: {exc}", kid) from None


def _refused(reason: str, kid: str) -> BearerError:
    return invalid_token(f"JWT refused: {reason} (kid {kid:.80})")
