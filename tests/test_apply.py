"""``tessera apply``: YAML documents applied through the session stack's admin API, made
idempotent (a second apply changes nothing), updated field by field, pruned of managed
names only, with secrets from the environment or files and never from the documents.

Each test declares names of its own (``unique``) and Managed patterns that match them
alone: the session's stack holds every other test's records, which --prune must leave.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.admin.apply_documents import SecretRef, load
from tests.command_line import Run, assert_refused, listing, tessera
from tests.flows import token_request
from tests.records import REDIRECT_URI, unique
from tests.secrets_ledger import SECRETS_USED
from tests.stack import Stack
from tests.test_cli import registered


class Names:
    """One test's names, all under one prefix its Managed patterns match."""

    def __init__(self) -> None:
        self.prefix = unique("apply").lower()
        self.scope = f"{self.prefix}:read"
        self.other_scope = f"{self.prefix}:write"
        self.client = f"{self.prefix}-web"
        self.user = f"{self.prefix}-alice"

    def managed(self, users: bool = False) -> str:
        patterns = f"[{self.prefix}:*]"
        text = f"kind: Managed\nscopes: {patterns}\nclients: [{self.prefix}-*]\n"
        return text + (f"users: [{self.prefix}-*]\n" if users else "")

    def scope_doc(self, name: str | None = None, description: str = "Read things") -> str:
        return f"kind: Scope\nname: {name or self.scope}\ndescription: {description}\n"

    def client_doc(self, secret_env: str, **fields: str) -> str:
        lines = {
            "client_id": self.client,
            "client_name": "Orders web",
            "redirect_uris": f"[{REDIRECT_URI}]",
            "grant_types": "[authorization_code, client_credentials]",
            "scope": self.scope,
            "client_secret": f"{{fromEnv: {secret_env}}}",
            **fields,
        }
        return "kind: Client\n" + "".join(f"{k}: {v}\n" for k, v in lines.items())


def documents(tmp_path: Path, *texts: str, name: str = "tessera.yaml") -> Path:
    path = tmp_path / name
    path.write_text("---\n".join(texts))
    return path


SECRET_ENV = "TEST_APPLY_CLIENT_SECRET"


def secret_env() -> dict[str, str]:
    secret = "an-imported-secret-of-enough-length-" + unique("s")
    SECRETS_USED.add(secret)
    return {SECRET_ENV: secret}


async def apply(stack: Stack, path: Path, *extra: str, env: dict[str, str] | None = None) -> Run:
    return await tessera(stack, "apply", "-f", str(path), *extra, env=env)


async def test_create_then_reapply_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    n = Names()
    env = secret_env()
    path = documents(tmp_path, n.managed(), n.scope_doc(), n.client_doc(SECRET_ENV))

    run = await apply(stack, path, env=env)

    assert run.status == 0, run.stderr
    assert run.stdout.splitlines()[0] == f"+ scope {n.scope}"
    assert f"+ client {n.client}" in run.stdout
    assert f"    client_secret (from ${SECRET_ENV})" in run.stdout
    assert env[SECRET_ENV] not in run.stdout + run.stderr
    assert run.stdout.endswith("Applied: 2 created, 0 updated, 0 deleted.\n")
    shown = (await tessera(stack, "client", "show", n.client, "-o", "json")).json()
    assert (shown["client_name"], shown["scope"]) == ("Orders web", n.scope)

    # Again: nothing to do, and the dry run says so.
    before = await listing(stack)
    dry = await apply(stack, path, "--dry-run", env=env)
    assert (dry.status, dry.stdout) == (0, "No changes. Dry run: nothing was changed.\n")
    again = await apply(stack, path, "--prune", env=env)
    assert (again.status, again.stdout) == (0, "No changes.\n")
    assert await listing(stack) == before


async def test_one_changed_field_is_one_update(stack: Stack, tmp_path: Path) -> None:
    n = Names()
    env = secret_env()
    first = documents(tmp_path, n.scope_doc(), n.client_doc(SECRET_ENV))
    assert (await apply(stack, first, env=env)).status == 0
    created = (await tessera(stack, "client", "show", n.client, "-o", "json")).json()
    changed = documents(
        tmp_path, n.scope_doc(), n.client_doc(SECRET_ENV, client_name="Orders, renamed")
    )

    dry = await apply(stack, changed, "--dry-run", env=env)

    assert dry.status == 0, dry.stderr
    assert dry.stdout == (
        f"~ client {n.client}\n"
        '    client_name: "Orders web" → "Orders, renamed"\n'
        "Plan: 0 to create, 1 to update, 0 to delete. Dry run: nothing was changed.\n"
    )
    plan = (
        await tessera(stack, "apply", "-f", str(changed), "--dry-run", "-o", "json", env=env)
    ).json()
    assert plan == {
        "dry_run": True,
        "changes": [
            {
                "action": "update",
                "kind": "client",
                "name": n.client,
                "fields": {"client_name": {"before": "Orders web", "after": "Orders, renamed"}},
            }
        ],
    }
    # The dry run changed nothing; the apply changes that field and no other.
    assert (await tessera(stack, "client", "show", n.client, "-o", "json")).json() == created
    run = await apply(stack, changed, env=env)
    assert run.status == 0, run.stderr
    after = (await tessera(stack, "client", "show", n.client, "-o", "json")).json()
    assert {k for k in after if after[k] != created[k]} == {"client_name"}
    assert (await apply(stack, changed, "--dry-run", env=env)).stdout.startswith("No changes.")


async def test_prune_deletes_only_managed_names_the_files_no_longer_declare(
    stack: Stack, tmp_path: Path
) -> None:
    n = Names()
    env = secret_env()
    everything = documents(
        tmp_path,
        n.managed(users=True),
        n.scope_doc(),
        n.scope_doc(n.other_scope, "Write things"),
        n.client_doc(SECRET_ENV),
        f"kind: User\nusername: {n.user}\npassword: {{fromEnv: {SECRET_ENV}}}\n"
        "claims: {name: Alice, email_verified: false}\n",
    )
    assert (await apply(stack, everything, env=env)).status == 0
    # Made by hand, outside the patterns: never pruned.
    handmade = unique("handmade")
    assert (await tessera(stack, "scope", "add", handmade, "--description", "x")).status == 0
    only_the_client_scope = documents(
        tmp_path, n.managed(users=True), n.scope_doc(), n.client_doc(SECRET_ENV), name="b.yaml"
    )

    without_prune = await apply(stack, only_the_client_scope, env=env)
    assert (without_prune.status, without_prune.stdout) == (0, "No changes.\n")
    run = await apply(stack, only_the_client_scope, "--prune", env=env)

    assert run.status == 0, run.stderr
    # Users first, scopes last: nothing is deleted while in use.
    assert run.stdout == (
        f"- user {n.user}\n- scope {n.other_scope}\nApplied: 0 created, 0 updated, 2 deleted.\n"
    )
    scopes = {s["name"] for s in (await listing(stack))["scopes"]}
    assert {n.scope, handmade} <= scopes
    assert n.other_scope not in scopes
    assert (await tessera(stack, "user", "show", n.user)).status == 1


async def test_prune_without_a_managed_document_is_refused(stack: Stack, tmp_path: Path) -> None:
    n = Names()
    path = documents(tmp_path, n.scope_doc())
    await assert_refused(stack, ["apply", "-f", str(path), "--prune"], "kind: Managed")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"client_secret": "s3cr3t-in-the-file"}, "a secret is never kept there", id="literal"
        ),
        pytest.param(
            {"client_secret": "{fromEnv: TEST_APPLY_UNSET}"},
            "TEST_APPLY_UNSET is not set",
            id="unset",
        ),
        pytest.param(
            {"client_secret": "{fromFile: missing-file}"}, "cannot read the secret file", id="file"
        ),
        pytest.param(
            {"grant_types": "[authorization_code, telepathy]"},
            "grant_types must be one of",
            id="grant",
        ),
        pytest.param(
            {"response_types": "[code]"}, "response_types is set by Tessera", id="read-only"
        ),
        pytest.param({"colour": "blue"}, "has no field 'colour'", id="unknown"),
        pytest.param({"client_name": "''"}, "is new: give client_name", id="no-name"),
        pytest.param({"refresh_count": "-1"}, "refresh_count must be a whole number", id="count"),
    ],
)
async def test_bad_documents_are_refused_whole_and_change_nothing(
    stack: Stack, tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    n = Names()
    path = documents(tmp_path, n.scope_doc(), n.client_doc(SECRET_ENV, **fields))
    run = await assert_refused(stack, ["apply", "-f", str(path)], message)
    assert "s3cr3t-in-the-file" not in run.stderr
    # The scope, declared first and valid, was not created either.
    assert n.scope not in {s["name"] for s in (await listing(stack))["scopes"]}


async def test_a_duplicate_key_or_document_is_refused(stack: Stack, tmp_path: Path) -> None:
    n = Names()
    twice = documents(tmp_path, n.scope_doc() + "description: again\n")
    await assert_refused(
        stack, ["apply", "-f", str(twice)], "line 4: not valid YAML: 'description' is given twice"
    )
    declared_twice = documents(tmp_path, n.scope_doc(), n.scope_doc(), name="twice.yaml")
    await assert_refused(stack, ["apply", "-f", str(declared_twice)], "declared twice")


async def test_import_a_client_id_and_secret_then_client_credentials(
    stack: Stack, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Moving from webMethods Integration Server: the client keeps its id and secret."""
    n = Names()
    secret_file = tmp_path / "secrets" / "wm-client"
    secret_file.parent.mkdir()
    kept = "the.secret.webMethods.issued." + unique("w")
    SECRETS_USED.add(kept)
    secret_file.write_text(kept + "\n")
    client_id = f"{n.prefix}-wm"
    # A directory of documents; the secret file named relative to the document.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "1-scopes.yml").write_text(n.scope_doc())
    (tmp_path / "docs" / "2-clients.yaml").write_text(
        f"kind: Client\nclient_id: {client_id}\nclient_name: Billing job\n"
        "grant_types: [client_credentials]\n"
        f"scope: [{n.scope}]\ndefault_scope: {n.scope}\n"
        "client_secret: {fromFile: ../secrets/wm-client}\n"
    )

    run = await tessera(stack, "apply", "-f", str(tmp_path / "docs"))

    assert run.status == 0, run.stderr
    assert kept not in run.stdout
    created: dict[str, Any] = {
        "client_id": client_id,
        "client_name": "Billing job",
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": [],
        "scope": n.scope,
        "client_secret": kept,
    }
    reply = await token_request(
        http,
        stack,
        registered(created, ["client_credentials"]),
        {"grant_type": "client_credentials"},
    )
    assert reply.status == 200, reply.body
    assert reply.body["scope"] == n.scope


async def test_users_are_created_with_a_password_from_a_file_and_their_claims_updated(
    stack: Stack, tmp_path: Path
) -> None:
    n = Names()
    (tmp_path / "alice-password").write_text("alice's long password\n")
    SECRETS_USED.add("alice's long password")
    doc = (
        f"kind: User\nusername: {n.user}\npassword: {{fromFile: alice-password}}\n"
        "claims: {name: Alice, locale: en-GB, phone_number: +44 20 7946 0958,"
        " address: {locality: Oxford}}\n"
    )
    assert (await apply(stack, documents(tmp_path, doc))).status == 0
    # The phone number is stored in E.164, and the address's other members are left
    # alone: neither is a difference.
    member = ["user", "update", n.user, "--address-country", "United Kingdom"]
    assert (await tessera(stack, *member)).status == 0
    same = await apply(stack, documents(tmp_path, doc), "--dry-run")
    assert same.stdout == "No changes. Dry run: nothing was changed.\n"
    changed = doc.replace("locale: en-GB", "locale: null, email: alice@example.com")

    dry = await apply(stack, documents(tmp_path, changed), "--dry-run")

    assert dry.stdout == (
        f"~ user {n.user}\n"
        '    claims.locale: "en-GB" → null\n'
        '    claims.email: null → "alice@example.com"\n'
        "Plan: 0 to create, 1 to update, 0 to delete. Dry run: nothing was changed.\n"
    )
    assert (await apply(stack, documents(tmp_path, changed))).status == 0
    claims = (await tessera(stack, "user", "show", n.user, "-o", "json")).json()["claims"]
    assert claims == {
        "name": "Alice",
        "email": "alice@example.com",
        "phone_number": "+442079460958",
        "address": {"locality": "Oxford", "country": "United Kingdom"},
    }


# --- the README's example, as it says ---------------------------------------------------------


def readme_blocks(title: str) -> list[tuple[str, str]]:
    """The fenced blocks (language, text) of the README's section ``title``."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split(f"\n### {title}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"^```(\w*)\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


async def test_the_readmes_example_and_its_dry_runs_are_what_apply_does(
    stack: Stack, tmp_path: Path
) -> None:
    """The example file of "Declarative configuration" and the two dry runs the README
    shows, on this stack (whose Redis has no orders:read, orders-web nor billing-job)."""
    blocks = readme_blocks("Declarative configuration: `tessera apply`")
    (example,) = [text for language, text in blocks if language == "yaml"]
    first, second = [text for language, text in blocks if language == ""]
    folder = tmp_path / "tessera"
    (folder / "secrets").mkdir(parents=True)
    (folder / "orders.yaml").write_text(example)
    (folder / "secrets" / "billing-job").write_text("an-imported-webMethods-secret-1")
    env = {"ORDERS_WEB_SECRET": "a-secret-of-the-order-app-0123456789"}
    SECRETS_USED.update(["an-imported-webMethods-secret-1", env["ORDERS_WEB_SECRET"]])

    async def dry_run(path: Path, *extra: str) -> str:
        run = await apply(stack, path, "--dry-run", *extra, env=env)
        assert run.status == 0, run.stderr
        return run.stdout.replace(f"{tmp_path}/", "")

    assert await dry_run(folder / "orders.yaml") == first
    assert (await apply(stack, folder / "orders.yaml", env=env)).status == 0
    assert await dry_run(folder / "orders.yaml") == "No changes. Dry run: nothing was changed.\n"

    legacy = ["client", "create", "--client-id", "orders-legacy", "--name", "Old order app"]
    legacy += ["--type", "public", "--redirect-uri", "https://orders.example.com/old"]
    assert (await tessera(stack, *legacy)).status == 0
    changed = example.replace("refresh_count: 5", "refresh_count: 10").replace(
        "redirect_uris: [https://orders.example.com/callback]",
        "redirect_uris: [https://orders.example.com/callback, https://orders.example.com/m/callback]",
    )
    (folder / "orders.yaml").write_text(changed)
    assert await dry_run(folder, "--prune") == second


def test_the_readmes_import_document_is_one_apply_reads(tmp_path: Path) -> None:
    blocks = readme_blocks("Its clients, with their ids and secrets")
    (example,) = [text for language, text in blocks if language == "yaml"]
    (tmp_path / "client.yaml").write_text(example)
    desired = load([tmp_path])
    assert list(desired.clients) == ["billing-job"]
    assert desired.clients["billing-job"].secret == SecretRef("fromEnv", "BILLING_JOB_SECRET")
