"""Password checks (argon2id) off the event loop: bounded, and fair to the account's owner.

A check holds 64 MiB and a core for about a tenth of a second. A process runs at most
``threads`` at once, so a flood of sign-ins cannot exhaust its memory; and at most
``queue`` more wait in each of two lines, so no caller waits seconds behind a flood: one
more is refused at once (the caller answers 429 with Retry-After, RFC 6585 §4).

The first line is for a username signing in from an address it signed in from before,
or from a browser holding its device cookie (``shared.web.login_throttle``): only a correct
password for that username, earlier, puts an address or a browser there. It is served
first, one thread is kept for it alone (when there are two or more), and its checks run
at the process's own CPU priority while everyone else's run niced: under a flood of
guesses the owner neither waits for a guess's check to end nor shares the CPU with them
on equal terms.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from shared.domain.password_hashing import RFC_9106_LOW_MEMORY, PasswordHashing
from shared.security import crypto
from shared.web.app_keys import SETTINGS

log = logging.getLogger("tessera.password_checks")

# The two lines: an owner's, and everyone else's.
OWNERS, OTHERS = 0, 1
# The niceness of the threads that check everyone else's passwords: under contention
# such a thread gets about a tenth of the CPU a thread of nice 0 gets (Linux's CFS
# weights), so guesses take the CPU that owners and the event loop leave.
OTHERS_NICENESS = 10


def _run_niced() -> None:
    """Thread initializer: lower this thread's CPU priority. Linux keeps a niceness per
    thread; elsewhere it would renice the whole process, so nothing is done there."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), OTHERS_NICENESS)
    except OSError as exc:  # a sandbox that forbids it: the checks run all the same
        log.warning("cannot lower the priority of a password-check thread: %s", exc)


class PasswordChecks:
    def __init__(
        self, threads: int, queue: int, hashing: PasswordHashing = RFC_9106_LOW_MEMORY
    ) -> None:
        # The parameters of the hash an unknown username is checked against.
        self.hashing = hashing
        # Two pools, so that the owners' checks never run on a niced thread; how many
        # run at once in both together is counted below (memory: 64 MiB each).
        # Everyone else may hold all threads but one, kept for the owners' line: an owner
        # then never waits for a guess's check to end (with one thread, they share it).
        self._others_limit = max(1, threads - 1)
        self._executors = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2-owners"),
            ThreadPoolExecutor(
                max_workers=self._others_limit,
                thread_name_prefix="argon2",
                initializer=_run_niced,
            ),
        )
        self._threads = threads
        self._queue = queue
        # Per line (the owners', everyone else's): threads held, and turns waiting.
        self._held = [0, 0]
        self._lines: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    def reserve(self, *, priority: bool) -> Place | None:
        """A place for one check, in the owners' line or the other; None when that line
        is full. Reserve before spending anything else on the attempt, so a refusal here
        costs the caller nothing (its sign-in limits included)."""
        kind = OWNERS if priority else OTHERS
        line = self._lines[kind]
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not line and self._may_start(kind):
            self._held[kind] += 1
            turn.set_result(None)
        elif len(line) >= self._queue:
            return None
        else:
            line.append(turn)
        return Place(self, turn, kind)

    def waiting(self, *, priority: bool) -> int:
        return len(self._lines[OWNERS if priority else OTHERS])

    def _may_start(self, kind: int) -> bool:
        if sum(self._held) >= self._threads:
            return False
        return kind == OWNERS or self._held[OTHERS] < self._others_limit

    def _thread_done(self, kind: int) -> None:
        """A check of that line ended (or its place was given up): the next turns go."""
        self._held[kind] -= 1
        for waiting, line in enumerate(self._lines):
            while line and self._may_start(waiting):
                turn = line.popleft()
                # One cancelled with its caller may still be here, until the caller's
                # release runs.
                if not turn.done():
                    self._held[waiting] += 1
                    turn.set_result(None)

    def _leave(self, kind: int, turn: asyncio.Future[None]) -> None:
        if turn in self._lines[kind]:
            self._lines[kind].remove(turn)  # a line holds a few places: cheap

    def close(self) -> None:
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)


# The authorize and token services' argon2 threads and the lines before them.
PASSWORD_CHECKS: web.AppKey[PasswordChecks] = web.AppKey("password_checks")


class Place:
    """One reserved check: ``verify`` it, or ``release`` it unused (always safe to call)."""

    def __init__(self, checks: PasswordChecks, turn: asyncio.Future[None], kind: int) -> None:
        self._checks = checks
        self._turn = turn
        self._kind = kind
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
        executor = self._checks._executors[self._kind]
        job = executor.submit(crypto.check_password, password_hash, password, self._checks.hashing)

        # The thread is given to the next turn when the check really ends, even if the
        # caller stopped waiting for it (cancelled): never more checks than threads.
        def ended(_: object) -> None:
            try:
                loop.call_soon_threadsafe(self._checks._thread_done, self._kind)
            except RuntimeError:
                pass  # the loop is closed: the service is stopping

        job.add_done_callback(ended)
        return await asyncio.wrap_future(job)

    def release(self) -> None:
        """Give the place up without checking: its thread to the next turn, or out of
        its line. Nothing once ``verify`` has started."""
        if self._used:
            return
        self._used = True
        if self._turn.done() and not self._turn.cancelled():
            self._checks._thread_done(self._kind)
            return
        self._turn.cancel()
        self._checks._leave(self._kind, self._turn)


async def password_checks_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the services that check passwords (authorize, token)."""
    settings = app[SETTINGS]
    checks = PasswordChecks(
        settings.password_check_threads,
        settings.password_check_queue,
        settings.password_hashing,
    )
    app[PASSWORD_CHECKS] = checks
    yield
    checks.close()
