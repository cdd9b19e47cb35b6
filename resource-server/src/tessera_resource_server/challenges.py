"""Refusals of a protected resource (RFC 6750 §3): the status, the ``WWW-Authenticate:
Bearer`` challenge and a JSON body, never cached.

| case | status | challenge |
|---|---|---|
| no bearer credentials | 401 | ``Bearer realm="..."``, no error code (§3.1) |
| malformed request | 400 | ``error="invalid_request"`` |
| invalid, expired or revoked token | 401 | ``error="invalid_token"`` |
| token without the needed scope | 403 | ``error="insufficient_scope"``, ``scope="..."`` |
| Tessera cannot be asked | 503 | none: the token may well be good |

Each is a ``ProtectedResourceError`` with the scope that §3 may name; the specific cause
goes to the log, never into the response.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from aiohttp import web

# RFC 6750 §3 and RFC 6749 §5.1: an answer about a token is never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ProtectedResourceError(Exception):
    """An answer other than the resource: the RFC error code, the HTTP status and a
    public description; ``cause`` says which check failed, for the log only."""

    def __init__(self, error: str, description: str, *, status: int, cause: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.cause = cause

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class BearerError(ProtectedResourceError):
    """A refusal of RFC 6750 §3; ``error`` is empty when the request had no token."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int,
        cause: str,
        scope: Iterable[str] = (),
    ) -> None:
        super().__init__(error, description, status=status, cause=cause)
        self.scope = tuple(scope)

    def body(self) -> dict[str, str]:
        # §3.1: a request without credentials gets no error code, so none is invented.
        return super().body() if self.error else {"error_description": self.description}

    def challenge_for(self, realm: str) -> str:
        """The WWW-Authenticate value (RFC 6750 §3, RFC 7235 §4.1). Every parameter value
        is ours (no request data), within §3's allowed characters."""
        params = [f'realm="{realm}"']
        if self.error:
            params.append(f'error="{self.error}"')
            params.append(f'error_description="{self.description}"')
        if self.scope:
            params.append(f'scope="{" ".join(self.scope)}"')
        return "Bearer " + ", ".join(params)


class TesseraUnavailable(ProtectedResourceError):
    """Tessera's introspection, JWK Set or scope definitions cannot be had: 503, because
    saying 401 would blame a token that may be valid. ``cause`` says why, for the log."""

    def __init__(self, cause: str) -> None:
        super().__init__(
            "temporarily_unavailable",
            "The authorization server cannot be reached; try again later.",
            status=503,
            cause=cause,
        )


def missing_token(cause: str = "no bearer token") -> BearerError:
    return BearerError("", "This resource needs an access token.", status=401, cause=cause)


def bearer_invalid_request(cause: str) -> BearerError:
    return BearerError("invalid_request", "The request is malformed.", status=400, cause=cause)


def invalid_token(cause: str) -> BearerError:
    # One description for every reason, so a caller learns nothing about the token.
    return BearerError(
        "invalid_token",
        "The access token is invalid, expired or revoked.",
        status=401,
        cause=cause,
    )


def insufficient_scope(needed: Iterable[str], cause: str) -> BearerError:
    return BearerError(
        "insufficient_scope",
        "The access token lacks the scope this resource needs.",
        status=403,
        cause=cause,
        scope=needed,
    )


def refusal_response(exc: ProtectedResourceError, realm: str) -> web.Response:
    headers = {**NO_STORE}
    if isinstance(exc, BearerError):
        headers["WWW-Authenticate"] = exc.challenge_for(realm)
    if isinstance(exc, TesseraUnavailable):
        headers["Retry-After"] = "5"
    return web.Response(
        body=orjson.dumps(exc.body()),
        status=exc.status,
        content_type="application/json",
        headers=headers,
    )
