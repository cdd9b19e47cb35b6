"""Hypothesis strategies for HTTP requests a careless or hostile client might send: odd
methods, query strings with broken percent-encoding, bodies whose Content-Type and
Content-Encoding do not match them, bad credentials and cookies, forwarded headers, and
the routes to send them to (read from the services' routers, so that a new route is
fuzzed without anyone listing it here).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, quote_from_bytes

from aiohttp import web
from hypothesis import strategies as st


@dataclass(frozen=True)
class Route:
    """One route of one service: where it is served and how its paths look."""

    service: str
    base_url: str
    method: str
    # A plain path, a regular expression for a path with variables, or a static prefix.
    path: str | None = None
    pattern: re.Pattern[str] | None = None
    prefix: str | None = None


def routes_of(service: str, base_url: str, app: web.Application) -> list[Route]:
    """Every route of ``app``'s router, and paths it has no route for."""
    found = [Route(service, base_url, "GET", prefix="/")]
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        found.append(
            Route(
                service,
                base_url,
                route.method,
                path=info.get("path"),
                pattern=info.get("pattern"),
                prefix=info.get("prefix"),
            )
        )
    return found


@dataclass
class Vocabulary:
    """The stack's real identifiers and credentials, which a fuzzed request draws on
    beside random values, so that some reach past the first check of a handler."""

    client_ids: list[str] = field(default_factory=list)
    # Authorization header values that authenticate (a client's Basic, the admin token).
    credentials: list[str] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)


# The parameter names of the protocol and of Tessera's forms.
PARAMETERS = """
    response_type client_id redirect_uri scope state nonce prompt code_challenge
    code_challenge_method grant_type code code_verifier refresh_token username password
    client_secret token token_type_hint interaction next csrf_token decision revoked
    client user access_token response_mode
""".split()
WORDS = [
    "code",
    "token",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "S256",
    "plain",
    "none",
    "login",
    "consent",
    "approve",
    "deny",
    "access_token",
    "/connected-apps",
    "1",
    "",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]
# Percent-encoding gone wrong, and the separators a parser might trip on.
BROKEN_ESCAPES = [
    "%",
    "%z",
    "%zz",
    "%ff",
    "%c3%28",
    "%ed%a0%80",
    "%00",
    "%0a",
    "%%",
    "a=b=c",
    "=",
    "&",
    "&&",
    ";",
    "+",
    "%2",
    "%G0",
    "=%",
    "%e2%82",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=ISO-8859-1",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/x-www-form-urlencoded; charset=no-such-charset",
    'application/x-www-form-urlencoded; charset="utf-8"; x=',
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/json",
    "multipart/form-data; boundary=fuzz",
    "multipart/form-data",
    "text/plain",
    "text/html; charset=utf-8",
    ";;;",
    "/",
    "",
]
CONTENT_ENCODINGS = [
    "gzip",
    "deflate",
    "br",
    "zstd",
    "identity",
    "x-gzip",
    "compress",
    "gzip, gzip",
    "gzip, identity",
    "GZIP",
    "bogus",
    "",
]
# Paths no route serves, some aimed at what a static file server would look up.
ODD_PATHS = [
    "",
    "static/tessera.css/",
    "static/" + "x" * 300,
    "static/../app.py",
    "static/%2e%2e/app.py",
    "static/%00",
    "admin/",
    "admin/clients/x/delete",
    "%ff",
    "x" * 3000,
    "..",
    "token/",
    "//token",
]
FORWARDED_FOR = ["203.0.113.7", "2001:db8::1", "198.51.100.1, 127.0.0.1", "unknown", "::"]


def _header_text(max_size: int = 40) -> st.SearchStrategy[str]:
    # What an HTTP client can put in a header: Latin-1 without line breaks.
    return st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
        max_size=max_size,
    )


def _texts(vocabulary: Vocabulary) -> st.SearchStrategy[str]:
    known = vocabulary.client_ids + vocabulary.redirect_uris + vocabulary.scopes + WORDS
    return st.one_of(
        st.sampled_from(known),
        st.text(max_size=30),
        st.text(st.characters(max_codepoint=0x7F), max_size=30),
        st.integers(min_value=1, max_value=3000).map(lambda n: "x" * n),
        st.sampled_from(["\x00", "a\x00b", "line\nbreak", "\ud7ff\ue000", "é", "🔑"]),
    )


def _pairs(vocabulary: Vocabulary) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=12))
    return st.lists(st.tuples(names, _texts(vocabulary)), max_size=8)


def _encoded(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def encoded_query(vocabulary: Vocabulary) -> st.SearchStrategy[str]:
    """An already percent-encoded query string: well-formed pairs, broken escapes, bytes
    that are no UTF-8, or a mix."""
    part = st.one_of(
        _pairs(vocabulary).map(_encoded),
        st.sampled_from(BROKEN_ESCAPES),
        st.binary(max_size=12).map(lambda raw: "x=" + quote_from_bytes(raw, safe="")),
    )
    return st.lists(part, max_size=4).map("&".join)


def _gzip_truncated(raw: bytes) -> bytes:
    packed = gzip.compress(raw)
    return packed[: max(1, len(packed) // 2)]


def _multipart(pairs: list[tuple[str, str]]) -> bytes:
    parts = [
        f'--fuzz\r\nContent-Disposition: form-data; name="{quote(name)}"\r\n\r\n{value}\r\n'
        for name, value in pairs
    ]
    return ("".join(parts) + "--fuzz--\r\n").encode()


def bodies(vocabulary: Vocabulary) -> st.SearchStrategy[bytes]:
    """What a body may hold, whatever the headers say it is."""
    form = st.one_of(_pairs(vocabulary).map(_encoded), encoded_query(vocabulary)).map(str.encode)
    return st.one_of(
        st.just(b""),
        form,
        form,
        form.map(gzip.compress),
        form.map(zlib.compress),
        form.map(_gzip_truncated),
        st.binary(max_size=64).map(lambda raw: b"\x1f\x8b\x08\x00" + raw),  # a gzip header
        st.binary(max_size=256),
        _pairs(vocabulary).map(lambda pairs: json.dumps(dict(pairs)).encode()),
        _pairs(vocabulary).map(_multipart),
        st.sampled_from([b"{", b"[1,", b"\x00" * 16, b"grant_type=a\x00b", b"\xff\xfe=\xc3"]),
        st.just(OVERSIZED),
    )


class _Large(bytes):
    def __repr__(self) -> str:  # for Hypothesis's reports: not a megabyte of "x"
        return f"<{len(self)} bytes>"


# Beyond aiohttp's client_max_size (1 MiB): refused with 413.
OVERSIZED = _Large(b"a=" + b"x" * (1024 * 1024 + 1))


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def authorizations(vocabulary: Vocabulary) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(vocabulary.credentials or ["Basic Og=="]),
        st.binary(max_size=40).map(_basic),
        st.sampled_from(
            [
                "Basic",
                "Basic ",
                "Basic !!!",
                "Basic =",
                "Bearer",
                "Bearer ",
                "Bearer a b",
                "Digest username=x",
                "bearer x",
                "Basic " + "A" * 5000,
            ]
        ),
        _header_text().map(lambda text: "Bearer " + text),
        _header_text(),
    )


def headers(vocabulary: Vocabulary) -> st.SearchStrategy[dict[str, str]]:
    """Some of the headers Tessera reads, each with a likely, odd or random value."""
    choices: dict[str, st.SearchStrategy[str]] = {
        "Content-Type": st.one_of(
            st.just(CONTENT_TYPES[0]), st.sampled_from(CONTENT_TYPES), _header_text()
        ),
        "Content-Encoding": st.one_of(
            st.sampled_from(["gzip", "deflate"]),
            st.sampled_from(CONTENT_ENCODINGS),
            _header_text(12),
        ),
        "Authorization": authorizations(vocabulary),
        "Cookie": st.one_of(
            st.sampled_from(vocabulary.cookies or ["tessera_session=x"]),
            _header_text().map(lambda text: "tessera_session=" + text),
            _header_text(),
        ),
        "X-Forwarded-For": st.one_of(st.sampled_from(FORWARDED_FOR), _header_text(20)),
        "X-Forwarded-Proto": st.one_of(
            st.sampled_from(["https", "http", "HTTPS"]), _header_text(8)
        ),
        "X-Forwarded-Host": _header_text(20),
        "X-Request-ID": _header_text(80),
        "Accept": st.sampled_from(["text/html", "application/json", "*/*", ""]),
        # Oversized: past aiohttp's 8190-byte field limit.
        "X-Padding": st.integers(min_value=1, max_value=9000).map(lambda n: "p" * n),
    }
    return st.fixed_dictionaries({}, optional=choices)


# How the body travels: as aiohttp frames it, or as the test writes it byte by byte,
# since no client library sends a broken chunk or header bytes that are not UTF-8.
FRAMINGS = ["aiohttp", "length", "short-length", "chunked", "bad-chunked", "cut-chunked"]


@dataclass(frozen=True)
class FuzzRequest:
    service: str
    method: str
    url: str  # already percent-encoded
    headers: dict[str, str]
    body: bytes
    framing: str = "aiohttp"

    def summary(self) -> str:
        """One line for a failure message (the body by its length and first bytes)."""
        shown = {name: value[:60] for name, value in self.headers.items()}
        return (
            f"{self.method} {self.url[:200]} ({self.framing}) headers={shown} "
            f"body[{len(self.body)}]={self.body[:60]!r}"
        )


def _path(route: Route) -> st.SearchStrategy[str]:
    if route.path is not None:
        return st.just(route.path)
    if route.pattern is not None:
        return st.from_regex(route.pattern, fullmatch=True).map(lambda p: quote(p, safe="/"))
    prefix = route.prefix or "/"
    names = st.one_of(
        st.sampled_from(ODD_PATHS),
        st.text(st.characters(max_codepoint=0x7F), max_size=20).map(lambda t: quote(t, safe="")),
    )
    return names.map(lambda name: prefix.rstrip("/") + "/" + name)


def requests(routes: list[Route], vocabulary: Vocabulary) -> st.SearchStrategy[FuzzRequest]:
    """A request to one of ``routes``, with its own method or an odd one."""
    # Made once: Hypothesis validates a strategy when it is first drawn from.
    paths = {route: _path(route) for route in routes}
    methods = {
        route: st.one_of(st.just(route.method), st.sampled_from(METHODS)) for route in routes
    }
    queries = st.one_of(st.just(""), _pairs(vocabulary).map(_encoded), encoded_query(vocabulary))
    any_body = st.one_of(st.just(b""), bodies(vocabulary))
    any_headers = headers(vocabulary)
    framings = st.sampled_from(FRAMINGS)
    any_route = st.sampled_from(routes)

    @st.composite
    def build(draw: st.DrawFn) -> FuzzRequest:
        route = draw(any_route)
        method = draw(methods[route])
        query = draw(queries)
        url = route.base_url + draw(paths[route]) + (f"?{query}" if query else "")
        return FuzzRequest(
            route.service, method, url, draw(any_headers), draw(any_body), draw(framings)
        )

    return build()
