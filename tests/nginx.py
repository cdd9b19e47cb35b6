"""nginx as a stand-in for the ingress controller and for a Service's load balancing.

The public server's ``location`` blocks are generated from the Ingress in ``deploy/base``
(tests/manifests.py renders it), each backend Service followed to the Deployment it
selects and so to the ``services.<name>`` module its pods run; the local replicas of that
service form the upstream. A second server stands in for an in-cluster Service that the
Ingress does not route (``tessera-introspect``): every path to its replicas.

nginx runs as a child process of the test with a configuration, pid file, temporary
directories and logs of its own, in the foreground (``daemon off``); Debian's nginx
package is installed by ``make test`` and never started as a system service.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.local_processes import ProcessGroup
from tests.manifests import Manifest, named, of_kind, selects

# Debian installs it in /usr/sbin, which is not on an ordinary user's PATH.
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
NOT_INSTALLED = (
    "nginx is not installed: `make test` installs Debian's nginx package "
    "(apt-get install nginx); the replica test needs its binary"
)

# A failed replica is skipped for this long after one failure (connection refused, a
# timeout, or a 503), as ingress-nginx's passive health checks do.
FAIL_TIMEOUT_SECONDS = 10


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in NGINX_CANDIDATES if os.access(path, os.X_OK)), None)


@dataclass(frozen=True)
class Route:
    """One path of the Ingress: ``pathType`` Exact or Prefix, to a Service's port."""

    path: str
    path_type: str
    service: str
    port_name: str


def ingress_routes(objects: list[Manifest]) -> list[Route]:
    """Every path of every rule of the (only) Ingress, checked against the Services."""
    (ingress,) = of_kind(objects, "Ingress")
    routes = []
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            backend = entry["backend"]["service"]
            if entry["pathType"] not in ("Exact", "Prefix"):
                raise NotImplementedError(f"pathType {entry['pathType']}: extend tests/nginx.py")
            route = Route(
                entry["path"], entry["pathType"], backend["name"], backend["port"]["name"]
            )
            service = named(objects, "Service", route.service)
            port_names = [port.get("name") for port in service["spec"]["ports"]]
            assert route.port_name in port_names, (route, port_names)
            routes.append(route)
    return routes


def local_service(objects: list[Manifest], service_name: str) -> str:
    """The Tessera service (``authorize``, ``token``, ``introspect``) behind a Kubernetes
    Service: the ``services.<name>`` module run by the Deployment the Service selects."""
    selector = named(objects, "Service", service_name)["spec"]["selector"]
    (deployment,) = [
        deployment
        for deployment in of_kind(objects, "Deployment")
        if selects(selector, deployment["spec"]["template"]["metadata"]["labels"])
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = " ".join(container.get("command", []) + container.get("args", []))
    match = re.search(r"-m services\.(\w+)", command)
    assert match, f"{service_name}: no `python -m services.<name>` in {command!r}"
    return match[1]


def _locations(route: Route) -> list[str]:
    """nginx locations with the Ingress path semantics: Exact is the path alone; Prefix
    matches whole path elements, with or without a trailing slash (``/static/`` matches
    ``/static`` and ``/static/app.css``, never ``/staticx``)."""
    if route.path_type == "Exact":
        return [f"= {route.path}"]
    stem = route.path.rstrip("/")
    if not stem:
        return ["/"]
    return [f"= {stem}", f"^~ {stem}/"]


def render_config(
    *,
    routes: Sequence[Route],
    public_port: int,
    internal_services: Mapping[str, int],
    upstreams: Mapping[str, Sequence[int]],
    workdir: Path,
    logs: Path,
    log_prefix: str,
    generation: int,
) -> str:
    """nginx.conf: one upstream per Kubernetes Service (``upstreams``: its replicas'
    loopback ports), the public server routing the Ingress's paths, and one server per
    entry of ``internal_services`` (Service name to listening port) passing every path,
    as the in-cluster Service would."""
    user = ""
    if os.geteuid() == 0:
        # Workers would otherwise run as nobody, who cannot enter the test's temp dirs.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    upstream_blocks = "\n".join(
        f"    upstream {name} {{\n"
        + "".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;\n"
            for port in ports
        )
        + "    }"
        for name, ports in upstreams.items()
    )
    public_locations = "\n".join(
        f"        location {location} {{ proxy_pass http://{route.service}; }}"
        for route in routes
        for location in _locations(route)
    )
    internal_servers = "\n".join(
        f"""    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://{name}; }}
    }}"""
        for name, port in internal_services.items()
    )
    temp = {kind: workdir / kind for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return f"""# Generated by tests/nginx.py (generation {generation}).
daemon off;
master_process on;
{user}
# One worker: round robin is per worker, so consecutive requests alternate strictly.
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {logs / f"{log_prefix}error.log"} notice;

events {{
    worker_connections 512;
}}

http {{
    log_format upstream '$remote_addr "$request_method $uri" $status '
                        'upstream=$upstream_addr upstream_status=$upstream_status '
                        '$request_time';
    access_log {logs / f"{log_prefix}access.log"} upstream;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};

    # As ingress-nginx: a replica that refuses the connection, times out, or answers 503
    # is skipped for fail_timeout and the request passed to the next one (a POST only
    # when it never reached the failed replica).
    proxy_next_upstream error timeout http_503;
    proxy_connect_timeout 2s;
    proxy_read_timeout 30s;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Request-ID $request_id;
    # Which replica (or replicas, when one failed) answered; and which configuration.
    add_header X-Upstream $upstream_addr always;
    add_header X-Nginx-Generation {generation} always;

{upstream_blocks}

    server {{
        listen 127.0.0.1:{public_port};
{public_locations}
        # The Ingress routes nothing else (not /introspect, /metrics, probes; the admin API
        # is on a port of its own).
        location / {{ return 404; }}
    }}

{internal_servers}
}}
"""


class Nginx:
    """An nginx master process in the foreground, reconfigured by rewriting its file and
    sending SIGHUP, as an ingress controller follows a Service's endpoints."""

    def __init__(
        self,
        binary: str,
        group: ProcessGroup,
        workdir: Path,
        logs: Path,
        log_prefix: str,
        routes: Sequence[Route],
        public_port: int,
        internal_services: Mapping[str, int],
    ) -> None:
        self.binary = binary
        self.group = group
        self.workdir = workdir
        self.logs = logs
        self.log_prefix = log_prefix
        self.routes = list(routes)
        self.public_port = public_port
        self.internal_services = dict(internal_services)
        self.config = workdir / "nginx.conf"
        self.generation = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> Path:
        return self.logs / f"{self.log_prefix}error.log"

    def _write(self, upstreams: Mapping[str, Sequence[int]]) -> None:
        self.generation += 1
        self.config.write_text(
            render_config(
                routes=self.routes,
                public_port=self.public_port,
                internal_services=self.internal_services,
                upstreams=upstreams,
                workdir=self.workdir,
                logs=self.logs,
                log_prefix=self.log_prefix,
                generation=self.generation,
            )
        )

    def _argv(self, *extra: str) -> list[str]:
        # -e: the error log before the configuration is read (Debian's default is stderr).
        return [
            self.binary,
            "-p",
            str(self.workdir),
            "-c",
            str(self.config),
            "-e",
            str(self.error_log),
            *extra,
        ]

    def start(self, upstreams: Mapping[str, Sequence[int]]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write(upstreams)
        self.process = self.group.start(
            self._argv(), log=self.logs / f"{self.log_prefix}stdout.log"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with status {self.process.returncode}; see {self.error_log}:"
                    f"\n{self._log_tail()}"
                )
            if all(_accepts(port) for port in self.ports):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen within 10 s; see {self.error_log}")

    @property
    def ports(self) -> list[int]:
        return [self.public_port, *self.internal_services.values()]

    def workers(self) -> set[int]:
        """The master's worker processes (Linux: from /proc)."""
        assert self.process is not None
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[1]) == self.process.pid:
                found.add(int(stat.parent.name))
        return found

    def reload(self, upstreams: Mapping[str, Sequence[int]]) -> int:
        """Write the new upstreams, signal the master, and wait until every worker of the
        old configuration has exited (after finishing its requests): from then on no
        request can reach a replica that left the upstreams. Returns the generation,
        which answers carry in ``X-Nginx-Generation``."""
        assert self.process is not None and self.process.poll() is None, "nginx is not running"
        old = self.workers()
        self._write(upstreams)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            current = self.workers()
            if current and not current & old:
                return self.generation
            time.sleep(0.02)
        raise RuntimeError(
            f"nginx did not reload to generation {self.generation}; see {self.error_log}:"
            f"\n{self._log_tail()}"
        )

    def disabled(self) -> set[int]:
        """Ports of the replicas nginx has marked failed (passive health check), from its
        error log."""
        try:
            lines = self.error_log.read_text().splitlines()
        except OSError:
            return set()
        return {
            int(match[1])
            for line in lines
            if "upstream server temporarily disabled" in line
            and (match := re.search(r'upstream: "http://127\.0\.0\.1:(\d+)/', line))
        }

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.error_log.read_text().splitlines()[-20:])
        except OSError:
            return "(no error log)"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
