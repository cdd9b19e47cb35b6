"""The ledger of every credential the run hands out or sends (codes, tokens, client
secrets, passwords, CSRF tokens, session ids, the admin token), written by the helpers
that see them, and the search of the service logs for them: at the end of the session,
no log line may hold one (DESIGN: the cause goes to the log, never a secret;
tests/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SECRETS_USED: set[str] = set()

_SECRET_PARAMETERS = ("code", "access_token", "refresh_token", "client_secret")


def remember_secrets(params: dict[str, Any]) -> None:
    for name in _SECRET_PARAMETERS:
        if isinstance(params.get(name), str):
            SECRETS_USED.add(params[name])


# What tokens, codes, ids and secrets are made of (base64url, hex, the dot of a grant
# family, standard base64): every occurrence of such a secret lies within a run of these.
_TOKEN_CHARACTERS = r"A-Za-z0-9_.~+/=-"
_TOKEN_RUN = re.compile(f"[{_TOKEN_CHARACTERS}]{{8,}}")


def secrets_in_logs(logs: list[Path], used: set[str]) -> list[tuple[str, int]]:
    """The (file name, line number) of every log line that holds one of ``used``.

    A plain search of each line for each secret costs lines times secrets (seconds, for
    a run's thousands of each); the same answer comes from searching once over the
    distinct runs of token characters the logs hold, for the secrets made of those
    characters alone, and over the whole text for the few others (a password with
    spaces). The lines are then found for the secrets found."""
    texts = {log.name: log.read_text(errors="replace") for log in logs}
    token_like = {secret for secret in used if _TOKEN_RUN.fullmatch(secret)}
    runs = "\n".join({run for text in texts.values() for run in _TOKEN_RUN.findall(text)})
    leaked = {secret for secret in token_like if secret in runs}
    leaked |= {s for s in used - token_like for text in texts.values() if s in text}
    return [
        (name, number)
        for name, text in texts.items()
        if any(secret in text for secret in leaked)
        for number, line in enumerate(text.splitlines(), 1)
        if any(secret in line for secret in leaked)
    ]
