"""`make run` as a user meets it: what it prints works, Ctrl-C stops everything, and a
restart keeps clients, users and tokens (Redis append-only file)."""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from shared.local_processes import free_port
from tests.oauth import Reply, Stack, basic_auth, decide, post_form, query_of, sign_in

ROOT = Path(__file__).resolve().parent.parent


class RunningDemo:
    def __init__(
        self, process: asyncio.subprocess.Process, pipe: asyncio.ReadTransport, output: str
    ) -> None:
        self.process = process
        self._pipe = pipe  # our end of its standard output, as a terminal would hold it
        self.output = output

    def line_after(self, label: str) -> str:
        match = re.search(rf"{re.escape(label)}\s*(\S.*)", self.output)
        assert match, f"{label!r} not in the output"
        return match.group(1).strip()

    async def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        finally:
            self._pipe.close()

    async def hang_up(self) -> int:
        """As closing its terminal window does: the output goes away, then SIGHUP."""
        self._pipe.close()
        return await self.stop(signal.SIGHUP)


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def start_demo(var: Path, ports: list[int]) -> RunningDemo:
    """`make run`, started as a shell without job control starts a background command:
    with SIGINT ignored, which Ctrl-C (SIGINT) must stop all the same."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"TESSERA_DEV_DIR": str(var), "TESSERA_DEV_PORTS": ",".join(map(str, ports))}
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shared.devrun", cwd=ROOT, env=env,
            stdout=write_end, stderr=asyncio.subprocess.STDOUT, preexec_fn=ignore_sigint,
        )  # fmt: skip
    finally:
        os.close(write_end)
    reader = asyncio.StreamReader()
    pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", 0)
    )
    output = ""
    while "Press Ctrl-C" not in output:
        line = await asyncio.wait_for(reader.readline(), 60)
        assert line, f"make run ended early:\n{output}"
        output += line.decode()
    return RunningDemo(process, pipe, output)


def port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def walk_the_printed_instructions(demo: RunningDemo, http: aiohttp.ClientSession) -> str:
    """Follow steps 1 to 3 exactly as printed; returns the access token."""
    issuer = re.search(r"https?://\S+", demo.output)
    assert issuer and issuer.group(0) == demo.line_after("Issuer:")
    authorize_url = re.search(r"\S+/authorize\?\S+", demo.output)
    assert authorize_url
    username, _, password = demo.line_after("Demo user:").partition(" / ")
    stack = Stack("", issuer.group(0), issuer.group(0), "", "")

    async with http.get(authorize_url.group(0), allow_redirects=False) as started:
        assert started.status == 303
    signed_in = await sign_in(http, stack, started.headers["Location"], username, password)
    assert signed_in.status == 303
    decided = await decide(http, stack, signed_in.headers["Location"])
    assert decided.status == 303
    callback = decided.headers["Location"]
    assert "code" in query_of(callback)

    # The demo app's page shows the exchange command with the code filled in; run it.
    async with http.get(callback) as page:
        assert page.status == 200
        command = html.unescape(await page.text())
    url = re.search(r"curl -s (\S+)", command)
    assert url
    form = dict(re.findall(r"-d (\w+)=(\S+)", command))
    assert form["code"] == query_of(callback)["code"]
    tokens = await post_form(http, url.group(1), form)
    assert tokens.status == 200, tokens.body
    return tokens.body["access_token"]


async def introspect_as_printed(
    demo: RunningDemo, http: aiohttp.ClientSession, token: str
) -> Reply:
    match = re.search(r"curl -s (\S+/introspect) -u '([^:]+):([^']+)'", demo.output)
    assert match
    url, client_id, secret = match.groups()
    return await post_form(http, url, {"token": token}, basic_auth(client_id, secret))


async def call_the_api_as_printed(
    demo: RunningDemo, http: aiohttp.ClientSession, token: str
) -> dict[str, object]:
    """Step 4: the example API answers the token; writing needs a scope it lacks."""
    read = re.search(
        r"curl -s (\S+/notes) -H 'Authorization: Bearer PASTE_THE_ACCESS_TOKEN'", demo.output
    )
    assert read, demo.output
    bearer = {"Authorization": f"Bearer {token}"}
    async with http.get(read.group(1), headers=bearer) as r:
        assert r.status == 200, await r.text()
        notes = await r.json()
    write = re.search(r"curl -si (\S+/notes) -H .*\n.* -d '(.*)'", demo.output)
    assert write, demo.output
    async with http.post(
        write.group(1), data=write.group(2), headers={**bearer, "Content-Type": "application/json"}
    ) as r:
        assert r.status == 403
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        assert 'scope="notes:write"' in r.headers["WWW-Authenticate"]
    return notes


async def test_make_run_walkthrough_ctrl_c_and_restart(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    ports = [free_port() for _ in range(6)]
    demo = await start_demo(tmp_path, ports)
    try:
        assert demo.line_after("Issuer:") == f"http://127.0.0.1:{ports[0]}"
        token = await walk_the_printed_instructions(demo, http)
        first = await introspect_as_printed(demo, http, token)
        assert first.status == 200
        assert first.body["active"] is True
        assert first.body["username"] == "demo"
        assert await call_the_api_as_printed(demo, http, token) == {"owner": "demo", "notes": []}
        app_line = demo.line_after("Demo app:")
    finally:
        assert await demo.stop(signal.SIGINT) == 0
    assert all(port_is_closed(port) for port in ports), "a process outlived Ctrl-C"
    assert (tmp_path / "redis" / "appendonlydir").is_dir() or any(
        p.name.startswith("appendonly") for p in (tmp_path / "redis").iterdir()
    )

    again = await start_demo(tmp_path, ports)
    try:
        # The same demo clients, and the token issued before the restart still works.
        assert again.line_after("Demo app:") == app_line
        after = await introspect_as_printed(again, http, token)
        assert after.body["active"] is True
        assert (await call_the_api_as_printed(again, http, token))["owner"] == "demo"
    finally:
        # Its terminal closed: the services and Redis run in sessions of their own, which
        # the hangup does not reach, so `make run` must stop them itself.
        assert await again.hang_up() == 0
    assert all(port_is_closed(port) for port in ports), "a process outlived the hangup"
