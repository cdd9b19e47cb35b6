"""The admin API's HTTP client (the contract: ``services/admin/openapi.yaml``): one
connection pool for a whole command, requests made one at a time.

The commands are synchronous code; aiohttp (already Tessera's HTTP library) runs on an
event loop of the client's own (``asyncio.Runner``), so nothing else needs to know it is
asynchronous. Every answer of 400 or more becomes an ``ApiError`` carrying the RFC 9457
problem details the API sends; a server that cannot be reached, an ``Unreachable``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

API_VERSION_PATH = "/v1"
# The API's default page (its ?limit= goes to 500); listings follow next_cursor to the end.
PAGE_SIZE = 100
# Long enough for a DELETE that revokes a client's many grants, short enough that a
# command never hangs on a server that accepted the connection and went silent.
TIMEOUT_SECONDS = 60
MERGE_PATCH = "application/merge-patch+json"


@dataclass(eq=False)
class ApiError(Exception):
    """The API refused a request: its status and problem details (RFC 9457 §3)."""

    status: int
    title: str
    detail: str
    # The "errors" extension of validation problems: {"field": ..., "message": ...}.
    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        """One line: the detail (else the title), and each field's message it does not
        already say."""
        said = self.detail or self.title or f"HTTP {self.status}"
        extra = []
        for error in self.errors:
            field, message = error.get("field"), str(error.get("message") or "")
            if message and message in said:
                if field and field not in said:
                    said = f"{field}: {said}"
            else:
                extra.append(f"{field}: {message}" if field else message)
        return f"{said} ({'; '.join(extra)})" if extra else said


class Unreachable(Exception):
    """No answer from the server: refused, timed out, not HTTP, or a bad TLS certificate."""


def base_url(server: str) -> str:
    """The API's base URL for ``--server``: the admin port's root, with or without /v1.
    ValueError when it is not an absolute http(s) URL."""
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--server {server!r} is not an http:// or https:// URL")
    root = server.rstrip("/")
    return root if root.endswith(API_VERSION_PATH) else root + API_VERSION_PATH


def segment(value: str) -> str:
    """A name as one path segment: a client id or username may hold "/" or "%"."""
    return quote(value, safe="")


def _problem(status: int, reason: str, raw: bytes) -> ApiError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        # Not the API (a proxy's error page, another server on the port): no body shown.
        return ApiError(status, reason, f"HTTP {status} {reason} (not a problem details answer)")
    errors = body.get("errors")
    return ApiError(
        status,
        str(body.get("title") or reason),
        str(body.get("detail") or ""),
        [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
    )


class AdminAPI:
    """``with AdminAPI(server, credential) as api: api.get("/clients/ID")``."""

    def __init__(self, server: str, credential: str) -> None:
        self.server = server
        self._base = base_url(server)
        self._headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json"}
        self._runner = asyncio.Runner()
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> AdminAPI:
        self._session = self._runner.run(self._open())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._session is not None:
            self._runner.run(self._session.close())
        self._runner.close()

    async def _open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            headers=self._headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        )

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: object = None) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: object) -> Any:
        """A JSON Merge Patch (RFC 7396): the fields named are set, null clears one."""
        return self.request("PATCH", path, body=body, media_type=MERGE_PATCH)

    def put(self, path: str, body: object) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def list_all(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a listing, page after page (``next_cursor``)."""
        return self.list_some(path, params, None)

    def list_some(
        self, path: str, params: dict[str, str] | None, at_most: int | None
    ) -> list[dict[str, Any]]:
        """The items of a listing, page after page, up to ``at_most`` (None: all)."""
        items: list[dict[str, Any]] = []
        query = {**(params or {}), "limit": str(min(PAGE_SIZE, at_most or PAGE_SIZE))}
        while at_most is None or len(items) < at_most:
            page = self.get(path, query)
            items += page["items"]
            if not page.get("next_cursor"):
                break
            query["cursor"] = page["next_cursor"]
        return items if at_most is None else items[:at_most]

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: object = None,
        media_type: str = "application/json",
    ) -> Any:
        """The decoded JSON answer (None for 204); ApiError, or Unreachable."""
        return self._runner.run(self._request(method, path, params, body, media_type))

    async def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: object,
        media_type: str,
    ) -> Any:
        assert self._session is not None, "AdminAPI is used inside its with block"
        data = None if body is None else orjson.dumps(body)
        headers = {} if data is None else {"Content-Type": media_type}
        try:
            async with self._session.request(
                method, self._base + path, params=params, data=data, headers=headers
            ) as reply:
                raw = await reply.read()
                if reply.status >= 400:
                    raise _problem(reply.status, reply.reason or "", raw)
                if reply.status == 204 or not raw:
                    return None
                return orjson.loads(raw)
        except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError) as exc:
            reason = str(exc) or type(exc).__name__
            raise Unreachable(f"cannot reach the admin API at {self.server}: {reason}") from None
