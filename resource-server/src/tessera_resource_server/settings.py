"""What a resource server needs to know about Tessera, read once and validated at start.

Two ways to check a token, usable together: introspection (RFC 7662 §2), which needs the
resource server's own client credentials (a confidential client registered with
``--introspect``), and local verification of JWT access tokens (RFC 9068 §4) against
Tessera's JWK Set. With both configured, a JWT is verified locally and an opaque token
introspected; ``introspect_jwts`` introspects JWTs too, so that a revoked JWT is refused
at once rather than when it expires.

``audience`` is checked on JWTs only (RFC 9068 §4, with or without ``introspect_jwts``).
Tessera's introspection answers carry no ``aud`` (optional in RFC 7662 §2.2), so an
opaque token is accepted by every resource server that introspects it, whatever its
audience: what keeps one API's opaque tokens out of another is their scopes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import urljoin, urlsplit

# The resource server's own settings; not Tessera's TESSERA_* (its services never read them).
ENV_PREFIX = "RESOURCE_SERVER_"


@dataclass(frozen=True, slots=True)
class ResourceServerSettings:
    # Tessera's issuer (RFC 8414 §2): the "iss" of its JWTs and introspection answers.
    issuer: str
    # Tessera's POST /introspect; None: only JWTs are accepted (verified locally).
    introspection_endpoint: str | None = None
    # This resource server's client credentials, sent as client_secret_basic.
    client_id: str = ""
    client_secret: str = ""
    # Tessera's /jwks.json; None: every token is introspected, JWTs included.
    jwks_uri: str | None = None
    # The "aud" a JWT must carry (RFC 9068 §4); None: the issuer, Tessera's default
    # (TESSERA_ACCESS_TOKEN_AUDIENCE). JWTs only: introspection answers carry no "aud"
    # (RFC 7662 §2.2), so opaque tokens are not held to it (see the module docstring).
    audience: str | None = None
    # Introspect JWTs as well as verifying them, so revocation counts at once.
    introspect_jwts: bool = False
    # The realm of the WWW-Authenticate challenge (RFC 6750 §3).
    realm: str = "api"
    # How long an active introspection answer is reused, at most (never past the token's
    # exp); 0: introspect every request. A revoked token stays usable this long here.
    cache_seconds: float = 30
    cache_size: int = 10_000
    # Clock skew allowed on exp, nbf and iat (RFC 7519 §4.1.4).
    leeway_seconds: int = 30
    # A fetched JWK Set is reused this long (Tessera's /jwks.json says max-age=300) ...
    jwks_cache_seconds: float = 300
    # ... and a token naming an unknown kid refetches it at most this often, so tokens
    # with made-up kids cannot turn this server into a flood on /jwks.json.
    jwks_min_refresh_seconds: float = 30
    # Enforce the resources that Tessera's scope definitions list (see scope_rules).
    enforce_scope_resources: bool = False
    # Only scopes whose name starts with this count for that mapping: scope names are
    # global in Tessera, and another API's scope may list the same path, which would then
    # admit that API's tokens here. Set it with enforcement on ("" logs a warning).
    scope_prefix: str = ""
    # Tessera's GET /scopes; None: beside the introspection endpoint.
    scopes_endpoint: str | None = None
    scopes_refresh_seconds: float = 60
    # Each call to Tessera, in seconds.
    timeout_seconds: float = 5

    def __post_init__(self) -> None:
        _require_url("issuer", self.issuer)
        for name in ("introspection_endpoint", "jwks_uri", "scopes_endpoint"):
            if getattr(self, name) is not None:
                _require_url(name, getattr(self, name))
        if self.introspection_endpoint is None and self.jwks_uri is None:
            raise ValueError("set introspection_endpoint, jwks_uri, or both")
        calls_tessera = self.introspection_endpoint is not None or self.enforce_scope_resources
        if calls_tessera and not (self.client_id and self.client_secret):
            raise ValueError(
                "client_id and client_secret are required to call Tessera (a confidential "
                "client registered with --introspect)"
            )
        if self.introspect_jwts and (self.introspection_endpoint is None or not self.jwks_uri):
            raise ValueError("introspect_jwts needs introspection_endpoint and jwks_uri")
        if self.enforce_scope_resources and self.scope_definitions_url is None:
            raise ValueError("enforce_scope_resources needs scopes_endpoint or an endpoint")
        if self.cache_seconds < 0 or self.cache_size < 1:
            raise ValueError("cache_seconds must be 0 or more and cache_size at least 1")
        if not 0 <= self.leeway_seconds <= 300:
            raise ValueError("leeway_seconds must be between 0 and 300")
        if self.timeout_seconds <= 0 or self.scopes_refresh_seconds <= 0:
            raise ValueError("timeout_seconds and scopes_refresh_seconds must be positive")
        # 0 or less would refetch the JWK Set for every token naming a kid it lacks, and
        # the kid is the sender's to choose (RFC 8725 §3.10): a flood on /jwks.json. The
        # comparisons are written so that NaN, false whatever it is compared with, fails.
        if not self.jwks_cache_seconds > 0:
            raise ValueError(
                f"jwks_cache_seconds must be more than 0, not {self.jwks_cache_seconds}"
            )
        if not self.jwks_min_refresh_seconds > 0:
            raise ValueError(
                f"jwks_min_refresh_seconds must be more than 0, not "
                f"{self.jwks_min_refresh_seconds}: it limits how often tokens naming unknown "
                "kids refetch the JWK Set"
            )
        if self.jwks_min_refresh_seconds > self.jwks_cache_seconds:
            raise ValueError(
                f"jwks_min_refresh_seconds ({self.jwks_min_refresh_seconds}) must be at most "
                f"jwks_cache_seconds ({self.jwks_cache_seconds})"
            )
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm must not contain a quote or a backslash (RFC 7235 §2.2)")

    @property
    def expected_audience(self) -> str:
        return self.audience or self.issuer

    @property
    def scope_definitions_url(self) -> str | None:
        if self.scopes_endpoint is not None:
            return self.scopes_endpoint
        if self.introspection_endpoint is None:
            return None
        # Same origin and directory as /introspect: "http://tessera-introspect/scopes".
        return urljoin(self.introspection_endpoint, "scopes")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
    ) -> ResourceServerSettings:
        """``RESOURCE_SERVER_ISSUER``, ``RESOURCE_SERVER_INTROSPECTION_ENDPOINT``, ... : one
        variable per field, upper-cased, after ``prefix``. ValueError names a bad one."""
        source = os.environ if env is None else env
        values: dict[str, object] = {}
        for spec in fields(cls):
            # The annotation, a string here ("float", "str | None"), says how to read it.
            name, kind = spec.name, str(spec.type).split(" | ")[0]
            raw = source.get(prefix + name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = _convert(raw, kind)
            except ValueError:
                raise ValueError(f"{prefix}{name.upper()}: not a valid {kind}: {raw!r}") from None
        if "issuer" not in values:
            raise ValueError(f"{prefix}ISSUER is required")
        return cls(**values)  # type: ignore[arg-type]


def _convert(raw: str, kind: str) -> object:
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def _require_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, not {value!r}")
