"""``make run``: Redis, the three services, a demo client and user, and the example
resource server (the notes API of ``services.example_api``), on loopback.

Data lives in ``var/redis`` with the append-only file on, so a restart keeps clients,
users and tokens. Set ``REDIS_URL`` to use a Redis of your own instead. Ctrl-C stops
everything this started. ``TESSERA_DEV_DIR`` and ``TESSERA_DEV_PORTS`` (authorize, token,
introspect, demo app, Redis and, optionally, the example API; comma-separated) move it
elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from services.example_api.app import READ as NOTES_READ
from services.example_api.app import SCOPE_RESOURCES
from services.example_api.app import WRITE as NOTES_WRITE
from shared import clients, crypto, pkce, scopes, users
from shared.local_processes import (
    SERVICES,
    ProcessGroup,
    ensure_signing_key,
    service_env,
    start_redis,
    start_service,
)
from shared.redis_store import RedisClient, connect

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = "9000,9001,9002,9009,6390,9003"
DEFAULT_EXAMPLE_API_PORT = 9003
# Defined by earlier releases of make run; kept so their demo clients stay valid.
DEMO_SCOPE = "api:read"
# The example API's scopes: the walkthrough asks for NOTES_READ only, so that
# NOTES_WRITE shows a refusal.
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


@dataclass(frozen=True)
class Layout:
    """Where `make run` puts things."""

    var: Path
    ports: dict[str, int]
    callback_port: int
    redis_port: int
    example_api_port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Layout:
        ports = [int(p) for p in env.get("TESSERA_DEV_PORTS", DEFAULT_PORTS).split(",")]
        return cls(
            var=Path(env.get("TESSERA_DEV_DIR", ROOT / "var")),
            ports=dict(zip(SERVICES, ports[:3], strict=True)),
            callback_port=ports[3],
            redis_port=ports[4],
            example_api_port=ports[5] if len(ports) > 5 else DEFAULT_EXAMPLE_API_PORT,
        )

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.callback_port}/callback"

    @property
    def demo_file(self) -> Path:
        """The demo clients' ids and the demo API's secret (shown once by the CLI)."""
        return self.var / "demo-clients.json"


async def seed_demo(redis_url: str, layout: Layout) -> dict[str, str]:
    """Create the demo scopes, user and clients unless they exist; returns their
    credentials. The demo API client is also the example API's own client: a resource
    server that introspects tokens and reads the scope definitions."""
    redis = connect(redis_url)
    try:
        if not await scopes.get_many(redis, [DEMO_SCOPE]):
            await scopes.add(redis, DEMO_SCOPE, "Read your demo data")
        notes_scopes = {NOTES_READ: "Read your notes", NOTES_WRITE: "Write notes"}
        defined = await scopes.get_many(redis, list(notes_scopes))
        for name, description in notes_scopes.items():
            if name not in defined:
                await scopes.add(redis, name, description, SCOPE_RESOURCES[name])
        all_scopes = [DEMO_SCOPE, *notes_scopes]
        if await users.get(redis, DEMO_USER) is None:
            await users.add(redis, DEMO_USER, DEMO_PASSWORD)
        demo = orjson.loads(layout.demo_file.read_bytes()) if layout.demo_file.exists() else {}
        if not demo.get("app_id") or await clients.get(redis, demo["app_id"]) is None:
            app, _ = await clients.create(
                redis,
                name="Demo App",
                version="1.0",
                description="A public client (a single-page or native app) using PKCE.",
                client_type="public",
                redirect_uris=[layout.redirect_uri],
                grants=["authorization_code"],
                scope_names=all_scopes,
            )
            demo["app_id"] = app.client_id
        else:
            await _register_for(redis, demo["app_id"], all_scopes)  # from an earlier release
        if not demo.get("api_id") or await clients.get(redis, demo["api_id"]) is None:
            api, secret = await clients.create(
                redis,
                name="Demo API",
                description="A resource server that introspects tokens.",
                client_type="confidential",
                redirect_uris=[layout.redirect_uri],
                grants=["authorization_code"],
                scope_names=all_scopes,
                introspect=True,
            )
            demo["api_id"], demo["api_secret"] = api.client_id, secret or ""
        layout.demo_file.write_bytes(orjson.dumps(demo))
        layout.demo_file.chmod(0o600)
        return demo
    finally:
        await redis.aclose()


async def _register_for(redis: RedisClient, client_id: str, names: list[str]) -> None:
    client = await clients.get(redis, client_id)
    if client is not None and not set(names) <= set(client.scopes):
        client.scopes = list(dict.fromkeys([*client.scopes, *names]))
        await clients.save(redis, client)


def exchange_command(
    token_url: str, client_id: str, redirect_uri: str, verifier: str, code: str
) -> str:
    return (
        f"curl -s {token_url}/token -d grant_type=authorization_code \\\n"
        f"  -d client_id={client_id} -d redirect_uri={redirect_uri} \\\n"
        f"  -d code_verifier={verifier} -d code={code}"
    )


def serve_demo_callback(layout: Layout, token_url: str, client_id: str, verifier: str) -> None:
    """The demo app's redirect URI: shows the code (or error) and the exchange command."""

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if "code" in query:
                command = exchange_command(
                    token_url, client_id, layout.redirect_uri, verifier, query["code"]
                )
                text = f"Authorization code received. Exchange it within 10 minutes:\n\n{command}\n"
            else:
                text = f"No code: {query.get('error', '?')}: {query.get('error_description', '')}\n"
            body = f"<!doctype html><title>Demo app</title><pre>{html.escape(text)}</pre>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", layout.callback_port), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def walkthrough(urls: dict[str, str], layout: Layout, demo: dict[str, str], verifier: str) -> str:
    authorize_url = f"{urls['authorize']}/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": demo["app_id"],
            "redirect_uri": layout.redirect_uri,
            "scope": NOTES_READ,
            "state": crypto.random_token(8),
            "code_challenge": pkce.s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    command = exchange_command(urls["token"], demo["app_id"], layout.redirect_uri, verifier, "CODE")
    return f"""
Tessera is running. Issuer: {urls["authorize"]}
  metadata:   {urls["authorize"]}/.well-known/oauth-authorization-server
  token:      {urls["token"]}/token
  introspect: {urls["introspect"]}/introspect
  notes API:  {urls["example_api"]}/notes (the example resource server)

Demo user:   {DEMO_USER} / {DEMO_PASSWORD}
Demo app:    client_id {demo["app_id"]} (public, PKCE S256)
Demo API:    client_id {demo["api_id"]} client_secret {demo["api_secret"]} (may introspect)

1. Open this URL in a browser, sign in as {DEMO_USER} and approve:

   {authorize_url}

2. The browser lands on the demo app at {layout.redirect_uri}, which shows the code
   and this command with the code filled in; run it within 10 minutes:

{textwrap.indent(command, "   ")}

3. Introspect the access token as the demo API:

   curl -s {urls["introspect"]}/introspect -u '{demo["api_id"]}:{demo["api_secret"]}' \\
     -d token=PASTE_THE_ACCESS_TOKEN

4. Call the example API (a resource server that checks the token with Tessera) with it:

   curl -s {urls["example_api"]}/notes -H 'Authorization: Bearer PASTE_THE_ACCESS_TOKEN'

   The token holds {NOTES_READ} only, so writing a note is refused with 403
   insufficient_scope (the WWW-Authenticate header names {NOTES_WRITE}):

   curl -si {urls["example_api"]}/notes -H 'Authorization: Bearer PASTE_THE_ACCESS_TOKEN' \\
     -H 'Content-Type: application/json' -d '{{"text": "hello"}}'

Logs are in {layout.var}/<service>.log. Press Ctrl-C to stop.
"""


def example_api_env(urls: dict[str, str], demo: dict[str, str]) -> dict[str, str]:
    """The example API's settings (shared.resource_server.settings): the demo API client's
    credentials, both ways of checking a token, and Tessera's scope definitions enforced."""
    return {
        "TESSERA_LOG_FORMAT": "text",
        "RESOURCE_SERVER_ISSUER": urls["authorize"],
        "RESOURCE_SERVER_INTROSPECTION_ENDPOINT": f"{urls['introspect']}/introspect",
        "RESOURCE_SERVER_CLIENT_ID": demo["api_id"],
        "RESOURCE_SERVER_CLIENT_SECRET": demo["api_secret"],
        "RESOURCE_SERVER_JWKS_URI": f"{urls['token']}/jwks.json",
        "RESOURCE_SERVER_REALM": "notes",
        "RESOURCE_SERVER_ENFORCE_SCOPE_RESOURCES": "1",
        "RESOURCE_SERVER_SCOPE_PREFIX": "notes:",
        # Short, so a token revoked in the demo is refused within seconds.
        "RESOURCE_SERVER_CACHE_SECONDS": "5",
    }


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # The walkthrough promises Ctrl-C. A shell without job control starts a background
    # command with SIGINT ignored (POSIX, Shell Command Language §2.11), and Python then
    # keeps it ignored: take it back, so that `kill -INT` stops `make run` there too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # The children run in sessions of their own (shared.local_processes), out of reach of
    # a closed terminal's SIGHUP: stop them on it, as on SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    layout = Layout.from_env(os.environ)
    layout.var.mkdir(parents=True, exist_ok=True)
    group = ProcessGroup()
    try:
        redis_url = os.environ.get("REDIS_URL") or start_redis(
            group, layout.redis_port, layout.var / "redis", persistent=True
        )
        demo = asyncio.run(seed_demo(redis_url, layout))
        # Logs in var/ are read by a person: plain text rather than production's JSON.
        env = service_env(redis_url, layout.ports, ensure_signing_key(layout.var / "keys")) | {
            "TESSERA_LOG_FORMAT": "text"
        }
        urls = {
            name: start_service(
                group, name, layout.ports[name], env, log=layout.var / f"{name}.log"
            )
            for name in SERVICES
        }
        urls["example_api"] = start_service(
            group,
            "example_api",
            layout.example_api_port,
            example_api_env(urls, demo),
            log=layout.var / "example_api.log",
        )
        verifier = crypto.random_token(32)
        serve_demo_callback(layout, urls["token"], demo["app_id"], verifier)
        print(walkthrough(urls, layout, demo, verifier), flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, OSError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    finally:
        # Whoever started us may be gone (a closed terminal or pipe): stop the children
        # all the same.
        with contextlib.suppress(OSError):
            print("\nStopping...", flush=True)
        group.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
