"""One exception for every OAuth error (RFC 6749 §4.1.2.1, §5.2; RFC 7662; RFC 6750).

It carries the RFC error code, the HTTP status and a public description. The specific
cause (which check failed, for whom) goes to the log through ``cause``, never into the
response.
"""

from __future__ import annotations


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        cause: str = "",
        challenge: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.cause = cause or description
        # The WWW-Authenticate value sent with a 401 (RFC 6749 §5.2, RFC 7235 §4.1).
        self.challenge = challenge
        # Seconds for the Retry-After header of a 503 or 429 (RFC 9110 §10.2.3).
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str, cause: str = "") -> OAuthError:
    return OAuthError("invalid_request", description, cause=cause)


def invalid_client(cause: str) -> OAuthError:
    # RFC 6749 §5.2: 401 with a challenge for the scheme the client used (or may use).
    return OAuthError(
        "invalid_client",
        "Client authentication failed.",
        status=401,
        cause=cause,
        challenge='Basic realm="tessera", charset="UTF-8"',
    )


def invalid_grant(cause: str) -> OAuthError:
    # One public description for every reason, so a caller learns nothing about the grant.
    return OAuthError(
        "invalid_grant",
        "The authorization grant is invalid, expired, revoked, or was issued to another "
        "client or redirect URI.",
        cause=cause,
    )


def invalid_scope(cause: str) -> OAuthError:
    return OAuthError(
        "invalid_scope", "The requested scope is invalid, unknown, or not allowed.", cause=cause
    )


def server_error() -> OAuthError:
    return OAuthError(
        "server_error", "The server met an unexpected condition.", status=500, cause="unexpected"
    )


def temporarily_unavailable(cause: str) -> OAuthError:
    """A server that cannot answer for now (Redis away, too many requests in flight):
    503 with Retry-After, so clients try again soon. RFC 6749 §4.1.2.1 defines the code
    for the authorization endpoint's redirect; the token and introspection endpoints
    use it by analogy in their JSON errors (§5.2 has none for it)."""
    return OAuthError(
        "temporarily_unavailable",
        "The service is temporarily unavailable; try again shortly.",
        status=503,
        cause=cause,
        retry_after=1,
    )


def too_many_requests(retry_after: int, cause: str) -> OAuthError:
    """A rate limit refused the caller: 429 with Retry-After (RFC 6585 §4). The code is
    RFC 6749 §4.1.2.1's temporarily_unavailable, which clients already retry later."""
    return OAuthError(
        "temporarily_unavailable",
        f"Too many requests; try again in {retry_after} seconds.",
        status=429,
        cause=cause,
        retry_after=retry_after,
    )
