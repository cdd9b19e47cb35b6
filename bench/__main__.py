"""``python -m bench``: see bench/__init__.py and README.md, "Benchmarks"."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import os
import resource
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import burst, durability, fixtures, flow, machine, outage, report, stack, wrk
from bench.scenarios import Scenario, floor_scenarios, reference_scenarios, tessera_scenarios
from shared.security.signing_keys import load_key_set
from shared.storage import users
from shared.storage.redis_store import AdminClient, connect

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = ROOT.parent / "shared" / "bench"


def connection_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"not a list of positive counts: {text!r}")
    return counts


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds before each run")
    parser.add_argument(
        "--connections",
        type=connection_counts,
        default=[4, 16, 64],
        help="wrk connections, comma-separated: every scenario runs at each (default 4,16,64)",
    )
    parser.add_argument("--flow-workers", type=int, default=4, help="concurrent browser flows")
    parser.add_argument("--memory-tokens", type=int, default=100_000)
    parser.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE if DEFAULT_REFERENCE.is_dir() else None,
        help="folder of the reference server's bench (peer-oidc-provider/ inside); "
        "default: the team's bench folder beside the checkout, when there is one",
    )
    parser.add_argument("--no-reference", dest="reference", action="store_const", const=None)
    parser.add_argument(
        "--only",
        default="",
        help="run only scenarios whose name has this (also 'whole flow', 'burst', 'outage')",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return parser.parse_args()


async def redis_memory_per_token(
    redis: AdminClient, settings: Any, made: fixtures.Fixtures, count: int
) -> dict[str, float]:
    """Bytes of Redis memory that ``count`` active opaque access tokens take, each issued
    as the token endpoint issues a client_credentials token."""
    before = (await redis.info("memory"))["used_memory"]
    await fixtures.issued_for(redis, settings, made.opaque.client, count, refresh=False)
    after = (await redis.info("memory"))["used_memory"]
    return {"tokens": count, "bytes_per_token": (after - before) / count}


async def reference_setup(reference: stack.Reference) -> list[Scenario]:
    """The reference's scenarios, at the endpoints its metadata names."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{reference.url}/.well-known/openid-configuration") as r:
            endpoints = await r.json()
    basic = "Basic " + base64.b64encode(b"bench-client:bench-secret").decode()
    return reference_scenarios(endpoints, basic)


async def measure(
    scenario: Scenario, args: argparse.Namespace, work: Path, connections: int, expected_rps: float
) -> wrk.Result:
    """Warm up, wait for a quiet machine, then one measured run."""
    size = int(expected_rps * 1.5) + 1000
    warm = await scenario.prepare(int(size * args.warmup), work / "warmup.bodies")
    wrk.run(warm, seconds=args.warmup, connections=connections, cpu=stack.LOAD_CPU)
    load = await scenario.prepare(int(size * args.duration), work / "run.bodies")
    quiet = machine.wait_until_quiet()
    result = wrk.run(load, seconds=args.duration, connections=connections, cpu=stack.LOAD_CPU)
    if not quiet:
        print("  (the machine was busy before this run)")
    problem = await scenario.verify(result.requests) if scenario.verify else None
    if problem:
        result = dataclasses.replace(result, failures={**result.failures, "effect": problem})
    return result


def open_files_limit() -> None:
    """Raise this process's soft limit on open files to the hard one; the services inherit
    it. A burst holds 1,000 connections at each end, and a service as many to Redis."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {stack.LOAD_CPU})  # preparing and driving flows: off the server
    open_files_limit()
    work = args.out / time.strftime("run-%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    tessera = stack.start_tessera(work)
    reference = stack.start_reference(args.reference, work) if args.reference else None
    redis = connect(tessera.redis_url)
    try:
        settings = tessera.settings
        key_set = load_key_set(settings.signing_keys, settings.signing_key)
        made = await fixtures.register(redis, args.flow_workers)
        memory = await redis_memory_per_token(redis, settings, made, args.memory_tokens)
        print(f"Redis memory: {memory['bytes_per_token']:.0f} B per active opaque token")
        active = {
            "opaque": (
                await fixtures.issued_for(redis, settings, made.opaque.client, 1, refresh=False)
            )[0],
            "jwt": (
                await fixtures.issued_for(
                    redis, settings, made.jwt.client, 1, refresh=False, key_set=key_set
                )
            )[0],
        }
        ours = tessera_scenarios(redis, settings, made, tessera.urls, active)
        scenarios = ours + floor_scenarios(tessera.floor_url)
        if reference:
            scenarios += await reference_setup(reference)
        scenarios = [s for s in scenarios if args.only in s.name]
        # Side by side: each run measures every scenario once at each connection count,
        # Tessera's and the reference's in turn, so a noisy minute hurts both alike.
        order = sorted(scenarios, key=lambda s: (s.name.split(" ")[0], s.target))
        runs: dict[tuple[str, str, int], list[wrk.Result]] = {
            (s.name, s.target, count): [] for s in order for count in args.connections
        }
        for number in range(1, args.runs + 1):
            for count in args.connections:
                for scenario in order:
                    done = runs[(scenario.name, scenario.target, count)]
                    expected = max((r.rps for r in done), default=8000)
                    result = await measure(scenario, args, work, count, expected)
                    done.append(result)
                    print(report.run_line(number, scenario, count, result))
        flows = []
        flow_runs = args.runs if args.only in "whole flow" else 0
        for number in range(1, flow_runs + 1):
            await flow.run(
                tessera.urls["authorize"], tessera.urls["token"], made.app, made.usernames, 2
            )
            machine.wait_until_quiet()
            flown = await flow.run(
                tessera.urls["authorize"],
                tessera.urls["token"],
                made.app,
                made.usernames,
                args.duration,
            )
            flows.append(flown)
            print(
                f"run {number}  whole flow: {flown.flows_per_s:.1f} flows/s "
                f"({flown.failed} failed {flown.first_failure})"
            )
        user = await users.get(redis, made.usernames[0])
        assert user is not None
        # Before the burst, whose 1,000 connections are reported on their own.
        rss = {name: stack.peak_rss_mib(pid) for name, pid in tessera.pids.items()}
        if reference:
            rss["reference"] = stack.peak_rss_mib(reference.process.pid)
        bursts = await burst.run(tessera, made, active["opaque"]) if args.only in "burst" else None
        fsync = None
        if args.only in "durability":  # turns the append-only file on
            fsync = await durability.run(
                redis,
                ours,
                lambda scenario, count, rps: measure(scenario, args, work, count, rps),
                rounds=args.runs,
                connections=args.connections,
                redis_dir=tessera.redis_dir,
            )
        # Last: it kills the bench's Redis.
        outages = (
            await outage.run(tessera, redis, made, active["opaque"])
            if args.only in "outage"
            else None
        )
        return report.results(
            args,
            runs,
            flows,
            memory,
            rss,
            argon2=user.password_hash.split("$")[3],
            reference=reference.label if reference else None,
            burst=bursts,
            durability=fsync,
            outage=outages,
        )
    finally:
        await redis.aclose()
        if reference:
            reference.stop()
        tessera.group.stop()


if __name__ == "__main__":
    options = arguments()
    results = asyncio.run(main(options))
    (options.out / "bench.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = report.table(results)
    (options.out / "bench.md").write_text(table)
    print(table)
    raise SystemExit(0 if results["valid"] else 1)
