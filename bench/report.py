"""The results: a JSON document, a short table, and each target met or missed."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench import stack, wrk
from bench.burst import markdown as burst_markdown
from bench.durability import markdown as durability_markdown
from bench.flow import FlowResult
from bench.outage import markdown as outage_markdown
from bench.scenarios import Scenario
from bench.wrk import Result

# The targets, for one service process on one core, with a real Redis. Req/s against the
# reference's, by scenario and connection count (16 connections: reported, not judged).
VS_REFERENCE = {
    ("introspection", 64): 2.0,
    ("client_credentials", 64): 1.5,
    ("introspection", 4): 1.0,
    ("client_credentials", 4): 1.0,
}
VS_CLIENT_CREDENTIALS = 0.7  # code exchange and refresh, against our client_credentials
# Token and introspection; the authorize service holds argon2id's 64 MiB per password
# check while people sign in, so its peak is reported, not judged.
MAX_RSS_MIB = 100
RSS_JUDGED = ("token", "introspect")
MAX_BYTES_PER_TOKEN = 400


def run_line(number: int, scenario: Scenario, connections: int, result: Result) -> str:
    verdict = "" if result.valid else f"  INVALID {result.failures}"
    return (
        f"run {number}  {scenario.target:9} {scenario.name:40} {connections:3} conn "
        f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
        f"{verdict}"
    )


def _median(results: list[Result]) -> dict[str, Any]:
    return {
        "rps": statistics.median(r.rps for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "runs": [
            {
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "requests": r.requests,
                "failures": r.failures,
            }
            for r in results
        ],
        "valid": all(r.valid for r in results),
    }


# Table rows in this order within one scenario and connection count.
TARGET_ORDER = {"tessera": 0, "floor": 1, "reference": 2}


def results(
    args: argparse.Namespace,
    runs: dict[tuple[str, str, int], list[Result]],
    flows: list[FlowResult],
    memory: dict[str, float],
    rss: dict[str, float],
    *,
    argon2: str,
    reference: str | None,
    burst: dict[str, Any] | None = None,
    durability: dict[str, Any] | None = None,
    outage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``runs``: each measured run by (scenario, target, connections)."""
    # By name, then connection count (a JSON key is a string), then target.
    scenarios: dict[str, dict[str, dict[str, Any]]] = {}
    for (name, target, connections), measured in sorted(
        runs.items(), key=lambda item: (item[0][2], TARGET_ORDER.get(item[0][1], 9))
    ):
        by_count = scenarios.setdefault(name, {}).setdefault(str(connections), {})
        by_count[target] = _median(measured)
    for by_count in scenarios.values():
        for by_target in by_count.values():
            ours, theirs = by_target.get("tessera"), by_target.get("reference")
            if ours and theirs:
                ours["vs_reference"] = ours["rps"] / theirs["rps"]
    document: dict[str, Any] = {
        "method": {
            "runs": args.runs,
            "seconds": args.duration,
            "warmup_seconds": args.warmup,
            "connections": args.connections,
            "wrk_threads": wrk.THREADS,
            "server_cpu": stack.SERVER_CPU,
            "load_cpu": stack.LOAD_CPU,
            "redis_cpu": stack.LOAD_CPU,
            "reference": reference,
        },
        "scenarios": scenarios,
        "flow": {
            "flows_per_s": statistics.median(f.flows_per_s for f in flows) if flows else None,
            "runs": [f.__dict__ for f in flows],
            "workers": args.flow_workers,
            "argon2id": argon2,
        },
        "redis_memory": memory,
        "peak_rss_mib": rss,
        # Reported, never judged: they count for nothing in "valid" or "targets".
        "burst": burst,
        "durability": durability,
        "outage": outage,
    }
    document["targets"] = targets(document)
    document["valid"] = all(
        figures.get("valid", True)
        for by_count in scenarios.values()
        for by_target in by_count.values()
        for figures in by_target.values()
    )
    document["valid"] = document["valid"] and not any(f.failed for f in flows)
    return document


def targets(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target at each connection count measured."""
    found: list[dict[str, Any]] = []
    scenarios = document["scenarios"]

    def check(what: str, value: float, limit: float, met: bool, valid: bool = True) -> None:
        # A target measured on a run with a wrong answer is not met, whatever the figure.
        found.append(
            {"target": what, "value": round(value, 3), "limit": limit, "met": met and valid}
        )

    def at(name: str, count: int, target: str) -> dict[str, Any] | None:
        figures: dict[str, Any] | None = scenarios.get(name, {}).get(str(count), {}).get(target)
        return figures

    for count in document["method"]["connections"]:
        for name in ("client_credentials", "introspection"):
            ours, theirs = at(name, count, "tessera"), at(name, count, "reference")
            if ours and theirs:
                valid = ours["valid"] and theirs["valid"]
                ratio = ours["rps"] / theirs["rps"]
                limit = VS_REFERENCE.get((name, count))
                if limit is not None:
                    check(
                        f"{name} req/s vs reference, {count} conn",
                        ratio,
                        limit,
                        ratio >= limit,
                        valid,
                    )
                check(
                    f"{name} p99 ms vs reference ({theirs['p99_ms']:.1f}), {count} conn",
                    ours["p99_ms"],
                    theirs["p99_ms"],
                    ours["p99_ms"] <= theirs["p99_ms"],
                    valid,
                )
        cc = at("client_credentials", count, "tessera")
        for name in ("authorization_code (PKCE S256)", "refresh_token"):
            ours = at(name, count, "tessera")
            if ours and cc:
                ratio = ours["rps"] / cc["rps"]
                check(
                    f"{name} vs client_credentials, {count} conn",
                    ratio,
                    VS_CLIENT_CREDENTIALS,
                    ratio >= VS_CLIENT_CREDENTIALS,
                    ours["valid"] and cc["valid"],
                )
    for service, mib in document["peak_rss_mib"].items():
        if service in RSS_JUDGED:
            check(f"peak RSS {service} MiB", mib, MAX_RSS_MIB, mib <= MAX_RSS_MIB)
    per_token = document["redis_memory"]["bytes_per_token"]
    check(
        "Redis bytes per opaque token",
        per_token,
        MAX_BYTES_PER_TOKEN,
        per_token <= MAX_BYTES_PER_TOKEN,
    )
    return found


def table(document: dict[str, Any]) -> str:
    lines = [
        "| scenario | conn | server | runs (req/s) | median req/s | p50 ms | p99 ms "
        "| vs reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, by_count in document["scenarios"].items():
        for count, by_target in by_count.items():
            for target, figures in by_target.items():
                ratio = f"{figures['vs_reference']:.2f}x" if "vs_reference" in figures else ""
                each = " / ".join(f"{r['rps']:.0f}" for r in figures["runs"])
                valid = "" if figures["valid"] else " INVALID"
                lines.append(
                    f"| {name} | {count} | {target}{valid} | {each} | {figures['rps']:.0f} | "
                    f"{figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {ratio} |"
                )
    flow = document["flow"]
    if flow["flows_per_s"] is not None:
        each = " / ".join(f"{r['flows_per_s']:.1f}" for r in flow["runs"])
        lines.append(
            f"| whole flow ({flow['workers']} browsers, argon2id {flow['argon2id']}) | "
            f"{flow['workers']} | tessera | {each} | {flow['flows_per_s']:.1f} flows/s | | | |"
        )
    lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
    for t in document["targets"]:
        lines.append(
            f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else 'NO'} |"
        )
    rss = ", ".join(f"{k} {v:.0f} MiB" for k, v in document["peak_rss_mib"].items())
    memory = document["redis_memory"]
    lines += [
        "",
        f"Peak RSS: {rss}. Redis: {memory['bytes_per_token']:.0f} B per active opaque access "
        f"token ({memory['tokens']:,} tokens).",
    ]
    if document["burst"]:
        lines += ["", *burst_markdown(document["burst"])]
    if document["durability"]:
        lines += ["", *durability_markdown(document["durability"])]
    if document["outage"]:
        lines += ["", *outage_markdown(document["outage"])]
    return "\n".join(lines) + "\n"
