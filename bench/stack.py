"""The processes under test: a Redis of their own and Tessera's three services, each
service pinned to the server CPU, and optionally the reference server beside them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devtools.local_processes import (
    SERVICES,
    ProcessGroup,
    ensure_signing_key,
    free_port,
    service_env,
    start_module,
    start_redis,
    start_service,
)
from shared.config.settings import Settings

SERVER_CPU = 0
LOAD_CPU = 1


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` (threads started later inherit it)."""
    subprocess.run(
        ["taskset", "--all-tasks", "--cpu-list", "--pid", str(cpu), str(pid)],
        check=True,
        capture_output=True,
    )


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


@dataclass
class Tessera:
    group: ProcessGroup
    redis_url: str
    redis_pid: int
    redis_dir: Path
    urls: dict[str, str]
    pids: dict[str, int]
    settings: Settings
    floor_url: str  # bench.floor, beside the services


def start_tessera(work: Path) -> Tessera:
    """Redis on the load CPU (it stands for a Redis elsewhere in production; the load
    generator shares that CPU with it), each service on the server CPU."""
    group = ProcessGroup()
    try:
        # No append-only file while measuring throughput: bench.outage turns it on.
        redis_url = start_redis(group, free_port(), work / "redis", persistent=False)
        redis_pid = group.processes[-1].pid
        pin(redis_pid, LOAD_CPU)
        ports = {name: free_port() for name in SERVICES}
        env = {
            **service_env(redis_url, ports, ensure_signing_key(work / "keys")),
            # What a production deployment logs: one JSON line per request.
            "TESSERA_LOG_FORMAT": "json",
        }
        urls, pids = {}, {}
        for name in SERVICES:
            urls[name] = start_service(group, name, ports[name], env, work / f"{name}.log")
            pids[name] = group.processes[-1].pid
            pin(pids[name], SERVER_CPU)
        floor_url = start_module(group, "bench.floor", free_port(), env, work / "floor.log")
        pin(group.processes[-1].pid, SERVER_CPU)
    except BaseException:
        group.stop()
        raise
    return Tessera(
        group, redis_url, redis_pid, work / "redis", urls, pids, Settings.from_env(env), floor_url
    )


def kill_redis(tessera: Tessera) -> None:
    """SIGKILL, as the OOM killer or a lost node stops it: no chance to save anything."""
    process = next(p for p in tessera.group.processes if p.pid == tessera.redis_pid)
    process.send_signal(signal.SIGKILL)
    process.wait()


def restart_redis(tessera: Tessera) -> float:
    """Start Redis again on its port with its data directory, reading its append-only file;
    returns the time.monotonic() at which it answered PING, that is had loaded the file."""
    group = tessera.group
    index = next(i for i, p in enumerate(group.processes) if p.pid == tessera.redis_pid)
    port = urlsplit(tessera.redis_url).port
    assert port is not None
    start_redis(group, port, tessera.redis_dir, persistent=True, ready_seconds=120)
    answered = time.monotonic()
    process = group.processes.pop()
    group.processes[index] = process  # its old place: stopped after the services
    tessera.redis_pid = process.pid
    pin(process.pid, LOAD_CPU)
    return answered


@dataclass
class Reference:
    process: subprocess.Popen[bytes]
    url: str
    label: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_reference(directory: Path, work: Path) -> Reference:
    """The reference server (oidc-provider, in-memory storage) from the team's bench
    folder, with its locked dependencies, pinned to the server CPU."""
    server = directory / "peer-oidc-provider"
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=server,
        check=True,
    )
    port = free_port()
    log = work / "reference.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["taskset", "--cpu-list", str(SERVER_CPU), "node", "server.js"],
            cwd=server,
            env={**os.environ, "PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while not any(ln.startswith("READY") for ln in log.read_text().splitlines()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the reference server did not start: {log.read_text()}")
        time.sleep(0.1)
    version = subprocess.run(
        [
            "node",
            "-p",
            "require('oidc-provider/package.json').version + ' node ' + process.version",
        ],
        cwd=server,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Reference(process, f"http://127.0.0.1:{port}", f"oidc-provider {version}")
