"""Password checks (argon2id) off the event loop: bounded, and fair to the account's owner.

A check holds 64 MiB and a core for about a tenth of a second. A process runs at most
``threads`` at once, so a flood of sign-ins cannot exhaust its memory; and at most
``queue`` more wait in each of two lines, so no caller waits seconds behind a flood: one
more is refused at once (the caller answers 429 with Retry-After, RFC 6585 §4).

The first line is for a username signing in from an address it signed in from before
(``shared.login_throttle``), and a free thread always takes it first: guesses from
elsewhere, however many, then delay the owner by no more than the checks already running.
Nobody else can use that line without the password.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from shared import crypto
from shared.app_keys import PASSWORD_CHECKS, SETTINGS


class PasswordChecks:
    def __init__(self, threads: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._idle = threads
        self._queue = queue
        # Turns waiting for a thread: the known addresses' line, then everyone else's.
        self._lines: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    def reserve(self, *, priority: bool) -> Place | None:
        """A place for one check, in the priority line or the other; None when that line
        is full. Reserve before spending anything else on the attempt, so a refusal here
        costs the caller nothing (its sign-in limits included)."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._idle:
            self._idle -= 1
            turn.set_result(None)
            return Place(self, turn, None)
        line = self._lines[0 if priority else 1]
        if len(line) >= self._queue:
            return None
        line.append(turn)
        return Place(self, turn, line)

    def waiting(self, *, priority: bool) -> int:
        return len(self._lines[0 if priority else 1])

    def _thread_done(self) -> None:
        """A thread is free: to the first turn of the first line that has one, or idle."""
        for line in self._lines:
            while line:
                turn = line.popleft()
                # One cancelled with its caller may still be here, until the caller's
                # release runs.
                if not turn.done():
                    turn.set_result(None)
                    return
        self._idle += 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Place:
    """One reserved check: ``verify`` it, or ``release`` it unused (always safe to call)."""

    def __init__(
        self,
        checks: PasswordChecks,
        turn: asyncio.Future[None],
        line: deque[asyncio.Future[None]] | None,
    ) -> None:
        self._checks = checks
        self._turn = turn
        self._line = line  # where the turn waits, if it did not get a thread at once
        self._used = False

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Wait for a thread, then check ``password`` (``crypto.check_password``)."""
        self._used = True
        try:
            await self._turn
        except asyncio.CancelledError:
            self._used = False
            self.release()
            raise
        loop = asyncio.get_running_loop()
        job = self._checks._executor.submit(crypto.check_password, password_hash, password)
        # The thread is given to the next turn when the check really ends, even if the
        # caller stopped waiting for it (cancelled): never more checks than threads.
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._checks._thread_done))
        return await asyncio.wrap_future(job)

    def release(self) -> None:
        """Give the place up without checking: its thread to the next turn, or out of
        its line. Nothing once ``verify`` has started."""
        if self._used:
            return
        self._used = True
        if self._turn.done() and not self._turn.cancelled():
            self._checks._thread_done()
            return
        self._turn.cancel()
        if self._line is not None and self._turn in self._line:
            self._line.remove(self._turn)  # a line holds a few places: cheap


async def password_checks_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the services that check passwords (authorize, token)."""
    settings = app[SETTINGS]
    checks = PasswordChecks(settings.password_check_threads, settings.password_check_queue)
    app[PASSWORD_CHECKS] = checks
    yield
    checks.close()
