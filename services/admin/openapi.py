"""``GET /openapi.json``: the admin API's OpenAPI 3.1 document, kept beside this module as
YAML (``openapi.yaml``) and served as JSON, converted once when the application is made.
Anyone may read it: it describes the API, it opens nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

DOCUMENT = Path(__file__).with_name("openapi.yaml")
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi_json")


def load() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return document


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def add_routes(app: web.Application) -> None:
    app[OPENAPI] = orjson.dumps(load())
    app.router.add_get("/openapi.json", openapi_json)
