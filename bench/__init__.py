"""``make bench``: Tessera's hot endpoints under load, side by side with a reference server.

Each service process is pinned to CPU 0 and the load generator (``wrk``) to CPU 1; every
response is checked for its status and body, and a run with a single wrong answer is
invalid. A burst (bench.burst) and a Redis outage (bench.outage) follow, driven from
Python since every answer counts there; they are reported, never judged. See README.md,
"Benchmarks".
"""
