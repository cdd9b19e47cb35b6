"""When Redis does not answer, every endpoint says server_error and shows no stack trace."""

from __future__ import annotations

import pytest
from aiohttp import web

from services.authorize.app import create_app as authorize_app
from services.introspect.app import create_app as introspect_app
from services.token.app import create_app as token_app
from tests.oauth import FORWARDED_HTTPS, unreachable_redis


@pytest.mark.parametrize(
    ("create_app", "path"), [(token_app, "/token"), (introspect_app, "/introspect")]
)
async def test_json_endpoints_answer_server_error(aiohttp_client, create_app, path: str) -> None:
    client = await aiohttp_client(create_app(unreachable_redis()), headers=FORWARDED_HTTPS)
    response = await client.post(
        path,
        data={"grant_type": "authorization_code", "code": "x.y", "token": "x.y"},
        headers={"Authorization": "Basic YTpi"},
    )
    assert response.status == 500
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["error"] == "server_error"
    assert "Traceback" not in await response.text()
    assert "Redis" not in body["error_description"]


async def test_authorize_shows_an_error_page(aiohttp_client) -> None:
    app: web.Application = authorize_app(unreachable_redis())
    client = await aiohttp_client(app, headers=FORWARDED_HTTPS)
    response = await client.get("/authorize", params={"client_id": "c", "response_type": "code"})
    assert response.status == 500
    page = await response.text()
    assert "server_error" in page
    assert "Traceback" not in page
    assert response.headers["X-Frame-Options"] == "DENY"
