"""Logs: one JSON object a line (or plain text for people), one line per request and per
security event, each carrying the id of the request it was written for.

The request id comes from the incoming ``X-Request-ID`` header when it is short and of a
safe alphabet (so a proxy's or client's id ties their logs to ours), and is generated
otherwise. It is sent back in ``X-Request-ID`` and held in a context variable for the
request's task, so every line logged while serving it names it, whichever logger wrote it.

What is never logged: a query string (redirects and some clients put codes and tokens in
it), a code, token, secret, password, cookie or Authorization header, nor any value a
caller sent that did not turn out to name something Tessera knows, for it may be a
credential sent in the wrong place: such a value is logged as its keyed fingerprint
(``shared.security.fingerprint``). So the request line carries the path only, and only when it is
one Tessera serves (a fixed route, or a request answered without error); else its
fingerprint. Structured fields whose names say they hold credentials are replaced by
``[redacted]`` as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from shared.security import fingerprint
from shared.web.app_keys import SETTINGS
from shared.web.client_address import client_address

REQUEST_ID_HEADER = "X-Request-ID"
# Every line of a request names its id, so a caller's is kept only in the forms proxies
# and tracers make, which no credential of Tessera's has: a UUID (Envoy, Istio, Kong,
# Heroku) or 32 hex digits (ingress-nginx's $req_id, a W3C trace id, Tessera's own).
_VALID_REQUEST_ID = re.compile(
    r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
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
# The LogRecord attribute that carries a stack trace already made fit for the log (values
# the caller sent replaced by fingerprints, shared.web.base_app): written instead of exc_info's.
TRACE_ATTRIBUTE = "tessera_trace"

request_id_var: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)

ACCESS_LOGGER = "tessera.access"
access_log = logging.getLogger(ACCESS_LOGGER)
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
    def access_line(
        self, level: int, message: str, request_id: str, fields: dict[str, object]
    ) -> str:
        """The line a record of tessera.access with these fields would give."""
        record = logging.LogRecord(ACCESS_LOGGER, level, "", 0, message, None, None)
        setattr(record, "request_id", request_id)  # noqa: B010 - not a LogRecord attribute
        setattr(record, FIELDS_ATTRIBUTE, fields)
        return self.format(record)

    def formatException(self, ei: Any) -> str:
        exc = ei[1]
        if isinstance(exc, HttpProcessingError):
            # aiohttp's parser errors quote the raw request line, query string included.
            return f"{type(exc).__name__}: HTTP {exc.code} (the request line is not logged)"
        return super().formatException(ei)


# What aiohttp's HTTP server logs through in the services (``shared.web.shutdown``,
# ``services.example_api``), in place of its own ``aiohttp.server``.
HTTP_SERVER_LOGGER = "tessera.http"


def _client_fault(exc: BaseException | None) -> BaseException | None:
    """The client's doing behind ``exc``, if that is what it is: a request aiohttp could
    not parse (answered 400 before any handler), a body it could not read (broken
    chunked framing), or a client that hung up within its request."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, HttpProcessingError | web.RequestPayloadError | ConnectionResetError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class _ClientFaults(logging.Filter):
    """aiohttp logs a request it could not parse, and the rest of a body it could not
    read after the answer, at ERROR with a traceback. Neither is a fault of the service:
    the request was answered 400, or its sender has gone. They are logged at INFO, one
    line that names the error and never the request (a parser's message quotes the
    request line, query string included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = _client_fault(record.exc_info[1] if record.exc_info else None)
        if fault is None:
            return True
        code = getattr(fault, "code", None)
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.msg = "malformed or abandoned request: %s" + (
            f" (answered HTTP {code})" if isinstance(code, int) else ""
        )
        record.args = (type(fault).__name__,)
        record.exc_info, record.exc_text = None, None
        return True


http_server_log = logging.getLogger(HTTP_SERVER_LOGGER)
http_server_log.addFilter(_ClientFaults())


class _UtcSeconds:
    """ISO 8601 times in UTC to the millisecond, the date and time formatted once a second
    (formatting them is most of the cost of a time stamp)."""

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def format(self, created: float) -> str:
        second = int(created)
        micros = round((created - second) * 1_000_000)  # as datetime.fromtimestamp rounds
        if micros == 1_000_000:
            second, micros = second + 1, 0
        cached_second, text = self._cached  # one tuple: safe to share between threads
        if cached_second != second:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._cached = (second, text)
        return f"{text}.{micros // 1000:03d}Z"


_utc_seconds = _UtcSeconds()


class JsonFormatter(_Formatter):
    """One JSON object per line: time, level, logger, service, message, request_id, the
    record's structured fields, and the exception if any."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = self._entry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            _request_id_of(record),
            _fields_of(record),
        )
        if record.exc_info:
            trace = getattr(record, TRACE_ATTRIBUTE, None)
            entry["exception"] = trace or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()

    def access_line(
        self, level: int, message: str, request_id: str, fields: dict[str, object]
    ) -> str:
        # The line a record of tessera.access would give, without making the record.
        entry = self._entry(
            time.time(), logging.getLevelName(level), ACCESS_LOGGER, message, request_id, fields
        )
        return orjson.dumps(entry, default=str).decode()

    def _entry(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        request_id: str | None,
        fields: Mapping[str, object],
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": _utc_seconds.format(created),
            "level": level,
            "logger": logger,
            "service": self.service,
            "message": message,
        }
        if request_id:
            entry["request_id"] = request_id
        for name, value in fields.items():
            entry.setdefault(name, value)  # a field never hides the line's own keys
        return entry


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
        trace = getattr(record, TRACE_ATTRIBUTE, None)
        if trace:
            record.exc_text = trace  # what logging.Formatter writes for exc_info
        line = super().format(record)
        fields = _fields_of(record)
        if fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        return line


class LineSink:
    """Where this process's log lines go: one stream (standard error), written in the order
    the lines were made, whichever thread made them.

    A line made on a thread running an event loop is kept and written with the others the
    loop makes until it finishes its current iteration: one write for a burst of requests
    instead of a write and a flush per line. It reaches the stream before the loop reads
    the next request, and a request that comes after an answer finds that answer's line
    written. A line made elsewhere (start-up, shutdown, a worker thread) is written at once,
    with any kept before it. ``flush`` writes what is kept; logging calls it at exit
    (``logging.shutdown``), so no line is lost when the process stops.

    A write to a file, or to a pipe with room, returns at once. When the reader of a pipe
    stops reading, the write waits as any logger's would: lines are neither dropped nor
    heaped up in memory.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._kept: list[str] = []
        # The loop whose next iteration will write the kept lines, if any.
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def write(self, line: str) -> None:
        """Add ``line`` (without its newline)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._kept.append(line)
            # A loop that closed with the flush still due is replaced by the running one.
            if loop is not None and self._flush_on is not loop:
                loop.call_soon(self.flush)
                self._flush_on = loop
        if loop is None:
            self.flush()

    def flush(self) -> None:
        with self._lock:  # held while writing, so two threads cannot swap their batches
            lines, self._kept = self._kept, []
            self._flush_on = None
            if not lines:
                return
            lines.append("")
            try:
                self._stream.write("\n".join(lines))
                self._stream.flush()
            except (OSError, ValueError):
                pass  # standard error is gone or closed: nowhere left to say so


class _SinkHandler(logging.Handler):
    """Formats records where they are logged (so a line names the request being served)
    and hands the lines to the sink."""

    def __init__(self, sink: LineSink, formatter: _Formatter) -> None:
        super().__init__()
        self.sink = sink
        self.line_formatter = formatter
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.sink.write(line)

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        self.sink.flush()  # what was kept is written, whoever closes the handler
        super().close()


# The handler ``configure`` installed, through which request lines may skip making a
# LogRecord; None until then (the tests' in-process apps log through plain logging).
_installed: _SinkHandler | None = None


def configure(service: str, log_format: str, level: str = "INFO") -> None:
    """Send every logger's records to standard error in ``log_format`` (json or text)."""
    global _installed
    formatter: _Formatter = (
        TextFormatter(service) if log_format.lower() == "text" else JsonFormatter(service)
    )
    handler = _SinkHandler(LineSink(sys.stderr), formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    _installed = handler
    # No line names the source file, thread or process that logged it, so they are not
    # looked up for every record (the logging HOWTO's "Optimization"): a third of the
    # cost of a request's line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _only_installed_handler(level: int) -> _SinkHandler | None:
    """The installed handler when it is the one place a tessera.access record of ``level``
    would go, unfiltered; else None (a test's handler, a filter), and the record is made."""
    handler = _installed
    if handler is None or level < handler.level or handler.filters:
        return None
    logger: logging.Logger | None = access_log
    while logger is not None:
        if logger.filters:
            return None
        if logger.handlers:
            only = len(logger.handlers) == 1 and logger.handlers[0] is handler
            return handler if only and logger.parent is None else None
        if not logger.propagate:
            return None
        logger = logger.parent
    return None


def logged_method(request: web.Request) -> str:
    """The method when it is a standard one (RFC 9110 §9, RFC 5789), else its fingerprint:
    a method is any token the caller chose."""
    method = request.method
    return method if method in hdrs.METH_ALL else fingerprint.of(method)


def logged_path(request: web.Request, status: int) -> str:
    """The path as sent (percent-encoded, so no control characters), without the query,
    when it is one Tessera serves: a fixed route's, or any answered without error (an
    admin URL naming a client that exists). Else, say a secret pasted into the URL, its
    fingerprint: the route (``unmatched``, ``/admin/clients/{client_id}``) says the rest."""
    path = request.rel_url.raw_path
    if status >= 400 and not isinstance(request.match_info.route.resource, web.PlainResource):
        return fingerprint.of(path)
    return path if len(path) <= MAX_PATH_CHARS else path[:MAX_PATH_CHARS] + "..."


def log_request(
    request: web.Request, request_id: str, route: str, status: int, seconds: float
) -> None:
    """The request's one line on ``tessera.access``: what a handler added to it
    (``add_to_line``), method, route, path, status, duration_ms, remote and, behind a
    trusted proxy, the client's address (``shared.web.client_address``)."""
    level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    method = logged_method(request)
    fields: dict[str, object] = {
        **redact(request.get(LINE_FIELDS, {})),
        "method": method,
        "route": route,
        "path": logged_path(request, status),
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "remote": request.remote,
    }
    settings = request.app[SETTINGS]
    if settings.trusted_proxies:
        # Behind the ingress: the address it saw, as rate limits count it.
        client = client_address(request, settings)
        if client != request.remote:
            fields["client"] = client
    handler = _only_installed_handler(level)
    if handler is None:
        access_log.log(level, "%s %s %d", method, route, status, extra={FIELDS_ATTRIBUTE: fields})
        return
    message = f"{method} {route} {status}"
    try:
        line = handler.line_formatter.access_line(level, message, request_id, fields)
    except Exception:
        # As logging does with a record it cannot format: say so, never fail the request.
        access_log.exception("could not format the line of %s", message)
        return
    handler.sink.write(line)
