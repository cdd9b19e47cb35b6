"""Password guessers for tests/test_sign_in_under_attack.py, run as a process of their
own: ``python tests/attackers.py CONFIG_JSON``.

Each guesser sends one guess after another, never waiting beyond the answer, half of
them through the login page and half through the password grant; each guess names the
target's username one time in three and a random one otherwise, and comes from an
address never used before (X-Forwarded-For, believed from the trusted proxy on loopback).
The process prints "attacking" once every guesser is ready, guesses until its standard
input closes, then prints what it sent and was answered, as JSON.

It runs niced: it stands for attackers on other machines, whose CPU is not the server's
(as the benchmarks keep their load generator off the services' core). The flood is as
large all the same: each guesser sends its next guess as soon as it is answered.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from collections import Counter
from typing import Any

import aiohttp
import orjson


def new_address() -> str:
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


def username(config: dict[str, Any]) -> str:
    return config["target"] if secrets.randbelow(3) == 0 else f"user-{secrets.token_hex(4)}"


async def by_password_grant(
    http: aiohttp.ClientSession,
    config: dict[str, Any],
    stop: asyncio.Event,
    answers: Counter[str],
) -> None:
    form = {
        "grant_type": "password",
        "scope": config["scope"],
        "client_id": config["client_id"],
        "client_secret": config["client_secret"],
    }
    while not stop.is_set():
        guess = {**form, "username": username(config), "password": secrets.token_hex(6)}
        headers = {"X-Forwarded-For": new_address()}
        async with http.post(f"{config['token']}/token", data=guess, headers=headers) as r:
            await r.read()
            answers[f"password grant {r.status}"] += 1


async def open_login_page(http: aiohttp.ClientSession, config: dict[str, Any]) -> dict[str, str]:
    """A browser's session at the sign-in page: the form fields to guess with."""
    first = {"X-Forwarded-For": new_address()}
    params = {
        "response_type": "code",
        "client_id": config["client_id"],
        "redirect_uri": "https://app.example.com/callback",
        "scope": config["scope"],
        "state": secrets.token_urlsafe(8),
    }
    async with http.get(
        f"{config['authorize']}/authorize", params=params, headers=first, allow_redirects=False
    ) as r:
        login = r.headers["Location"]
    async with http.get(f"{config['authorize']}{login}", headers=first) as r:
        found = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
        assert found, "no sign-in form"
    return {"interaction": login.split("interaction=")[1], "csrf_token": found.group(1)}


async def by_login_page(
    http: aiohttp.ClientSession,
    config: dict[str, Any],
    form: dict[str, str],
    stop: asyncio.Event,
    answers: Counter[str],
) -> None:
    while not stop.is_set():
        guess = {**form, "username": username(config), "password": secrets.token_hex(6)}
        headers = {"X-Forwarded-For": new_address()}
        async with http.post(
            f"{config['authorize']}/login", data=guess, headers=headers, allow_redirects=False
        ) as r:
            await r.read()
            answers[f"login page {r.status}"] += 1


async def main(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    answers: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        # A cookie jar each: every browser has a session and a sign-in page of its own.
        browsers = [
            aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                connector=connector,
                connector_owner=False,
            )
            for _ in range(config["attackers"] // 2)
        ]
        forms = await asyncio.gather(*(open_login_page(b, config) for b in browsers))
        guessers = [by_password_grant(http, config, stop, answers) for _ in browsers]
        guessers += [
            by_login_page(browser, config, form, stop, answers)
            for browser, form in zip(browsers, forms, strict=True)
        ]
        tasks = [asyncio.create_task(guesser) for guesser in guessers]
        sys.stdout.write("attacking\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.read)  # until the test closes it
        stop.set()
        await asyncio.gather(*tasks)
        for browser in browsers:
            await browser.close()
    report = {"guesses": sum(answers.values()), "answers": dict(sorted(answers.items()))}
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    os.nice(10)
    asyncio.run(main(orjson.loads(sys.argv[1])))
