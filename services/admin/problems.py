"""Every error of the admin API as problem details (RFC 9457): ``application/problem+json``
with ``type``, ``title``, ``status``, ``detail`` and, for a request that names values
the API refuses, ``errors``: ``[{"field": ..., "message": ...}]``.

``type`` is ``about:blank`` throughout (RFC 9457 §4.2.1): the status says what kind of
refusal it is, ``title`` is its phrase and ``detail`` the case at hand. A refusal of
storage (``shared.domain.domain_errors``) is answered here too: NotFound 404, Conflict
409, Invalid 422. aiohttp's own refusals (404, 405, 413 ...) become problems as well, and
anything unexpected is a 500 problem with the stack trace in the log only.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from shared.domain.domain_errors import Conflict, DomainError, Invalid, NotFound
from shared.domain.oauth_errors import OAuthError
from shared.security import fingerprint
from shared.web import metrics
from shared.web.base_app import NO_STORE, log_failure, logged_by_the_redis_client, redis_unavailable
from shared.web.logs import add_to_line, logged_method

log = logging.getLogger("tessera.admin")

PROBLEM_JSON = "application/problem+json"
# RFC 9110 §10.2.3: a client may retry a 503 after this many seconds.
RETRY_AFTER_SECONDS = 1


class Problem(Exception):
    """A refusal, answered as problem details. ``cause`` goes to the log; ``detail`` and
    ``errors`` to the caller."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.cause = cause or detail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid(detail: str, field: str | None = None, *, status: int = 400) -> Problem:
    """A request whose value ``field`` the API refuses: 400 when it is malformed (not
    JSON, a wrong type), 422 when well-formed but against a rule."""
    errors = [{"field": field, "message": detail}] if field else None
    return Problem(status, detail, errors=errors)


def response(problem: Problem) -> web.Response:
    return web.Response(
        body=orjson.dumps(problem.body()),
        status=problem.status,
        content_type=PROBLEM_JSON,
        headers={**NO_STORE, **problem.headers},
    )


def _from_domain(exc: DomainError) -> Problem:
    if isinstance(exc, NotFound):
        # The administrator learns which name; the log only its fingerprint: a name that
        # names nothing may be a credential pasted in the wrong place.
        return Problem(404, exc.message, cause=f"no {exc.kind} {fingerprint.of(exc.name)}")
    if isinstance(exc, Conflict):
        return Problem(409, exc.message)
    field = exc.field if isinstance(exc, Invalid) else None
    # The message may quote the value refused: the response shows it, the log does not.
    return Problem(
        422,
        exc.message,
        errors=[{"field": field, "message": exc.message}] if field else None,
        cause=f"a value the operation refused ({field or 'unnamed'})",
    )


def _from_http(exc: web.HTTPException) -> Problem:
    """aiohttp's own refusal (no route 404, 405 with its Allow header, a body over the
    size limit 413) as a problem."""
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    detail = {
        404: "No such resource.",
        405: "The resource does not allow this method.",
        413: "The request body is too large.",
    }.get(exc.status, HTTPStatus(exc.status).description)
    return Problem(exc.status, detail, headers=headers, cause=exc.reason)


@web.middleware
async def problem_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every refusal and failure of a handler as a problem."""
    try:
        return await handler(request)
    except DomainError as exc:
        problem = _from_domain(exc)
    except Problem as exc:
        problem = exc
    except OAuthError as exc:
        # A shared middleware's refusal (a query string that cannot be read).
        problem = Problem(exc.status, exc.description, cause=exc.cause)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        problem = _from_http(exc)
    except Exception as exc:
        problem = await _failure(request, exc)
    log.info(
        "%s %s refused: %d (%s)",
        logged_method(request),
        metrics.route_template(request),
        problem.status,
        problem.cause,
    )
    return response(problem)


async def _failure(request: web.Request, exc: Exception) -> Problem:
    """Redis away: 503, without a stack trace; anything else: 500, its trace logged."""
    if isinstance(exc, RedisError):
        metrics.redis_error(request, exc)
    if redis_unavailable(exc):
        add_to_line(request, redis_error=type(exc).__name__)
        if not logged_by_the_redis_client(exc):
            log.warning("Redis unavailable (%s): answering 503", type(exc).__name__)
        return Problem(
            503,
            "Redis is unavailable; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    await log_failure(request, exc)
    return Problem(500, "The server failed to answer; the log says why.", cause="failure")
