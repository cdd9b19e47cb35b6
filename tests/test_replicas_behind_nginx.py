"""Two replicas of each service behind an ingress, on a three-master Redis Cluster: any
replica serves any step of a flow, and losing one replica of each service loses no flow
started afterwards and no issued token.

nginx stands in for the ingress controller, its paths generated from the Ingress in
``deploy/base`` (tests/nginx.py), and for the in-cluster Service ``tessera-introspect``,
which the Ingress does not route. Round robin sends consecutive requests to different
replicas; ``X-Upstream`` says which one answered, so the test shows a flow's steps
crossing replicas (the session, the pending request, the code and the tokens live in
Redis, never in a process).

Then, with flows running all the while:

1. SIGTERM to replica A of each service, as Kubernetes stops a pod: A keeps serving for
   its drain period while the "endpoints" (nginx's upstreams) drop it a moment later, then
   exits 0; a replacement A' starts and joins the upstreams.
2. SIGKILL to replica B of each service, which nginx still lists (Kubernetes notices a dead
   pod only after failed probes): nginx's connection to B is refused and it passes the
   request to A'. A replacement B' then takes B's place.

Every flow started after a kill completes (flows in flight when B was killed may lose the
one request B was answering, which nginx cannot retry for a POST: counted, not required),
and at the end every access token issued to any flow introspects active through the
introspect Service, except those deliberately revoked, which are inactive; every refresh
token a flow still holds refreshes.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from devtools.local_processes import (
    SERVICES,
    ProcessGroup,
    ensure_signing_key,
    free_port,
    service_env,
    start_service,
)
from shared.storage import families
from shared.storage.redis_store import connect
from tests.flows import (
    exchange,
    is_active,
    new_verifier,
    obtain_code,
    refresh,
    revoke,
    s256,
    token_request,
)
from tests.manifests import DEPLOY, render
from tests.nginx import NOT_INSTALLED, Nginx, ingress_routes, local_service, nginx_binary
from tests.records import Registered, Setup, make_client, make_resource_server, make_setup, unique
from tests.redis_topologies import start_cluster
from tests.stack import ARTIFACTS, GENEROUS_RATE_LIMITS, Stack

LOGS = ARTIFACTS / "logs"
LOG_PREFIX = "replicas-"

# Kubernetes' default is 10 s; short here, long enough that the "endpoints" drop the
# stopping replica (ENDPOINT_DELAY) well before it stops listening.
DRAIN_SECONDS = 3
ENDPOINT_DELAY = 1.0
# How much later than the drain a SIGTERM'd replica may exit (closing Redis, the loop).
EXIT_MARGIN = 5.0
# Flows run side by side from before the first kill to after the second.
WORKERS = 3
# Flows that must start and complete after each event before the next one.
FLOWS_AFTER_EACH_EVENT = 3
# Every third flow revokes its grant at the end (RFC 7009).
REVOKE_EVERY = 3
INTERNAL_SERVICE = "tessera-introspect"


@dataclass
class Replica:
    service: str
    label: str  # A, B, then the replacements A', B'
    port: int
    group: ProcessGroup

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.group.processes[0]


@dataclass
class Step:
    method: str
    path: str
    status: int | None
    upstreams: list[int]  # replica ports nginx tried, in order (more than one: a retry)
    sent: float  # when the request began
    at: float  # when its answer (or error) came
    error: str | None = None


@dataclass
class IssuedToken:
    value: str
    grant_type: str
    flow: int
    # active: must introspect active at the end; revoked: inactive; unknown: a revocation
    # whose answer was lost, so either is right.
    expected: str = "active"


@dataclass
class Flow:
    number: int
    revokes: bool
    started: float = field(default_factory=time.monotonic)
    ended: float = float("inf")
    step: str = "start"
    steps: list[Step] = field(default_factory=list)
    tokens: list[IssuedToken] = field(default_factory=list)
    refresh_token: str | None = None
    error: str | None = None

    def spans(self, moment: float) -> bool:
        return self.started < moment < self.ended


@dataclass
class Rig:
    stack: Stack
    setup: Setup
    api: Registered  # the resource server, allowed to introspect
    job: Registered  # a confidential client with the client_credentials grant
    nginx: Nginx
    replica_at: dict[int, Replica] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)

    def new_flow(self) -> Flow:
        number = len(self.flows) + 1
        flow = Flow(number, revokes=number % REVOKE_EVERY == 0)
        self.flows.append(flow)
        return flow

    def labels(self, step: Step) -> list[str]:
        return [self.replica_at[port].label for port in step.upstreams]

    def service_of(self, step: Step) -> str | None:
        return self.replica_at[step.upstreams[-1]].service if step.upstreams else None


class Processes:
    """The Redis Cluster and nginx in one group; each replica in a group of its own, so
    that it can be stopped alone."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.base = ProcessGroup()
        self.replicas: list[Replica] = []

    def stop(self) -> None:
        # SIGINT: no drain at teardown (README, Shutdown).
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGINT)
        for replica in self.replicas:
            replica.group.stop()
        self.base.stop()
        for log in sorted((self.workdir / "cluster").glob("node-*/redis.log")):
            shutil.copy(log, LOGS / f"{LOG_PREFIX}redis-{log.parent.name}.log")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    group = Processes(tmp_path)
    try:
        yield group
    finally:
        group.stop()


def upstream_ports(headers: Mapping[str, str]) -> list[int]:
    value = headers.get("X-Upstream", "")
    return [int(address.rsplit(":", 1)[1]) for address in value.split(",") if address.strip()]


def traced(flow: Flow) -> aiohttp.TraceConfig:
    """Records every request of the flow with the replicas that answered it."""
    trace = aiohttp.TraceConfig()

    async def on_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        context.sent = time.monotonic()

    async def on_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        flow.steps.append(
            Step(
                params.method,
                params.url.path,
                params.response.status,
                upstream_ports(params.response.headers),
                context.sent,
                time.monotonic(),
            )
        )

    async def on_exception(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        flow.steps.append(
            Step(
                params.method,
                params.url.path,
                None,
                [],
                context.sent,
                time.monotonic(),
                repr(params.exception),
            )
        )

    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


def browser(flow: Flow) -> aiohttp.ClientSession:
    """A browser of its own per flow: its cookies must work on every replica. A new
    connection per request: nginx closes idle keep-alive connections when it reloads,
    and a client racing that close is not what this test is about."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        connector=aiohttp.TCPConnector(force_close=True),
        trace_configs=[traced(flow)],
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def flow_steps(rig: Rig, flow: Flow, http: aiohttp.ClientSession) -> None:
    stack, setup = rig.stack, rig.setup

    flow.step = "metadata"
    async with http.get(f"{stack.authorize}/.well-known/oauth-authorization-server") as r:
        assert r.status == 200, r.status
        metadata = await r.json()
    assert metadata["issuer"] == stack.issuer
    assert metadata["token_endpoint"] == f"{stack.token}/token"
    assert metadata["introspection_endpoint"] == f"{stack.introspect}/introspect"

    flow.step = "authorize, sign in and approve"
    verifier = new_verifier()
    code = await obtain_code(
        http, stack, setup, code_challenge=s256(verifier), code_challenge_method="S256"
    )

    flow.step = "exchange the code"
    first = await exchange(http, stack, setup.client, code, auth="none", code_verifier=verifier)
    assert first.status == 200, first.body
    first_access = IssuedToken(first.body["access_token"], "authorization_code", flow.number)
    flow.tokens.append(first_access)
    flow.refresh_token = first.body["refresh_token"]

    flow.step = "introspect the first access token"
    assert await is_active(http, stack, rig.api, first_access.value)

    flow.step = "refresh"
    presented, flow.refresh_token = flow.refresh_token, None  # rotated once sent
    second = await refresh(http, stack, setup.client, presented)
    assert second.status == 200, second.body
    second_access = IssuedToken(second.body["access_token"], "refresh_token", flow.number)
    flow.tokens.append(second_access)
    flow.refresh_token = second.body["refresh_token"]

    flow.step = "introspect the refreshed access token"
    assert await is_active(http, stack, rig.api, second_access.value)

    flow.step = "client credentials"
    job = await token_request(http, stack, rig.job, {"grant_type": "client_credentials"})
    assert job.status == 200, job.body
    job_access = IssuedToken(job.body["access_token"], "client_credentials", flow.number)
    flow.tokens.append(job_access)

    flow.step = "introspect the client credentials token"
    assert await is_active(http, stack, rig.api, job_access.value)

    if flow.revokes:
        flow.step = "revoke the grant"
        grant = [first_access, second_access]
        for token in grant:
            token.expected = "unknown"
        presented, flow.refresh_token = flow.refresh_token, None
        status, _, body = await revoke(http, stack, setup.client, presented)
        assert status == 200, body
        for token in grant:
            token.expected = "revoked"

        flow.step = "introspect the revoked grant"
        assert not await is_active(http, stack, rig.api, first_access.value)
        assert not await is_active(http, stack, rig.api, second_access.value)
    flow.step = "done"


async def run_flow(rig: Rig) -> Flow:
    """One complete flow through nginx; a failure is recorded, not raised."""
    flow = rig.new_flow()
    try:
        async with browser(flow) as http:
            await flow_steps(rig, flow, http)
    except (AssertionError, aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        flow.error = f"{flow.step}: {exc!r}"
    finally:
        flow.ended = time.monotonic()
    return flow


async def keep_running_flows(rig: Rig, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await run_flow(rig)


def describe(rig: Rig, flow: Flow, *, detail: bool = True) -> str:
    """A flow's requests and the replicas that answered them. Without ``detail`` (for the
    summary log) no error text, which might quote a response."""
    steps = "\n".join(
        f"    {step.method} {step.path} -> {step.status} via {rig.labels(step)}"
        + (f" {step.error}" if step.error and detail else "")
        for step in flow.steps
    )
    error = flow.error if detail else flow.error and flow.error.split(":", 1)[0]
    return f"flow {flow.number} failed at {error}\n{steps}"


async def until(condition: Callable[[], bool], what: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        await asyncio.sleep(0.05)


def completed_since(rig: Rig, moment: float, count: int) -> Callable[[], bool]:
    return lambda: (
        sum(1 for f in rig.flows if f.started >= moment and math.isfinite(f.ended)) >= count
    )


async def reload(rig: Rig, http: aiohttp.ClientSession, upstreams: dict[str, list[int]]) -> None:
    """nginx takes the new upstreams, as the ingress controller follows the endpoints."""
    generation = await asyncio.to_thread(rig.nginx.reload, upstreams)
    async with http.get(f"{rig.stack.introspect}/healthz") as r:
        assert r.headers["X-Nginx-Generation"] == str(generation)


def exit_of(process: subprocess.Popen[bytes], since: float) -> tuple[int, float]:
    """Wait (in a thread) for the process; its status and when it ended, after ``since``."""
    status = process.wait(DRAIN_SECONDS + EXIT_MARGIN + 10)
    return status, time.monotonic() - since


async def test_replicas_behind_nginx(processes: Processes) -> None:
    binary = nginx_binary()
    if binary is None:
        pytest.fail(NOT_INSTALLED)
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob(f"{LOG_PREFIX}*.log"):
        old.unlink()
    began = time.monotonic()

    # The Ingress's routes, each Service followed to the Tessera service its pods run.
    objects = render(DEPLOY / "base")
    routes = ingress_routes(objects)
    kubernetes_services = sorted({route.service for route in routes} | {INTERNAL_SERVICE})
    tessera_service = {name: local_service(objects, name) for name in kubernetes_services}
    assert sorted(tessera_service.values()) == sorted(SERVICES)
    assert tessera_service[INTERNAL_SERVICE] == "introspect"
    assert INTERNAL_SERVICE not in {route.service for route in routes}, "introspect is public"

    cluster_ports = await asyncio.to_thread(
        start_cluster, processes.base, processes.workdir / "cluster"
    )
    redis_url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in cluster_ports)
    public_port, internal_port = free_port(), free_port()
    public = f"http://127.0.0.1:{public_port}"
    internal = f"http://127.0.0.1:{internal_port}"
    keys = ensure_signing_key(processes.workdir / "keys")
    env = {
        **service_env(redis_url, dict.fromkeys(SERVICES, public_port), keys),
        # Public URLs are nginx's; introspection's that of the in-cluster Service.
        "TESSERA_INTROSPECTION_ENDPOINT": f"{internal}/introspect",
        "TESSERA_DRAIN_SECONDS": str(DRAIN_SECONDS),
        # Every flow comes through nginx from one address.
        **GENEROUS_RATE_LIMITS,
    }
    assert env["TESSERA_ISSUER"] == public
    assert env["TESSERA_TOKEN_ENDPOINT"] == f"{public}/token"

    def start_replica(service: str, label: str, port: int) -> Replica:
        replica = Replica(service, label, port, ProcessGroup())
        processes.replicas.append(replica)
        slug = label.lower().replace("'", "2")
        log = LOGS / f"{LOG_PREFIX}{service}-{slug}.log"
        start_service(replica.group, service, port, env, log)
        return replica

    rig_ports: dict[int, Replica] = {}

    async def start_replicas(label: str) -> dict[str, Replica]:
        ports = {service: free_port() for service in SERVICES}
        started = await asyncio.gather(
            *(asyncio.to_thread(start_replica, s, label, ports[s]) for s in SERVICES)
        )
        for replica in started:
            rig_ports[replica.port] = replica
        return {replica.service: replica for replica in started}

    a, b = await asyncio.gather(start_replicas("A"), start_replicas("B"))

    def upstreams(*sets: dict[str, Replica]) -> dict[str, list[int]]:
        return {
            name: [replicas[tessera_service[name]].port for replicas in sets]
            for name in kubernetes_services
        }

    nginx = Nginx(
        binary,
        processes.base,
        processes.workdir / "nginx",
        LOGS,
        f"{LOG_PREFIX}nginx-",
        routes,
        public_port,
        {INTERNAL_SERVICE: internal_port},
    )
    await asyncio.to_thread(nginx.start, upstreams(a, b))

    store = connect(redis_url)
    try:
        setup = await make_setup(store, client_type="public", refresh_count=5)
        api = await make_resource_server(store, [setup.scope])
        job = await make_client(
            store,
            [setup.scope],
            name=unique("Job"),
            grants=["client_credentials"],
            default_scopes=[setup.scope],
        )
    finally:
        await store.aclose()
    rig = Rig(Stack(redis_url, public, public, public, internal), setup, api, job, nginx)
    rig.replica_at = rig_ports
    report: list[str] = []

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as probe:
        # The public server routes the Ingress's paths and nothing else.
        for path in ("/introspect", "/v1/tokens", "/healthz", "/metrics", "/staticx"):
            async with probe.get(f"{public}{path}") as r:
                assert r.status == 404, (path, r.status)
                assert "X-Upstream" not in r.headers, path
        async with probe.get(f"{public}/static") as r:  # Prefix /static/ matches /static
            assert r.headers.get("X-Upstream"), "/static not routed"

        def assert_crosses_replicas(flow: Flow, expected: set[str]) -> None:
            """Each service answered this one flow from every replica in ``expected``."""
            assert flow.error is None, describe(rig, flow)
            for service in SERVICES:
                hit = {
                    rig.labels(step)[-1] for step in flow.steps if rig.service_of(step) == service
                }
                assert hit == expected, (service, hit, describe(rig, flow))

        # One flow at a time, so round robin alternates within a flow.
        for _ in range(2):
            assert_crosses_replicas(await run_flow(rig), {"A", "B"})

        stop = asyncio.Event()
        running_since = time.monotonic()
        workers = [asyncio.create_task(keep_running_flows(rig, stop)) for _ in range(WORKERS)]
        try:
            # Flows in flight at the first kill: the workers are under way.
            await until(completed_since(rig, running_since, WORKERS), "flows under way")

            # 1. SIGTERM to A; the endpoints drop it a moment later; A' replaces it.
            terminated_at = time.monotonic()
            for replica in a.values():
                replica.process.send_signal(signal.SIGTERM)
            exits = [
                asyncio.create_task(asyncio.to_thread(exit_of, r.process, terminated_at))
                for r in a.values()
            ]
            a2_started = asyncio.create_task(start_replicas("A'"))
            await asyncio.sleep(ENDPOINT_DELAY)
            dropped_after = time.monotonic() - terminated_at
            await reload(rig, probe, upstreams(b))
            old_worker_done_after = time.monotonic() - terminated_at
            for service, (status, seconds) in zip(a, await asyncio.gather(*exits), strict=True):
                assert status == 0, f"{service} A exited with {status} after SIGTERM"
                assert DRAIN_SECONDS - 0.2 <= seconds <= DRAIN_SECONDS + EXIT_MARGIN, (
                    service,
                    seconds,
                )
                report.append(f"SIGTERM {service} A: exit status {status} after {seconds:.2f} s")
            a2 = await a2_started
            await reload(rig, probe, upstreams(a2, b))
            a2_joined_after = time.monotonic() - terminated_at
            await until(
                completed_since(rig, terminated_at, FLOWS_AFTER_EACH_EVENT),
                "flows started after the SIGTERM",
            )

            # 2. SIGKILL to B, still in nginx's upstreams; B' replaces it later.
            killed_at = time.monotonic()
            for replica in b.values():
                replica.process.kill()
            for service, replica in b.items():
                status = await asyncio.to_thread(replica.process.wait, 10)
                assert status == -signal.SIGKILL, (service, status)
                report.append(f"SIGKILL {service} B: exit status {status}")
            dead_at = time.monotonic()
            b2_started = asyncio.create_task(start_replicas("B'"))
            await until(
                completed_since(rig, killed_at, FLOWS_AFTER_EACH_EVENT),
                "flows started after the SIGKILL",
            )
            b2 = await b2_started
            await reload(rig, probe, upstreams(a2, b2))
            b2_joined_at = time.monotonic()
            await until(completed_since(rig, b2_joined_at, 2), "flows started after B' joined")
        finally:
            stop.set()
            await asyncio.gather(*workers)

        # The replacements serve one flow between them, as the first two did.
        assert_crosses_replicas(await run_flow(rig), {"A'", "B'"})

        # Every flow started after a kill completed; so did those in flight during the
        # SIGTERM (the drain is for them). Those in flight when B died may have lost a step.
        must_complete = [
            f
            for f in rig.flows
            if (f.started >= terminated_at or f.spans(terminated_at)) and not f.spans(killed_at)
        ]
        failed = [f for f in must_complete if f.error is not None]
        assert not failed, "\n".join(describe(rig, f) for f in failed)
        in_flight_at_kill = [f for f in rig.flows if f.spans(killed_at)]
        lost_at_kill = [f for f in in_flight_at_kill if f.error is not None]
        b_ports = {replica.port for replica in b.values()}
        for flow in lost_at_kill:
            # Lost only at the one request B had already received and died answering: a
            # POST, which nginx must not send twice.
            last = flow.steps[-1]
            assert (last.method, last.status) == ("POST", 502), describe(rig, flow)
            assert len(last.upstreams) == 1 and last.upstreams[0] in b_ports, describe(rig, flow)
        assert all(f.error is None for f in rig.flows if f.ended < terminated_at)

        # nginx noticed each dead B: it passed a request that found B gone on to A'
        # (connection refused), or had already marked B failed when a request in flight
        # there broke. No request sent once B was dead was answered by B (one sent before
        # may have been answered just before the kill, and its answer read just after).
        steps = [step for flow in rig.flows for step in flow.steps]
        after_kill = [step for step in steps if step.at > killed_at and step.upstreams]
        sent_to_dead = [step for step in steps if step.sent > dead_at and step.upstreams]
        retried = Counter(
            rig.replica_at[step.upstreams[0]].service
            for step in after_kill
            if len(step.upstreams) > 1 and rig.labels(step)[0] == "B"
        )
        disabled = nginx.disabled()
        for service, replica in b.items():
            assert retried[service] or replica.port in disabled, f"{service} B: not skipped"
            answered = [
                f"{s.method} {s.path} -> {s.status}"
                for s in sent_to_dead
                if s.upstreams[-1] == replica.port and s.status != 502
            ]
            assert not answered, f"{service} B answered after SIGKILL: {answered}"
        served_while_draining = Counter(
            rig.replica_at[step.upstreams[-1]].service
            for step in steps
            if step.at > terminated_at and step.upstreams and rig.labels(step)[-1] == "A"
        )

        # No issued token is lost: each introspects as expected through the Service,
        # and each refresh token a flow still holds refreshes.
        tokens = [token for flow in rig.flows for token in flow.tokens]
        expected = Counter(token.expected for token in tokens)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            results = await asyncio.gather(
                *(is_active(http, rig.stack, api, token.value) for token in tokens)
            )
            wrong = [
                (token.flow, token.grant_type, token.expected, active)
                for token, active in zip(tokens, results, strict=True)
                if token.expected != "unknown" and active != (token.expected == "active")
            ]
            assert not wrong, f"tokens not as issued (flow, grant, expected, active): {wrong}"
            held = [f for f in rig.flows if f.refresh_token is not None]
            refreshed = await asyncio.gather(
                *(refresh(http, rig.stack, setup.client, f.refresh_token or "") for f in held)
            )
            assert [r.status for r in refreshed] == [200] * len(held), [r.body for r in refreshed]
            families_checked = {families.family_of(token.value) for token in tokens}

    served = Counter(
        f"{rig.replica_at[step.upstreams[-1]].service} {rig.labels(step)[-1]}"
        for step in steps
        if step.upstreams
    )
    report += [
        f"nginx dropped the SIGTERM'd replicas {dropped_after:.2f} s after the signal "
        f"(its old worker done at {old_worker_done_after:.2f} s); "
        f"A' joined at {a2_joined_after:.2f} s",
        f"requests answered by A after its SIGTERM (draining): {dict(served_while_draining)}",
        f"requests to dead B passed on by nginx: {dict(retried)}; B marked failed by nginx: "
        f"{sorted(r.service for r in b.values() if r.port in disabled)}",
        f"flows: {len(rig.flows)}; started after SIGTERM: "
        f"{sum(f.started >= terminated_at for f in rig.flows)}, after SIGKILL: "
        f"{sum(f.started >= killed_at for f in rig.flows)}; all completed",
        f"flows in flight at SIGTERM: {sum(f.spans(terminated_at) for f in rig.flows)}, "
        "all completed",
        f"flows in flight at SIGKILL: {len(in_flight_at_kill)}, failed: {len(lost_at_kill)}"
        + (" (each at a POST that B had received)" if lost_at_kill else "")
        + "".join(f"\n  {describe(rig, f, detail=False)}" for f in lost_at_kill),
        f"requests per replica: {dict(sorted(served.items()))}",
        f"access tokens checked: {len(tokens)} {dict(expected)} in {len(families_checked)} "
        f"grant families; refresh tokens refreshed: {len(held)}",
        f"runtime {time.monotonic() - began:.1f} s",
    ]
    (LOGS / f"{LOG_PREFIX}summary.log").write_text("\n".join(report) + "\n")
    print("\n".join(report))
