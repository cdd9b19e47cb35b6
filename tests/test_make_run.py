"""`make run` as a user meets it: what it prints works, Ctrl-C stops everything, and a
restart keeps clients, users and tokens (Redis append-only file). And as it fails: a port
in use (never someone else's Redis), killed with SIGKILL, a second signal while stopping,
a service that dies."""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
import redis

from devtools.local_processes import SERVICES, ProcessGroup, free_port, start_redis
from tests.flows import decide, sign_in
from tests.replies import Reply, basic_auth, post_form, query_of
from tests.secrets_ledger import SECRETS_USED
from tests.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
# TESSERA_DEV_PORTS, in its order.
PORT_NAMES = ("authorize", "token", "introspect", "demo app", "Redis", "example API", "admin API")
REDIS = PORT_NAMES.index("Redis")


class RunningDemo:
    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        pipe: asyncio.ReadTransport,
        output: str,
    ) -> None:
        self.process = process
        self._reader = reader
        self._pipe = pipe  # our end of its standard output, as a terminal would hold it
        self.output = output
        self.children: dict[int, str] = {}  # as started_processes found them

    def line_after(self, label: str) -> str:
        match = re.search(rf"{re.escape(label)}\s*(\S.*)", self.output)
        assert match, f"{label!r} not in the output"
        return match.group(1).strip()

    async def read_until(self, text: str) -> str:
        """Its output up to the line holding ``text`` (kept in ``output`` too)."""
        read = ""
        while text not in read:
            line = await asyncio.wait_for(self._reader.readline(), 60)
            assert line, f"{text!r} never came:\n{self.output}{read}"
            read += line.decode()
        self.output += read
        return read

    async def wait(self) -> tuple[int, str]:
        """Its exit status and the output it wrote since the last read."""
        rest = await asyncio.wait_for(self._reader.read(), 60)
        self.output += rest.decode()
        try:
            return await asyncio.wait_for(self.process.wait(), 30), rest.decode()
        finally:
            self._pipe.close()

    def close(self) -> None:
        self._pipe.close()

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


def demo_env(var: Path, ports: list[int], extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TESSERA_DRAIN_SECONDS")}
    return env | {
        "TESSERA_DEV_DIR": str(var),
        "TESSERA_DEV_PORTS": ",".join(map(str, ports)),
        **(extra or {}),
    }


# Every `make run` a test started, so that none outlives a failed test (see leftovers).
LAUNCHED: list[RunningDemo] = []


@pytest.fixture(autouse=True)
async def leftovers() -> AsyncIterator[None]:
    """After each test, stop whatever a `make run` it started left running: the test may
    have failed because `make run` did not stop them itself."""
    yield
    while LAUNCHED:
        demo = LAUNCHED.pop()
        children = demo.children | children_of(demo.process.pid)
        if demo.process.returncode is None:
            demo.process.kill()
        for pid, cmdline in children.items():
            if cmdline_of(pid) == cmdline:  # that process still, not a new one with its id
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        demo.close()


async def launch(env: dict[str, str]) -> RunningDemo:
    """`make run`, started as a shell without job control starts a background command:
    with SIGINT ignored, which Ctrl-C (SIGINT) must stop all the same."""
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devtools.devrun", cwd=ROOT, env=env,
            stdout=write_end, stderr=asyncio.subprocess.STDOUT, preexec_fn=ignore_sigint,
        )  # fmt: skip
    finally:
        os.close(write_end)
    reader = asyncio.StreamReader()
    pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", 0)
    )
    LAUNCHED.append(RunningDemo(process, reader, pipe, ""))
    return LAUNCHED[-1]


async def start_demo(
    var: Path, ports: list[int], extra_env: dict[str, str] | None = None
) -> RunningDemo:
    demo = await launch(demo_env(var, ports, extra_env))
    await demo.read_until("Press Ctrl-C")
    return demo


async def refused(var: Path, ports: list[int], tessera_dev_ports: str | None = None) -> str:
    """Run `make run` expecting it to refuse to start; returns what it printed."""
    env = demo_env(var, ports)
    if tessera_dev_ports is not None:
        env["TESSERA_DEV_PORTS"] = tessera_dev_ports
    demo = await launch(env)
    status, output = await demo.wait()
    assert status != 0, output
    assert "Traceback" not in output, output
    return output


def children_of(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines (from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == pid and (cmdline := cmdline_of(int(stat.parent.name))) is not None:
            found[int(stat.parent.name)] = cmdline
    return found


def cmdline_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def is_gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


async def gone_within(pids: list[int], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for every process in ``pids`` to exit; returns those left."""
    for _ in range(int(seconds * 10)):
        if all(map(is_gone, pids)):
            break
        await asyncio.sleep(0.1)
    return [pid for pid in pids if not is_gone(pid)]


def started_processes(demo: RunningDemo) -> dict[int, str]:
    """`make run`'s children: its Redis, the three services and the example API."""
    demo.children = children_of(demo.process.pid)
    for name in ["redis-server", *(f"services.{s}" for s in [*SERVICES, "example_api"])]:
        assert sum(name in cmdline for cmdline in demo.children.values()) == 1, demo.children
    return demo.children


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
    access_token: str = tokens.body["access_token"]
    return access_token


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
        notes: dict[str, object] = await r.json()
    write = re.search(r"curl -si (\S+/notes) -H .*\n.* -d '(.*)'", demo.output)
    assert write, demo.output
    async with http.post(
        write.group(1), data=write.group(2), headers={**bearer, "Content-Type": "application/json"}
    ) as r:
        assert r.status == 403
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        assert 'scope="notes:write"' in r.headers["WWW-Authenticate"]
    return notes


async def the_admin_api_answers_as_printed(
    demo: RunningDemo, http: aiohttp.ClientSession, var: Path, port: int
) -> None:
    """The admin API where the walkthrough says, with the credential kept in var/."""
    base = f"http://127.0.0.1:{port}"
    assert demo.line_after("admin API:").startswith(f"{base}/v1 ")
    credential = (var / "admin-token").read_text().strip()
    SECRETS_USED.add(credential)
    assert (var / "admin-token").stat().st_mode & 0o077 == 0
    async with http.get(
        f"{base}/v1/users/demo", headers={"Authorization": f"Bearer {credential}"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["username"] == "demo"


async def test_make_run_walkthrough_ctrl_c_and_restart(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    demo = await start_demo(tmp_path, ports)
    try:
        assert demo.line_after("Issuer:") == f"http://127.0.0.1:{ports[0]}"
        await the_admin_api_answers_as_printed(demo, http, tmp_path, ports[-1])
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


@pytest.mark.parametrize("taken", [i for i, name in enumerate(PORT_NAMES) if name != "Redis"])
async def test_a_port_in_use_is_named_and_nothing_starts(tmp_path: Path, taken: int) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    with socket.create_server(("127.0.0.1", ports[taken])):
        output = await refused(tmp_path, ports)
    assert f"port {ports[taken]} ({PORT_NAMES[taken]})" in output, output
    assert "TESSERA_DEV_PORTS" in output  # how to choose others
    # Refused before starting anything: no Redis data, nothing listening.
    assert not (tmp_path / "redis").exists()
    assert all(port_is_closed(port) for port in ports)


async def test_another_redis_on_the_port_is_left_untouched(tmp_path: Path) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    group = ProcessGroup()
    try:
        start_redis(group, ports[REDIS], tmp_path / "theirs", persistent=False)
        with redis.Redis(port=ports[REDIS]) as theirs:
            theirs.set("their:data", "precious")
            theirs.hset("their:hash", mapping={"a": "1"})
            before = {key: theirs.dump(key) for key in theirs.scan_iter()}
            connections = theirs.info("stats")["total_connections_received"]

            output = await refused(tmp_path / "ours", ports)

            assert f"port {ports[REDIS]} (Redis)" in output, output
            assert {key: theirs.dump(key) for key in theirs.scan_iter()} == before
            # It never even connected: nothing read, nothing written.
            assert theirs.info("stats")["total_connections_received"] == connections
    finally:
        group.stop()


def test_start_redis_never_takes_another_redis_for_its_own(tmp_path: Path) -> None:
    """Should another Redis take the port between the check and the start, the new
    redis-server cannot listen and exits; its readiness wait must not accept the other
    server's PONG."""
    port = free_port()
    group = ProcessGroup()
    try:
        start_redis(group, port, tmp_path / "theirs", persistent=False)
        with pytest.raises(RuntimeError, match="redis-server exited"):
            start_redis(group, port, tmp_path / "ours", persistent=False)
    finally:
        group.stop()


@pytest.mark.parametrize("mistake", ["too few", "not a number", "twice"])
async def test_a_bad_ports_setting_is_refused_clearly(tmp_path: Path, mistake: str) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    settings: dict[str, Sequence[int | str]] = {
        "too few": ports[:4],
        "not a number": [*ports[:5], "x"],
        "twice": [*ports[:5], ports[0]],
    }
    setting = settings[mistake]
    output = await refused(tmp_path, ports, tessera_dev_ports=",".join(map(str, setting)))
    assert f"TESSERA_DEV_PORTS={','.join(map(str, setting))!r}" in output, output
    assert all(port_is_closed(port) for port in ports)


async def test_sigkill_stops_every_child(tmp_path: Path) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    demo = await start_demo(tmp_path, ports)
    children = started_processes(demo)
    demo.process.kill()
    await demo.wait()
    # Each child is told of its parent's death by the kernel (PR_SET_PDEATHSIG).
    assert await gone_within(list(children), 15) == []
    assert all(port_is_closed(port) for port in ports)


async def test_a_second_signal_does_not_cut_the_shutdown_short(tmp_path: Path) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    # A drain, so that the shutdown lasts long enough to be signalled again.
    demo = await start_demo(tmp_path, ports, {"TESSERA_DRAIN_SECONDS": "2"})
    children = started_processes(demo)
    demo.process.send_signal(signal.SIGINT)
    await demo.read_until("Stopping")
    for again in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        demo.process.send_signal(again)  # ProcessLookupError, were it already gone
        await asyncio.sleep(0.05)
    status, output = await demo.wait()
    assert status == 0, output
    assert "Traceback" not in output
    assert [pid for pid in children if not is_gone(pid)] == []
    for name in SERVICES:  # each drained to the end, then stopped
        log = (tmp_path / f"{name}.log").read_text()
        assert "serving for up to 2 s" in log
        assert "drain cut short" not in log
        assert log.rstrip().endswith("stopped"), log[-500:]
    assert "ready to exit" in (tmp_path / "redis" / "redis.log").read_text()


async def test_ctrl_c_during_start_up_stops_what_started(tmp_path: Path) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    demo = await launch(demo_env(tmp_path, ports))
    redis_log = tmp_path / "redis" / "redis.log"
    for _ in range(300):  # its Redis is starting (the log opens first), the rest to come
        if redis_log.exists():
            break
        await asyncio.sleep(0.1)
    demo.children = children = children_of(demo.process.pid)
    demo.process.send_signal(signal.SIGINT)
    status, output = await demo.wait()
    assert status == 0, output
    assert "Traceback" not in output
    assert "Tessera is running" not in output  # stopped half-way through starting
    assert [pid for pid in children if not is_gone(pid)] == []
    assert all(port_is_closed(port) for port in ports)


async def test_a_service_that_dies_stops_the_run_loudly(tmp_path: Path) -> None:
    ports = [free_port() for _ in PORT_NAMES]
    demo = await start_demo(tmp_path, ports)
    children = started_processes(demo)
    token = next(pid for pid, cmdline in children.items() if "services.token" in cmdline)
    os.kill(token, signal.SIGKILL)
    status, output = await demo.wait()
    assert status == 1, output
    assert re.search(r"the token service was killed by SIGKILL", output), output
    assert str(tmp_path / "token.log") in output
    assert "Traceback" not in output
    assert [pid for pid in children if not is_gone(pid)] == []
    assert all(port_is_closed(port) for port in ports)
