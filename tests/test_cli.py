"""The `countersign` command: user administration and readable errors."""

from __future__ import annotations

import base64
import io
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from countersign.cli import main
from records import audit, checkpoints, users
from records.audit_models import AuditEvent
from records.db import Database
from records.settings import load_settings
from tests.helpers import around_the_trigger, own_secrets


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["countersign", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    umask = os.umask(0o022)  # main() sets its own: give the test process its own back
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.umask(umask)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    database: Database,
    tmp_path: Path,
):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", database_url)
    # Not the checkout's ./var, where a `make run` keeps its own key and checkpoints.
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")

    def call(*args: str, stdin: str = "") -> tuple[int, str, str]:
        return run(monkeypatch, capsys, *args, stdin=stdin)

    return call


def test_users_add_list_set_roles_disable(cli, database: Database) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and "head" in out
    code, out, err = cli(
        "users",
        "add",
        "maria",
        "--role",
        "comms",
        "--role",
        "legal",
        "--password-stdin",
        stdin="a very long password\n",
    )
    assert code == 0, err
    code, out, _ = cli("users", "add", "li", "-r", "agent", "--password", "another long one")
    assert code == 0
    code, out, _ = cli("users", "list")
    assert code == 0 and "maria" in out and "comms, legal" in out and "li" in out
    assert cli("users", "set-roles", "li", "--role", "supervisor")[0] == 0
    assert cli("users", "disable", "li")[0] == 0
    with database.read_session() as session:
        li = users.require(session, "li")
        assert li.disabled and li.id is not None
        assert [r.value for r in users.roles_of(session, li.id)] == ["supervisor"]
        actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert actions == ["user.created", "user.created", "user.roles_changed", "user.disabled"]
        assert all(e == "cli" for e in session.exec(select(AuditEvent.actor)).all())
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (("users", "add", "bob", "--role", "agent"), "", "exactly one of --password"),
        (("users", "add", "bob", "--role", "agent", "--password", "short"), "", "12 characters"),
        (("users", "disable", "ghost"), "", "no user named 'ghost'"),
        (("users", "set-roles", "ghost", "--role", "agent"), "", "no user named 'ghost'"),
    ],
)
def test_errors_are_one_readable_line_and_a_non_zero_exit(
    cli,
    args: tuple[str, ...],
    stdin: str,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    code, out, err = cli(*args, stdin=stdin)
    assert code == 1
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_a_duplicate_user_is_an_error_not_a_traceback(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("users", "add", "bob", "-r", "agent", "--password", "long enough pw")[0] == 0
    code, _, err = cli("users", "add", "bob", "-r", "agent", "--password", "long enough pw")
    assert code == 1 and "already exists" in err and "Traceback" not in err


def test_an_unknown_role_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("users", "add", "bob", "-r", "wizard", "--password", "long enough pw")
    assert code == 2 and "wizard" in err


def test_a_bad_database_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, out, err = run(monkeypatch, capsys, "users", "list")
    assert code == 1 and err.startswith("error: database:")
    assert "Traceback" not in err + out


def test_audit_verify_and_export(cli, database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert cli("users", "add", "bob", "-r", "agent", "--password", "long enough pw")[0] == 0
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "1 events" in out
    target = tmp_path / "audit.jsonl"
    assert cli("audit", "export", "--output", str(target))[0] == 0
    assert '"action": "user.created"' in target.read_text()
    code, out, _ = cli("audit", "export", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("seq,at,actor")
    with around_the_trigger(database) as conn:
        conn.execute(text("UPDATE audit_events SET role = 'auditor' WHERE seq = 1"))
    code, _, err = cli("audit", "verify")
    assert code == 1 and "broken at seq 1" in err


def test_audit_checkpoint_then_verify_an_export_offline(  # type: ignore[no-untyped-def]
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """`audit checkpoint` signs into the folder outside the database; `audit verify
    --export` checks an export against it with the standalone verifier; `audit new-key`
    prints a fresh signing key."""
    sink = tmp_path / "checkpoints"
    monkeypatch.setenv("COUNTERSIGN_AUDIT_CHECKPOINT_DIR", str(sink))
    assert cli("users", "add", "bob", "-r", "agent", "--password", "long enough pw")[0] == 0
    code, out, _ = cli("audit", "checkpoint")
    assert code == 0 and out.splitlines()[1] == "1"
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "as signed at 1 events" in out
    target = tmp_path / "audit.jsonl"
    assert cli("audit", "export", "--output", str(target))[0] == 0
    key = checkpoints.signer_of(load_settings()).verifier_key
    code, out, _ = cli(
        "audit", "verify", "--export", str(target), "--key", key, "--checkpoints", str(sink)
    )
    assert code == 0 and out.startswith("ok: 1 events")
    target.write_text(target.read_text().replace("bob", "eve"))
    code, out, _ = cli(
        "audit", "verify", "--export", str(target), "--key", key, "--checkpoints", str(sink)
    )
    assert code == 1 and "NOT OK" in out
    code, out, _ = cli("audit", "new-key")
    assert code == 0 and len(base64.b64decode(out.strip())) == 32


@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_refuse_the_published_development_secrets(  # type: ignore[no-untyped-def]
    cli, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Started by hand with nothing set, they would accept tokens anyone can forge from the
    repository's development secret: they refuse, and say what to set."""
    code, _, err = cli(command)
    said = " ".join(err.split())  # the console wraps long lines
    assert code == 1 and "COUNTERSIGN_JWT_SECRET" in said and "countersign dev" in said
    for name, value in own_secrets().items():
        monkeypatch.setenv(name, value)
    assert load_settings().development_secrets() == []


def test_the_worker_and_the_api_settle_their_heap_before_serving(
    cli,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """A full collection of a started process's ~300,000 objects took ~155 ms (the router's
    whole p99): both long-running commands freeze what they started with, then serve."""
    import uvicorn
    import uvloop

    from countersign import cli as commands

    calls: list[str] = []

    monkeypatch.setattr(commands.heap, "settle", lambda: calls.append("settle"))
    monkeypatch.setattr(uvloop, "run", lambda coroutine: calls.append("serve") or coroutine.close())
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **_k: calls.append("serve"))
    monkeypatch.setattr(commands, "_refuse_development_secrets", lambda *_a: None)
    monkeypatch.setattr(commands, "_exit_skipping_finalization", lambda code: None)
    for command in ("worker", "api"):
        code, _out, err = cli(command)
        assert code == 0, err
    assert calls == ["settle", "serve", "settle", "serve"]


def test_settling_the_heap_freezes_what_exists_and_still_collects_what_comes_after() -> None:
    import gc
    import weakref

    from countersign import heap

    class Cycle:
        pass

    try:
        before = Cycle()
        before.me = before  # type: ignore[attr-defined]
        dead = weakref.ref(before)
        del before
        heap.settle()
        assert dead() is None  # garbage from starting is collected, not frozen for good
        assert gc.get_freeze_count() > 0
        later = Cycle()
        later.me = later  # type: ignore[attr-defined]
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None  # made after the freeze: collected as ever
    finally:
        gc.unfreeze()  # the test process goes on as it was
