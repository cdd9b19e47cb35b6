"""``make run``: Redis, the three services, a demo client and user, and the example
resource server (the notes API of ``services.example_api``), on loopback.

Data lives in ``var/redis`` with the append-only file on, so a restart keeps clients,
users and tokens. Set ``REDIS_URL`` to use a Redis of your own instead. ``TESSERA_DEV_DIR``
and ``TESSERA_DEV_PORTS`` (authorize, token, introspect, demo app, Redis and, optionally,
the example API and the admin API; comma-separated) move it elsewhere. The admin API's
bootstrap credential is made once and kept in ``var/admin-token``.

It runs whole or not at all:

- It starts nothing while any port it needs is taken: whatever answers there is someone
  else's, and its demo clients must not land in someone else's Redis.
- Ctrl-C, SIGTERM or a hangup stops everything it started, services before Redis, and a
  second signal does not cut that short. Signals are blocked and taken with sigwait (see
  ``main``): start-up looks for one while it waits for a child to be ready, and nothing
  looks during the shutdown.
- Its children stop when it dies, even by SIGKILL (``devtools.stop_with_parent``).
- A child that dies is reported with its exit status and the end of its log, and the
  whole run stops (exit status 1): a crash in development is a bug to look at, and a
  restart would hide it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from devtools.local_processes import (
    SERVICES,
    ProcessGroup,
    StartInterrupted,
    cannot_listen_on,
    ensure_signing_key,
    exit_status,
    service_env,
    start_redis,
    start_service,
)
from services.example_api.app import READ as NOTES_READ
from services.example_api.app import SCOPE_RESOURCES
from services.example_api.app import WRITE as NOTES_WRITE
from shared.config.settings import password_hashing_from_env
from shared.security import crypto, pkce
from shared.storage import clients, scopes, users
from shared.storage.redis_store import RedisClient, connect
from shared.web.shutdown import FINISH_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = "9000,9001,9002,9009,6390,9003,9004"
DEFAULT_EXAMPLE_API_PORT = 9003
DEFAULT_ADMIN_API_PORT = 9004
# What each port of TESSERA_DEV_PORTS is for, in its order.
PORT_NAMES = ("authorize", "token", "introspect", "demo app", "Redis", "example API", "admin API")
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
# How many lines of a dead child's log to show.
LOG_TAIL_LINES = 10
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
    admin_api_port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Layout:
        """Raises ValueError with a message for the person who set TESSERA_DEV_PORTS."""
        setting = env.get("TESSERA_DEV_PORTS", DEFAULT_PORTS)
        try:
            ports = [int(p) for p in setting.split(",")]
        except ValueError:
            ports = []
        if not 5 <= len(ports) <= 7 or not all(0 < p < 65536 for p in ports):
            raise ValueError(
                f"TESSERA_DEV_PORTS={setting!r}: expected 5 to 7 port numbers, "
                f"comma-separated: {', '.join(PORT_NAMES)} (the last two optional)"
            )
        ports += [DEFAULT_EXAMPLE_API_PORT, DEFAULT_ADMIN_API_PORT][len(ports) - 5 :]
        if len(set(ports)) < len(ports):
            raise ValueError(
                f"TESSERA_DEV_PORTS={setting!r}: a port is named twice "
                f"(the example API's is {ports[5]}, the admin API's {ports[6]})"
            )
        return cls(
            var=Path(env.get("TESSERA_DEV_DIR", ROOT / "var")),
            ports=dict(zip(SERVICES, ports[:3], strict=True)),
            callback_port=ports[3],
            redis_port=ports[4],
            example_api_port=ports[5],
            admin_api_port=ports[6],
        )

    def needed_ports(self, *, redis: bool) -> dict[int, str]:
        """Every port make run listens on, with what it is for (Redis's only when it
        starts one)."""
        ports = [
            *self.ports.values(),
            self.callback_port,
            self.redis_port,
            self.example_api_port,
            self.admin_api_port,
        ]
        return {
            port: name
            for port, name in zip(ports, PORT_NAMES, strict=True)
            if redis or name != "Redis"
        }

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.callback_port}/callback"

    @property
    def admin_token_file(self) -> Path:
        """The admin API's bootstrap credential (TESSERA_ADMIN_TOKEN), made once."""
        return self.var / "admin-token"

    def admin_token(self) -> str:
        """The credential in ``admin_token_file``, made (readable by its owner only) when
        there is none."""
        if not self.admin_token_file.exists():
            self.admin_token_file.touch(mode=0o600)
            self.admin_token_file.write_text(crypto.random_token(32) + "\n")
        return self.admin_token_file.read_text().strip()

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
        # OpenID Connect's scopes are built in: the demo app may sign people in too.
        all_scopes = [DEMO_SCOPE, *notes_scopes, "openid", "profile", "email"]
        if await users.get(redis, DEMO_USER) is None:
            await users.add(redis, DEMO_USER, DEMO_PASSWORD, password_hashing_from_env())
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
  admin API:  {urls["admin"]}/v1 (bearer credential in {layout.admin_token_file};
              its OpenAPI description: {urls["admin"]}/openapi.json)

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
    """The example API's settings (tessera_resource_server.settings): the demo API client's
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


def ports_in_use(ports: dict[int, str]) -> list[str]:
    """One line for each port another program holds (or that cannot be listened on)."""
    return [
        f"port {port} ({name}): {reason}"
        for port, name in ports.items()
        if (reason := cannot_listen_on(port)) is not None
    ]


def stop_requested() -> bool:
    """Whether a stop signal waits (blocked, see ``main``)."""
    return bool(signal.sigpending() & STOP_SIGNALS)


def stop_seconds(drain: str) -> float:
    """How long a service may take to stop before it is killed: its drain, then the time
    requests in flight have to finish (shared.web.shutdown)."""
    return (int(drain) if drain.isdecimal() else 0) + FINISH_SECONDS


def supervise(groups: list[ProcessGroup]) -> int:
    """Run until a stop signal (0) or until a child dies (reported; 1)."""
    while True:
        for group in groups:
            if (dead := group.first_exited()) is not None:
                report_death(group, dead)
                return 1
        # SIGCHLD wakes us when a child dies; blocked, it waits here if that came first.
        if signal.sigwait(STOP_SIGNALS | {signal.SIGCHLD}) in STOP_SIGNALS:
            return 0


def report_death(group: ProcessGroup, process: subprocess.Popen[bytes]) -> None:
    name, log = group.names[process.pid], group.logs.get(process.pid)
    lines = [f"make run: {name} {exit_status(process.returncode)}; stopping everything."]
    if log is not None:
        lines.append(f"The end of its log, {log}:")
        lines += (f"  {line}" for line in tail(log, LOG_TAIL_LINES))
    _say("\n".join(lines), sys.stderr)


def tail(path: Path, count: int) -> list[str]:
    with open(path, "rb") as file:
        file.seek(max(0, file.seek(0, os.SEEK_END) - 200 * count))
        return file.read().decode(errors="replace").splitlines()[-count:]


def _say(text: str, stream: TextIO | None = None) -> None:
    # Whoever started us may be gone (a closed terminal or pipe): carry on all the same.
    with contextlib.suppress(OSError):
        print(text, file=stream, flush=True)


def main() -> int:
    # Ctrl-C, SIGTERM and a hangup (a closed terminal: the children run in sessions of
    # their own, out of its reach) are blocked here, before any thread starts, so every
    # thread inherits the mask; only sigwait and sigpending below take them. So a signal
    # never lands in the middle of a step: start-up looks for one between readiness
    # probes, the shutdown never does, and one arriving during it waits, unseen, until
    # the process exits. SIG_DFL, because a shell without job control starts a
    # background command with SIGINT ignored (POSIX, Shell Command Language §2.11), and
    # POSIX leaves open whether an ignored signal stays pending.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS | {signal.SIGCHLD})
    try:
        layout = Layout.from_env(os.environ)
    except ValueError as exc:
        _say(f"make run: {exc}", sys.stderr)
        return 1
    redis_url = os.environ.get("REDIS_URL")
    # To watch a drain; otherwise service_env's 0.
    drain = os.environ.get("TESSERA_DRAIN_SECONDS", "0")
    taken = ports_in_use(layout.needed_ports(redis=not redis_url))
    if taken:
        _say(
            "make run: not starting; every port it needs must be free:\n  "
            + "\n  ".join(taken)
            + "\nStop what holds them, or choose other ports with TESSERA_DEV_PORTS "
            + f"(comma-separated: {', '.join(PORT_NAMES)}).",
            sys.stderr,
        )
        return 1
    layout.var.mkdir(parents=True, exist_ok=True)
    # Two groups, so that the services stop before the Redis they use.
    databases = ProcessGroup(stop_with_parent=True, interrupted=stop_requested)
    services = ProcessGroup(stop_with_parent=True, interrupted=stop_requested)
    try:
        redis_url = redis_url or start_redis(
            databases, layout.redis_port, layout.var / "redis", persistent=True
        )
        demo = asyncio.run(seed_demo(redis_url, layout))
        # Logs in var/ are read by a person: plain text rather than production's JSON.
        ports = {**layout.ports, "admin": layout.admin_api_port}
        env = service_env(redis_url, ports, ensure_signing_key(layout.var / "keys")) | {
            "TESSERA_LOG_FORMAT": "text",
            "TESSERA_ADMIN_TOKEN": layout.admin_token(),
        }
        env["TESSERA_DRAIN_SECONDS"] = drain
        urls = {
            name: start_service(
                services, name, layout.ports[name], env, log=layout.var / f"{name}.log"
            )
            for name in SERVICES
        }
        urls["admin"] = f"http://127.0.0.1:{layout.admin_api_port}"
        urls["example_api"] = start_service(
            services,
            "example_api",
            layout.example_api_port,
            example_api_env(urls, demo),
            log=layout.var / "example_api.log",
        )
        verifier = crypto.random_token(32)
        serve_demo_callback(layout, urls["token"], demo["app_id"], verifier)
        _say(walkthrough(urls, layout, demo, verifier))
        return supervise([services, databases])
    except StartInterrupted:
        return 0
    except (RuntimeError, OSError) as exc:
        _say(f"make run: {exc}", sys.stderr)
        return 1
    finally:
        _say("\nStopping...")
        services.stop(timeout=stop_seconds(drain))
        databases.stop()


if __name__ == "__main__":
    sys.exit(main())
