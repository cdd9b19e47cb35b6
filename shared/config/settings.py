"""Typed settings read once from the environment (12-factor) and validated at start.

Every variable is named ``TESSERA_*`` except ``REDIS_URL``. A bad value stops the
service with one line that names the variable and what is wrong with it.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.config import redis_urls
from shared.domain.password_hashing import RFC_9106_LOW_MEMORY, PasswordHashing
from shared.domain.rates import OFF, Rate

log = logging.getLogger("tessera.settings")


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ACCESS_TOKEN_FORMATS = ("opaque", "jwt")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AUTHORIZE_RATE = Rate(300, 60)
LOGIN_PAGE_RATE = Rate(120, 60)
CLIENT_AUTH_FAILURE_RATE = Rate(30, 60)
# Failed sign-ins (shared/web/login_throttle.py, README "Sign-in limits").
LOGIN_PAIR_RATE = Rate(5, 900)
LOGIN_ADDRESS_RATE = Rate(30, 900)
LOGIN_USERNAME_RATE = Rate(10, 900)
# The admin API's port when TESSERA_ADMIN_TOKEN is set and TESSERA_ADMIN_PORT is not.
ADMIN_PORT = 9443
# Settings no longer read, and what replaced them: a start-up warning names them.
REPLACED = {
    "TESSERA_LOGIN_MAX_FAILURES": "TESSERA_LOGIN_PAIR_RATE and TESSERA_LOGIN_USERNAME_RATE",
    "TESSERA_LOGIN_FAILURE_WINDOW": "the SECONDS of the TESSERA_LOGIN_*_RATE settings",
}


def redis_url_from_env(env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get("REDIS_URL", DEFAULT_REDIS_URL)


# The switch without which TESSERA_PASSWORD_HASH_* may not go below RFC 9106's advice.
WEAK_HASHING_FOR_TESTS = "TESSERA_WEAK_PASSWORD_HASHING_FOR_TESTS"


def weaker_than_recommended(hashing: PasswordHashing) -> bool:
    return (
        hashing.time_cost < RFC_9106_LOW_MEMORY.time_cost
        or hashing.memory_kib < RFC_9106_LOW_MEMORY.memory_kib
    )


def password_hashing_from_env(env: Mapping[str, str] | None = None) -> PasswordHashing:
    """The argon2id parameters of new password hashes (``TESSERA_PASSWORD_HASH_*``): read
    by the services (for the hash an unknown username is checked against) and by whatever
    adds users (the ``tessera`` CLI, ``make run``)."""
    return _Reader(os.environ if env is None else env).password_hashing()


def audit_max_events_from_env(env: Mapping[str, str] | None = None) -> int:
    """``TESSERA_AUDIT_MAX_EVENTS``: read by the services and by the ``tessera bootstrap``
    commands, which write their audit events to Redis themselves."""
    return _Reader(os.environ if env is None else env).audit_max_events()


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


# The longest a client's previous secret stays valid after a rotation (90 days): long
# enough for any client to move to the new secret, short enough to end.
MAX_SECRET_OVERLAP = 90 * 24 * 3600


# Cached: development mode asks this of every request's peer address. Bounded, because
# the addresses (and redirect URIs' host names) are the callers'.
@functools.lru_cache(maxsize=1024)
def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Settings:
    issuer: str
    redis_url: str
    token_endpoint: str
    introspection_endpoint: str
    revocation_endpoint: str
    jwks_uri: str
    # OpenID Connect Core §5.3, served by the token service.
    userinfo_endpoint: str
    # Lifetimes in seconds; webMethods Integration Server's defaults.
    code_lifetime: int = 600
    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = 30 * 24 * 3600
    # OpenID Connect ID tokens: read once by the client at sign-in (Core §3.1.3.7).
    id_token_lifetime: int = 3600
    interaction_lifetime: int = 600
    # How long a pending request nobody has signed in to lives: anyone can make one.
    anonymous_interaction_lifetime: int = 300
    session_lifetime: int = 8 * 3600
    # Per client address (shared/storage/rate_limits.py, README "Rate limits"): /authorize
    # requests, sign-in page requests, and failed client authentications at /token,
    # /revoke and /introspect.
    authorize_rate: Rate = AUTHORIZE_RATE
    login_page_rate: Rate = LOGIN_PAGE_RATE
    client_auth_failure_rate: Rate = CLIENT_AUTH_FAILURE_RATE
    # Failed sign-ins (shared/web/login_throttle.py): per (username, address) and per address,
    # refused beyond; per username from addresses it never signed in from, slowed beyond
    # to one attempt every login_username_pace seconds. A successful sign-in makes its
    # address known to the username for login_known_address_lifetime seconds.
    login_pair_rate: Rate = LOGIN_PAIR_RATE
    login_address_rate: Rate = LOGIN_ADDRESS_RATE
    login_username_rate: Rate = LOGIN_USERNAME_RATE
    login_username_pace: int = 60
    login_known_address_lifetime: int = 30 * 24 * 3600
    # argon2 checks a process runs at once, and how many may wait in each of its two
    # lines (shared/web/password_checks.py); one more is answered 429 at once.
    password_check_threads: int = 2
    password_check_queue: int = 8
    # argon2id's parameters (shared/security/crypto.py): RFC 9106's second recommended set. The
    # tests lower them, so that hashing their thousand users costs milliseconds.
    password_hashing: PasswordHashing = RFC_9106_LOW_MEMORY
    # webMethods Integration Server leaves PKCE optional; we require it of public clients by default
    # (RFC 9700 §2.1.1). A client may override it either way.
    require_pkce_public: bool = True
    # Development only: allow plain http on loopback addresses (no Secure cookies).
    insecure_loopback: bool = False
    # webMethods Integration Server's "Require HTTPS" (on by default): plain-http
    # requests are refused.
    require_https: bool = True
    # Proxies (a TLS-terminating ingress) whose X-Forwarded-Proto and X-Forwarded-For
    # are believed.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # A rotated-away refresh token presented again within this many seconds of its
    # rotation is refused without revoking the family (a client's own race, see README).
    refresh_reuse_grace: int = 0
    # TESSERA_ACCESS_TOKEN_FORMAT: "opaque" or "jwt" (RFC 9068); a client may choose
    # otherwise.
    jwt_access_tokens: bool = False
    # A PEM file or a directory of PEM files; the signing keys of JWT access tokens.
    signing_keys: str = ""
    # The file in that directory that signs; empty: the one whose name sorts last.
    signing_key: str = ""
    # The aud claim of JWT access tokens (RFC 9068 §3); default: the issuer.
    access_token_audience: str = ""
    # The admin API (services/admin): its bootstrap bearer credential, and the port the
    # token service serves it on, apart from the public one; 0 = no admin API. Unset,
    # the port is ADMIN_PORT when a credential is set, else 0 (see from_env).
    admin_token: str = ""
    admin_port: int = 0
    # A rotated client secret stays valid this long beside the new one (0: not at all).
    secret_rotation_overlap: int = 86400
    # The audit stream keeps about this many events, the oldest dropped first.
    audit_max_events: int = 100_000
    # webMethods Integration Server's paths of the OAuth services
    # (/invoke/pub.oauth/getToken, ...) served beside Tessera's own
    # (shared/web/webmethods_paths.py).
    webmethods_paths: bool = False
    # The approval page, as webMethods Integration Server's approvalpage.* parameters.
    approval_title: str = "Tessera"
    approval_header: str = "Authorize access"
    approval_logo_url: str = ""
    approval_footer: str = ""
    # A directory of page templates that replace the built-in ones of the same name.
    template_dir: str = ""
    log_level: str = "INFO"
    # Operations (README: logs, shutdown): JSON lines by default, text for people; how
    # long a SIGTERMed service keeps serving, unready, before it stops listening.
    log_format: str = "json"
    drain_seconds: int = 10
    # How long a request waits for Redis (connecting, or one command's reply) before it is
    # answered 503 temporarily_unavailable: well under a client's own timeout.
    redis_timeout_ms: int = 500
    # Requests a process serves at once (probes excepted); more are answered 503 at once.
    max_in_flight: int = 2048

    @property
    def cookie_secure(self) -> bool:
        return not self.insecure_loopback

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        issuer = reader.url("TESSERA_ISSUER", required=True).rstrip("/")
        if urlsplit(issuer).path:
            # The pages and RFC 8414 metadata are served at the root of the issuer's host.
            raise SettingsError(f"TESSERA_ISSUER={issuer!r}: must not have a path")
        insecure = reader.boolean("TESSERA_INSECURE_LOOPBACK", False)
        settings = cls(
            issuer=issuer,
            redis_url=reader.redis_url("REDIS_URL", redis_url_from_env(env)),
            token_endpoint=reader.url("TESSERA_TOKEN_ENDPOINT", default=issuer + "/token"),
            introspection_endpoint=reader.url(
                "TESSERA_INTROSPECTION_ENDPOINT", default=issuer + "/introspect"
            ),
            revocation_endpoint=reader.url(
                "TESSERA_REVOCATION_ENDPOINT", default=issuer + "/revoke"
            ),
            jwks_uri=reader.url("TESSERA_JWKS_URI", default=issuer + "/jwks.json"),
            userinfo_endpoint=reader.url("TESSERA_USERINFO_ENDPOINT", default=issuer + "/userinfo"),
            # RFC 6749 §4.1.2 recommends at most 10 minutes; an hour is the hard limit.
            code_lifetime=reader.seconds("TESSERA_CODE_LIFETIME", 600, maximum=3600),
            access_token_lifetime=reader.seconds("TESSERA_ACCESS_TOKEN_LIFETIME", 3600),
            refresh_token_lifetime=reader.seconds("TESSERA_REFRESH_TOKEN_LIFETIME", 30 * 24 * 3600),
            id_token_lifetime=reader.seconds("TESSERA_ID_TOKEN_LIFETIME", 3600, maximum=24 * 3600),
            interaction_lifetime=reader.seconds("TESSERA_INTERACTION_LIFETIME", 600),
            anonymous_interaction_lifetime=reader.seconds(
                "TESSERA_ANONYMOUS_INTERACTION_LIFETIME", 300
            ),
            session_lifetime=reader.seconds("TESSERA_SESSION_LIFETIME", 8 * 3600),
            authorize_rate=reader.rate("TESSERA_AUTHORIZE_RATE", AUTHORIZE_RATE),
            login_page_rate=reader.rate("TESSERA_LOGIN_PAGE_RATE", LOGIN_PAGE_RATE),
            client_auth_failure_rate=reader.rate(
                "TESSERA_CLIENT_AUTH_FAILURE_RATE", CLIENT_AUTH_FAILURE_RATE
            ),
            login_pair_rate=reader.rate("TESSERA_LOGIN_PAIR_RATE", LOGIN_PAIR_RATE),
            login_address_rate=reader.rate("TESSERA_LOGIN_ADDRESS_RATE", LOGIN_ADDRESS_RATE),
            login_username_rate=reader.rate("TESSERA_LOGIN_USERNAME_RATE", LOGIN_USERNAME_RATE),
            login_username_pace=reader.seconds("TESSERA_LOGIN_USERNAME_PACE", 60),
            login_known_address_lifetime=reader.seconds(
                "TESSERA_LOGIN_KNOWN_ADDRESS_LIFETIME", 30 * 24 * 3600
            ),
            password_check_threads=reader.positive("TESSERA_PASSWORD_CHECK_THREADS", 2, "threads"),
            password_check_queue=reader.non_negative("TESSERA_PASSWORD_CHECK_QUEUE", 8, "checks"),
            password_hashing=reader.password_hashing(),
            require_pkce_public=reader.boolean("TESSERA_REQUIRE_PKCE_PUBLIC", True),
            insecure_loopback=insecure,
            require_https=reader.boolean("TESSERA_REQUIRE_HTTPS", True),
            trusted_proxies=reader.networks("TESSERA_TRUSTED_PROXIES"),
            refresh_reuse_grace=reader.non_negative("TESSERA_REFRESH_REUSE_GRACE", 0, "seconds"),
            jwt_access_tokens=reader.choice(
                "TESSERA_ACCESS_TOKEN_FORMAT", "opaque", ACCESS_TOKEN_FORMATS
            )
            == "jwt",
            signing_keys=reader.text("TESSERA_SIGNING_KEYS", ""),
            signing_key=reader.text("TESSERA_SIGNING_KEY", ""),
            access_token_audience=reader.text("TESSERA_ACCESS_TOKEN_AUDIENCE", issuer),
            # Stripped: a Secret made from a file (openssl rand ... > file) ends in a
            # newline no bearer header can carry, so the credential would never match.
            admin_token=reader.text("TESSERA_ADMIN_TOKEN", "").strip(),
            admin_port=reader.admin_port(bool(env.get("TESSERA_ADMIN_TOKEN"))),
            secret_rotation_overlap=reader.non_negative(
                "TESSERA_SECRET_ROTATION_OVERLAP", 86400, "seconds", maximum=MAX_SECRET_OVERLAP
            ),
            audit_max_events=reader.audit_max_events(),
            webmethods_paths=reader.boolean("TESSERA_WEBMETHODS_PATHS", False),
            approval_title=reader.text("TESSERA_APPROVAL_TITLE", "Tessera"),
            approval_header=reader.text("TESSERA_APPROVAL_HEADER", "Authorize access"),
            approval_logo_url=reader.url("TESSERA_APPROVAL_LOGO_URL", https_only=True),
            approval_footer=reader.text("TESSERA_APPROVAL_FOOTER", ""),
            template_dir=reader.directory("TESSERA_TEMPLATE_DIR"),
            log_level=reader.choice(
                "TESSERA_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            log_format=reader.choice("TESSERA_LOG_FORMAT", "json", ("JSON", "TEXT")).lower(),
            drain_seconds=reader.non_negative("TESSERA_DRAIN_SECONDS", 10, "seconds"),
            redis_timeout_ms=reader.positive("TESSERA_REDIS_TIMEOUT_MS", 500, "milliseconds"),
            max_in_flight=reader.positive("TESSERA_MAX_IN_FLIGHT", 2048, "requests"),
        )
        settings._check_https()
        settings._check_tokens()
        if weaker_than_recommended(settings.password_hashing):
            log.warning(
                "TESSERA_PASSWORD_HASH_* are lower than RFC 9106's recommended argon2id "
                "parameters (t=3, 64 MiB): for tests only, never in production"
            )
        for name in REPLACED.keys() & env.keys():
            log.warning("%s is no longer read; see %s", name, REPLACED[name])
        return settings

    def _check_tokens(self) -> None:
        if self.jwt_access_tokens and not self.signing_keys:
            raise SettingsError(
                "TESSERA_ACCESS_TOKEN_FORMAT=jwt needs TESSERA_SIGNING_KEYS "
                "(a PEM file or a directory of PEM files)"
            )
        if self.admin_token and len(self.admin_token) < 32:
            raise SettingsError(
                "TESSERA_ADMIN_TOKEN: too short; use at least 32 random characters "
                "(for instance: openssl rand -base64 32)"
            )

    def _check_https(self) -> None:
        """Require HTTPS (webMethods Integration Server's default: on); the development
        switch allows loopback only."""
        for name, url in (
            ("TESSERA_ISSUER", self.issuer),
            ("TESSERA_TOKEN_ENDPOINT", self.token_endpoint),
            ("TESSERA_INTROSPECTION_ENDPOINT", self.introspection_endpoint),
            ("TESSERA_REVOCATION_ENDPOINT", self.revocation_endpoint),
            ("TESSERA_JWKS_URI", self.jwks_uri),
            ("TESSERA_USERINFO_ENDPOINT", self.userinfo_endpoint),
        ):
            parts = urlsplit(url)
            if parts.scheme == "https":
                continue
            if self.insecure_loopback and is_loopback_host(parts.hostname):
                continue
            raise SettingsError(
                f"{name}={url!r}: must be an https URL "
                "(plain http is allowed only on loopback with TESSERA_INSECURE_LOOPBACK=1)"
            )
        if not self.require_https:
            log.warning(
                "TESSERA_REQUIRE_HTTPS is off: plain-http requests are served. Only behind "
                "a proxy that terminates TLS and cannot be bypassed."
            )
        if self.insecure_loopback:
            log.warning(
                "TESSERA_INSECURE_LOOPBACK is on: plain http on loopback, cookies without "
                "Secure. Development only; never run this way in production."
            )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default)

    def audit_max_events(self) -> int:
        return self.positive("TESSERA_AUDIT_MAX_EVENTS", 100_000, "events")

    def url(
        self, name: str, *, default: str = "", required: bool = False, https_only: bool = False
    ) -> str:
        value = self.env.get(name, default)
        if not value:
            if required:
                raise SettingsError(
                    f"{name} is required (an absolute URL such as https://id.example.com)"
                )
            return value
        parts = urlsplit(value)
        schemes = ("https",) if https_only else ("http", "https")
        if parts.scheme not in schemes or not parts.hostname:
            raise SettingsError(f"{name}={value!r}: not an absolute {' or '.join(schemes)} URL")
        if parts.query or parts.fragment:
            # RFC 8414 §2: the issuer has no query or fragment component.
            raise SettingsError(f"{name}={value!r}: must not have a query or fragment")
        return value

    def admin_port(self, has_credential: bool) -> int:
        """TESSERA_ADMIN_PORT: a TCP port, or 0 for no admin API. Unset, ADMIN_PORT when
        the bootstrap credential is set (a credential is there to be used), else 0: an
        operator who names a port gets the API with Tessera's own tokens alone. 0 with a
        credential set is refused, as the contradiction it is."""
        raw = self.env.get("TESSERA_ADMIN_PORT", "").strip()
        if not raw:
            return ADMIN_PORT if has_credential else 0
        try:
            port = int(raw)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise SettingsError(f"TESSERA_ADMIN_PORT={raw!r}: not a TCP port (1-65535), or 0")
        if port == 0 and has_credential:
            raise SettingsError(
                "TESSERA_ADMIN_PORT=0 turns the admin API off, but TESSERA_ADMIN_TOKEN is set: "
                "unset one of them"
            )
        return port

    def directory(self, name: str) -> str:
        """An existing directory, or "" when the variable is unset or empty."""
        value = self.env.get(name, "")
        if value and not (os.path.isdir(value) and os.access(value, os.R_OK | os.X_OK)):
            raise SettingsError(f"{name}={value!r}: not an existing, readable directory")
        return value

    def seconds(self, name: str, default: int, *, maximum: int | None = None) -> int:
        value = self.positive(name, default, "seconds")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name}={value}: must be at most {maximum} (seconds)")
        return value

    def positive(self, name: str, default: int, unit: str) -> int:
        return self._whole(name, default, unit, minimum=1)

    def non_negative(
        self, name: str, default: int, unit: str, *, maximum: int | None = None
    ) -> int:
        value = self._whole(name, default, unit, minimum=0)
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name}={value}: must be at most {maximum} ({unit})")
        return value

    def _whole(self, name: str, default: int, unit: str, *, minimum: int) -> int:
        raw = self.env.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: not a whole number of {unit}") from None
        if value < minimum:
            raise SettingsError(f"{name}={raw!r}: must be at least {minimum} ({unit})")
        return value

    def password_hashing(self) -> PasswordHashing:
        default = RFC_9106_LOW_MEMORY
        hashing = PasswordHashing(
            time_cost=self.positive("TESSERA_PASSWORD_HASH_TIME_COST", default.time_cost, "passes"),
            memory_kib=self.positive("TESSERA_PASSWORD_HASH_MEMORY_KIB", default.memory_kib, "KiB"),
            parallelism=self.positive(
                "TESSERA_PASSWORD_HASH_PARALLELISM", default.parallelism, "lanes"
            ),
        )
        # RFC 9106 §3.1: at least 8 KiB of memory per lane.
        if hashing.memory_kib < 8 * hashing.parallelism:
            raise SettingsError(
                f"TESSERA_PASSWORD_HASH_MEMORY_KIB={hashing.memory_kib}: must be at least 8 "
                f"KiB per lane (TESSERA_PASSWORD_HASH_PARALLELISM={hashing.parallelism})"
            )
        # Fewer passes or less memory than RFC 9106 recommends make every stored hash
        # cheaper to crack for good (nothing rehashes them): only a test suite, whose
        # users need no protection, may ask for that, and must say so.
        if weaker_than_recommended(hashing) and not self.boolean(WEAK_HASHING_FOR_TESTS, False):
            raise SettingsError(
                f"TESSERA_PASSWORD_HASH_*: {hashing.time_cost} passes and "
                f"{hashing.memory_kib} KiB are below RFC 9106's recommended "
                f"{default.time_cost} passes and {default.memory_kib} KiB; refused unless "
                f"{WEAK_HASHING_FOR_TESTS}=1, which is for test suites only"
            )
        return hashing

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        """Comma-separated addresses or CIDR ranges, such as ``10.0.0.0/8,127.0.0.1``."""
        raw = self.env.get(name, "")
        try:
            return tuple(
                ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip()
            )
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r}: {exc}") from None

    def redis_url(self, name: str, value: str) -> str:
        try:
            redis_urls.parse(value)
        except ValueError as exc:
            # The message names the problem, never the URL: it may hold a password.
            raise SettingsError(f"{name}: {exc}") from None
        return value

    def rate(self, name: str, default: Rate) -> Rate:
        """``COUNT/SECONDS`` (such as ``300/60``), or ``off``."""
        raw = self.env.get(name)
        if raw is None:
            return default
        if raw.strip().lower() == "off":
            return OFF
        count, slash, seconds = raw.partition("/")
        try:
            rate = Rate(int(count), int(seconds))
        except ValueError:
            rate = None
        if not slash or rate is None or rate.count < 1 or rate.seconds < 1:
            raise SettingsError(f"{name}={raw!r}: expected COUNT/SECONDS, such as 300/60, or off")
        return rate

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.env.get(name, default)
        for choice in choices:
            if raw.strip().lower() == choice.lower():
                return choice
        raise SettingsError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
