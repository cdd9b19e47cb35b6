"""No log line of the whole run holds a credential (DESIGN: the cause goes to the log,
never a secret). Named to run last: it reads every service log the run wrote and looks
for every code, token, client secret, password, CSRF token and session id that the
shared helpers (tests/oauth.py) handed out or sent."""

from __future__ import annotations

from tests.oauth import ARTIFACTS, SECRETS_USED


def test_no_log_line_of_the_run_holds_a_secret_it_used() -> None:
    logs = sorted((ARTIFACTS / "logs").glob("*.log"))
    assert logs, "the run wrote no service log"
    # Enough of them that a silent ledger would show: the stack alone hands out dozens.
    assert len(SECRETS_USED) > 20, len(SECRETS_USED)
    found = [
        (log.name, number)
        for log in logs
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1)
        for secret in SECRETS_USED
        if secret in line
    ]
    assert found == [], f"secrets in log lines (file, line): {found[:10]}"
