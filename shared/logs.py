"""Logs: one JSON object a line (or plain text for people), one line per request and per
security event, each carrying the id of the request it was written for.

The request id comes from the incoming ``X-Request-ID`` header when it is short and of a
safe alphabet (so a proxy's or client's id ties their logs to ours), and is generated
otherwise. It is sent back in ``X-Request-ID`` and held in a context variable for the
request's task, so every line logged while serving it names it, whichever logger wrote it.

What is never logged: a query string (redirects and some clients put codes and tokens in
it), a code, token, secret, password, cookie or Authorization header. The request line
carries the path only; structured fields whose names say they hold such values are
replaced by ``[redacted]`` as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from shared.metrics import CLIENT_CLOSED_REQUEST, route_template

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
# Short and safe to print anywhere: letters, digits and ._:+/=- (UUIDs, hex, base64).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,64}")
LOG_FORMATS = ("json", "text")
DEFAULT_LOG_FORMAT = "json"
# Paths are cut at this length; a request line is not the place for a whole URL-sized blob.
MAX_PATH_CHARS = 200
# Kubernetes probes these every few seconds; a successful probe is logged at DEBUG only.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

# Field names that hold credentials or grants; their values never reach a log line.
SENSITIVE_FIELDS = frozenset(
    {
        "access_token",
        "authorization",
        "client_secret",
        "code",
        "code_verifier",
        "cookie",
        "csrf_token",
        "password",
        "refresh_token",
        "secret",
        "session",
        "session_id",
        "token",
    }
)
REDACTED = "[redacted]"

# The LogRecord attribute that carries structured fields (set through ``extra``).
FIELDS_ATTRIBUTE = "tessera_fields"

request_id_var: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)

access_log = logging.getLogger("tessera.access")
# What a handler adds to its request's line (the grant issued, the client): one line per
# request tells what was done, where a second line would cost as much again.
LINE_FIELDS: web.RequestKey[dict[str, object]] = web.RequestKey("tessera_line_fields")
security_log = logging.getLogger("tessera.security")


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is acceptable, else a new random one."""
    if header is not None and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


def add_to_line(request: web.Request, **fields: object) -> None:
    """Put ``fields`` on the request's log line (they never replace its own fields)."""
    request.setdefault(LINE_FIELDS, {}).update(fields)


def current_request_id() -> str | None:
    return request_id_var.get()


def redact(fields: Mapping[str, object]) -> dict[str, object]:
    return {
        name: REDACTED if name.lower() in SENSITIVE_FIELDS else value
        for name, value in fields.items()
    }


def security_event(event: str, **fields: object) -> None:
    """Log a security event (a replayed code, a refused sign-in...) at WARNING on
    ``tessera.security``, with ``event`` and ``fields`` as structured fields."""
    security_log.warning(event, extra={FIELDS_ATTRIBUTE: {"event": event, **fields}})


def _fields_of(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, FIELDS_ATTRIBUTE, None)
    return redact(fields) if isinstance(fields, Mapping) else {}


def _request_id_of(record: logging.LogRecord) -> str | None:
    # Formatting runs in the thread and context that logged (StreamHandler), so the
    # context variable is that of the request being served, if any.
    return getattr(record, "request_id", None) or request_id_var.get()


class _Formatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        exc = ei[1]
        if isinstance(exc, HttpProcessingError):
            # aiohttp's parser errors quote the raw request line, query string included.
            return f"{type(exc).__name__}: HTTP {exc.code} (the request line is not logged)"
        return super().formatException(ei)


class JsonFormatter(_Formatter):
    """One JSON object per line: time, level, logger, service, message, request_id, the
    record's structured fields, and the exception if any."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        request_id = _request_id_of(record)
        if request_id:
            entry["request_id"] = request_id
        for name, value in _fields_of(record).items():
            entry.setdefault(name, value)  # a field never hides the line's own keys
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def _text_value(value: object) -> str:
    text = str(value)
    if text and all(ch.isprintable() and not ch.isspace() and ch not in "\"'=" for ch in text):
        return text
    # Quoted and escaped, so a value can neither break the line nor fake a field.
    return orjson.dumps(text).decode()


class TextFormatter(_Formatter):
    """For people: ``time service LEVEL logger [request id]: message key=value...``."""

    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s " + service + " %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = _request_id_of(record)
        record.rid = f" [{request_id}]" if request_id else ""
        line = super().format(record)
        fields = _fields_of(record)
        if fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        return line


def configure(service: str, log_format: str, level: str = "INFO") -> None:
    """Send every logger's records to standard error in ``log_format`` (json or text)."""
    formatter: logging.Formatter = (
        TextFormatter(service) if log_format.lower() == "text" else JsonFormatter(service)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    # No line names the source file, thread or process that logged it, so they are not
    # looked up for every record (the logging HOWTO's "Optimization"): a third of the
    # cost of a request's line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _path_of(request: web.Request) -> str:
    # The path as sent (percent-encoded, so no control characters), without the query.
    path = request.rel_url.raw_path
    return path if len(path) <= MAX_PATH_CHARS else path[:MAX_PATH_CHARS] + "..."


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, and log one line for it when it is answered."""
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_REQUEST
        raise
    finally:
        route = route_template(request)
        level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
        access_log.log(
            level,
            "%s %s %d",
            request.method,
            route,
            status,
            extra={
                FIELDS_ATTRIBUTE: {
                    **request.get(LINE_FIELDS, {}),
                    "method": request.method,
                    "route": route,
                    "path": _path_of(request),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "remote": request.remote,
                }
            },
        )
        request_id_var.reset(token)
