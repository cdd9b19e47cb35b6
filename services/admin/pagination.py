"""Pages of the admin API's listings: ``?limit=`` (1 to 500, 100 by default) and
``?cursor=``, the previous page's ``next_cursor``; the answer ``{"items": [...],
"next_cursor": "..." | null}``.

A cursor is the last key the previous page looked at (a client id, a username, an audit
event's id ...), base64url-encoded so that callers treat it as opaque
(``shared.storage.listing``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from services.admin.problems import invalid
from shared.web.base_app import json_response

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR = 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
    return int(raw)


def cursor(request: web.Request) -> str | None:
    """The key the previous page ended at, or None for the first page."""
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        if len(raw) > MAX_CURSOR or not _BASE64URL.fullmatch(raw):
            raise ValueError
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, binascii.Error):
        raise invalid("cursor is not one this API handed out", "cursor") from None


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()


def page(items: Sequence[Any], last: str | None) -> web.Response:
    return json_response({"items": list(items), "next_cursor": encode(last) if last else None})
