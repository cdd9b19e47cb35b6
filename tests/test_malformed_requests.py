"""Every malformed request is a 4xx: 400 ``invalid_request`` (RFC 6749 §5.2) from the
APIs, the error page from the authorize service, and a log line that says why at INFO,
never a 500 or a traceback.

Each kind of payload error, sent to the real services: a content coding on a form
(``Content-Encoding: gzip`` on a plain body was a 500), percent-encoding that is broken
or no UTF-8, control characters, a body that is not a form, one too large, header octets
that are no UTF-8, a client that stops within its body, and requests aiohttp cannot
parse at all. tests/test_fuzz_requests.py looks for more with random requests.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import secrets
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis
from yarl import URL

from tests.assertions import assert_error, assert_error_page
from tests.records import make_resource_server, make_scope
from tests.replies import basic_auth_for, fetch, post_form
from tests.stack import Stack, logged_lines

FORM = "application/x-www-form-urlencoded"
NO_CODING = "The request body must not have a content coding."


SERVICES = ("authorize", "token", "introspect")


@pytest.fixture(autouse=True)
async def logs_no_error(stack: Stack, http: aiohttp.ClientSession) -> AsyncIterator[None]:
    """Each test here: the services log no ERROR line and no traceback for its requests."""
    urls = {"authorize": stack.authorize, "token": stack.token, "introspect": stack.introspect}
    before = {name: len(await logged_lines(http, urls[name], name)) for name in SERVICES}
    yield
    for name in SERVICES:
        new = (await logged_lines(http, urls[name], name))[before[name] :]
        errors = [
            line
            for line in new
            if line["level"] in ("ERROR", "CRITICAL") or "Traceback" in line.get("exception", "")
        ]
        assert errors == [], (name, errors[:3])


def api_endpoints(stack: Stack) -> list[tuple[str, dict[str, str]]]:
    """The form-reading endpoints of the token and introspection services."""
    return [
        (f"{stack.token}/token", {}),
        (stack.revoke, {}),
        (f"{stack.introspect}/introspect", {}),
    ]


# --- a content coding on a form: refused, whatever the body ---------------------------


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        pytest.param("gzip", b"grant_type=client_credentials", id="gzip-on-a-plain-body"),
        pytest.param("gzip", gzip.compress(b"grant_type=x"), id="gzip"),
        pytest.param("gzip", gzip.compress(b"grant_type=x")[:12], id="gzip-cut-short"),
        pytest.param("deflate", b"token=x", id="deflate-on-a-plain-body"),
        pytest.param("deflate", zlib.compress(b"token=x"), id="deflate"),
        pytest.param("br", b"token=x", id="br"),
        pytest.param("zstd", b"token=x", id="zstd"),
        pytest.param("x-made-up", b"token=x", id="unknown"),
        pytest.param("identity, gzip", b"token=x", id="identity-then-gzip"),
    ],
)
async def test_a_form_with_a_content_coding_is_invalid_request(
    stack: Stack, http: aiohttp.ClientSession, coding: str, body: bytes
) -> None:
    for url, headers in api_endpoints(stack):
        reply = await post_form(
            http, url, body, {**headers, "Content-Type": FORM, "Content-Encoding": coding}
        )
        assert_error(reply, 400, "invalid_request")
        assert reply.body["error_description"] == NO_CODING, url


async def test_the_browser_gets_the_error_page_for_a_form_with_a_content_coding(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for path in ("/authorize", "/login", "/consent", "/logout", "/connected-apps"):
        answer = await fetch(
            http,
            "POST",
            f"{stack.authorize}{path}",
            data=b"client_id=x",
            headers={"Content-Type": FORM, "Content-Encoding": "gzip"},
        )
        assert_error_page(answer, NO_CODING)


async def test_identity_is_no_content_coding(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    api = await make_resource_server(redis, [await make_scope(redis)])
    headers = {**basic_auth_for(api), "Content-Type": FORM, "Content-Encoding": "identity"}
    reply = await post_form(http, f"{stack.introspect}/introspect", b"token=x", headers)
    assert (reply.status, reply.body) == (200, {"active": False})


async def test_a_charset_label_is_not_read_the_octets_are_utf8(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """RFC 6749 Appendix B: a percent-encoded form is ASCII on the wire, which reads the
    same in any charset a client names (Java's HTTP clients name ISO-8859-1)."""
    api = await make_resource_server(redis, [await make_scope(redis)])
    for charset in ("ISO-8859-1", "utf-8", "no-such-charset"):
        headers = {**basic_auth_for(api), "Content-Type": f"{FORM}; charset={charset}"}
        reply = await post_form(http, f"{stack.introspect}/introspect", b"token=x", headers)
        assert (reply.status, reply.body) == (200, {"active": False}), charset


# --- parameters that cannot be read ------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "description"),
    [
        ("grant_type=%zz", "The request body has a malformed percent-encoding."),
        ("grant_type=client_credentials&x=%", "The request body has a malformed percent-encoding."),
        ("grant_type=%2", "The request body has a malformed percent-encoding."),
        ("grant_type=%ff", "The request body is not valid UTF-8."),
        ("username=%c3%28", "The request body is not valid UTF-8."),
        ("grant_type=a%00b", "The request body holds a control character."),
        ("state=a%0d%0ab", "The request body holds a control character."),
        ("%01=x", "The request body holds a control character."),
    ],
)
async def test_a_form_that_cannot_be_read_is_invalid_request(
    stack: Stack, http: aiohttp.ClientSession, encoded: str, description: str
) -> None:
    for url, headers in api_endpoints(stack):
        reply = await post_form(http, url, encoded, {**headers, "Content-Type": FORM})
        assert_error(reply, 400, "invalid_request")
        assert reply.body["error_description"] == description, url


async def test_raw_octets_that_are_no_utf8_or_a_nul_are_invalid_request(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for body, description in [
        (b"grant_type=\xff", "The request body is not valid UTF-8."),
        (b"grant_type=a\x00b", "The request body holds a control character."),
    ]:
        reply = await post_form(http, f"{stack.token}/token", body, {"Content-Type": FORM})
        assert_error(reply, 400, "invalid_request")
        assert reply.body["error_description"] == description


@pytest.mark.parametrize(
    ("query", "description"),
    [
        ("client=%zz", "The query has a malformed percent-encoding."),
        ("client=%ff", "The query is not valid UTF-8."),
    ],
)
async def test_a_query_that_cannot_be_read_is_refused_before_any_handler(
    stack: Stack, http: aiohttp.ClientSession, query: str, description: str
) -> None:
    # yarl would have read these as other characters: U+FFFD, or "%zz" as it stands.
    for url in [f"{stack.token}/jwks.json", f"{stack.introspect}/scopes"]:
        async with http.get(URL(f"{url}?{query}", encoded=True)) as r:
            reply_body = await r.json()
            assert r.status == 400, url
        assert reply_body == {"error": "invalid_request", "error_description": description}
    answer = await fetch(http, "GET", URL(f"{stack.authorize}/authorize?{query}", encoded=True))
    assert_error_page(answer, description)


async def test_a_body_that_is_not_a_form_is_invalid_request(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    multipart = b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\nx\r\n--b--\r\n'
    for body, content_type in [
        (b'{"token": "x"}', "application/json"),
        (multipart, "multipart/form-data; boundary=b"),
        (b"token=x", "text/plain"),
        (b"token=x", ""),
    ]:
        for url, headers in api_endpoints(stack):
            reply = await post_form(http, url, body, {**headers, "Content-Type": content_type})
            assert_error(reply, 400, "invalid_request")
            assert reply.body["error_description"] == f"The request body must be {FORM}."


async def test_a_body_beyond_the_size_limit_is_413(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    body = b"token=" + b"x" * (1024 * 1024)
    for url, headers in api_endpoints(stack):
        sent = io.BytesIO(body)  # aiohttp warns that a large bytes body holds up its loop
        async with http.post(url, data=sent, headers={**headers, "Content-Type": FORM}) as r:
            assert r.status == 413, url


# --- what only a hand-written request carries --------------------------------------------


async def raw_request(url: str, request: bytes, *, stop_early: bool = False) -> bytes:
    """``request`` written as it stands (no client library sends octets that are no
    UTF-8 in a header, nor stops within its body); the answer's status line, or b""
    when the server owed none. ``stop_early``: the client closes its side after it."""
    parsed = URL(url)
    reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
    try:
        writer.write(request)
        if stop_early:
            writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    return answer.split(b"\r\n", 1)[0]


def request_id() -> str:
    return secrets.token_hex(16)


async def test_header_octets_that_are_no_utf8_are_a_refusal_not_a_500(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """aiohttp keeps such octets as lone surrogates, which the digest of a bearer token
    could not encode: the admin API answered 500 until digests took the octets as sent."""
    close = b"Connection: close\r\n\r\n"
    admin = b"GET /v1/tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \xff\xfe\r\n"
    assert await raw_request(stack.admin, admin + close) == b"HTTP/1.1 401 Unauthorized"
    basic = (
        b"POST /token HTTP/1.1\r\nHost: t\r\nAuthorization: Basic \xff\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n"
    )
    assert await raw_request(stack.token, basic + close + b"a=b") == b"HTTP/1.1 401 Unauthorized"
    cookie = (
        b"GET /login?next=/connected-apps HTTP/1.1\r\nHost: a\r\n"
        b"Cookie: tessera_session=" + b"\xff" * 43 + b"\r\n"
    )
    assert await raw_request(stack.authorize, cookie + close) == b"HTTP/1.1 200 OK"


async def test_a_client_that_stops_within_its_body_is_logged_as_such(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    rid = request_id()
    cut = (
        f"POST /token HTTP/1.1\r\nHost: t\r\nX-Request-ID: {rid}\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: 100\r\n\r\ngrant_type=cl"
    ).encode()
    assert await raw_request(stack.token, cut, stop_early=True) == b""

    lines = [
        line
        for line in await logged_lines(http, stack.token, "token")
        if line.get("request_id") == rid
    ]
    assert [line["level"] for line in lines] == ["INFO", "INFO"], lines
    refused, access = lines
    assert "the client closed the connection within its body" in refused["message"]
    assert (access["route"], access["status"]) == ("/token", 400)


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        pytest.param(
            b"GET /jwks.json HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"p" * 9000 + b"\r\n\r\n",
            "LineTooLong",
            id="a-header-line-beyond-8190-octets",
        ),
        pytest.param(
            b"POST /token HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "BadHttpMessage",
            id="a-chunk-size-that-is-no-number",
        ),
        pytest.param(
            b"GET /jwks.json HTTP/1.1\r\nHost: t\r\nX-Thing: a\x00b\r\n\r\n",
            "BadHttpMessage",
            id="a-nul-in-a-header",
        ),
    ],
)
async def test_a_request_aiohttp_cannot_parse_is_400_and_logged_at_info(
    stack: Stack, http: aiohttp.ClientSession, request_bytes: bytes, error: str
) -> None:
    before = len(await logged_lines(http, stack.token, "token"))
    status_line = await raw_request(stack.token, request_bytes)
    assert status_line.split(b" ")[1] == b"400", status_line

    new = (await logged_lines(http, stack.token, "token"))[before:]
    refused = [line for line in new if line["logger"] == "tessera.http"]
    assert [(line["level"], line["message"]) for line in refused] == [
        ("INFO", f"malformed or abandoned request: {error} (answered HTTP 400)")
    ], new
    assert not [line for line in new if line["level"] in ("ERROR", "CRITICAL")], new
    assert all("exception" not in line for line in refused)
