"""``python -m devtools.stop_with_parent PARENT_PID PROGRAM [ARG...]``: run PROGRAM (by
execve, so with this process's id) so that it gets SIGTERM when its parent dies, however
the parent dies: ``make run`` killed with SIGKILL must not leave its Redis and services
running. ``devtools.local_processes.ProcessGroup(stop_with_parent=True)`` starts its
children through this.

How: Linux's PR_SET_PDEATHSIG (prctl(2)). It is set here and survives execve(2) (unless
PROGRAM is set-user-ID or has file capabilities), so PROGRAM needs no code of its own:
redis-server is told just as the services are. SIGTERM rather than SIGKILL, so that
Redis writes its append-only file and the services close their connections; both stop
promptly on it. Its pitfalls:

- The "parent" is the *thread* that started this process, not the parent process: the
  signal comes when that thread ends, though the process lives on. So ``ProcessGroup``
  starts such children from the main thread only, which lives as long as the process.
- The parent may die before prctl runs, and then no signal ever comes: so check
  afterwards that the parent is still PARENT_PID, and stop at once when it is not.

It also empties the signal mask, which execve passes on: ``make run`` blocks the signals
it takes with sigwait, and its children must not inherit that. Elsewhere than Linux only
the mask is reset.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv: list[str]) -> None:
    parent, program = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        sys.exit(f"stop_with_parent: parent {parent} is gone; not starting {program[0]}")
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    os.execvp(program[0], program)  # noqa: S606 - our own argv, as ProcessGroup's


if __name__ == "__main__":
    main(sys.argv[1:])
