"""Secrets at rest (issue 20, item 7): channel credentials are sealed (AES-256-GCM under
COUNTERSIGN_SECRETS_KEY, bound to their account), rotated by `countersign keys rotate`,
sealed by the migration where an older version kept them in the clear; the files the
service creates are readable by its user only. Both databases."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from records import channels, vault
from records.account_models import ChannelAccountCreate
from records.db import Database
from records.fields import Channel
from records.migrations import upgrade
from records.settings import DEV_SECRETS_KEY
from tests.helpers import own_secrets
from tests.test_cli import run

TOKEN = "EAAG-page-token-" + "z" * 40
SECRET = "app-secret-0123456789abcdef"


def account(name: str = "acme-facebook") -> ChannelAccountCreate:
    return ChannelAccountCreate(
        name=name,
        channel=Channel.facebook,
        source="meta",
        settings={"page_id": "1"},
        credentials={"page_access_token": TOKEN, "app_secret": SECRET},
    )


def raw(database: Database, name: str) -> str:
    with database.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT sealed_credentials FROM channel_accounts WHERE name = :n"), {"n": name}
            ).scalar_one()
        )


def test_credentials_are_never_in_the_database_in_the_clear(
    database: Database, database_url: str
) -> None:
    """The finding: channel credentials were stored as plain JSON."""
    with database.write() as connection:
        created = channels.create(connection, account(), actor="root")
    assert created.credential_names == ["app_secret", "page_access_token"]
    stored = raw(database, "acme-facebook")
    assert stored.startswith("cs1.") and TOKEN not in stored and SECRET not in stored
    if database_url.startswith("sqlite"):
        database.dispose()  # everything on disk, WAL included
        folder = Path(database_url.removeprefix("sqlite:///")).parent
        for file in folder.iterdir():
            assert TOKEN.encode() not in file.read_bytes(), file
    with database.engine.connect() as connection:
        opened = channels.by_name(connection, "acme-facebook")
    assert opened.credentials == {"page_access_token": TOKEN, "app_secret": SECRET}


def test_sealed_credentials_moved_to_another_account_do_not_open(database: Database) -> None:
    """Someone with the database file copies one account's credentials onto another (say,
    to have deliveries for it verified with a secret they know): refused, not used."""
    with database.write() as connection:
        channels.create(connection, account("acme-facebook"), actor="root")
        channels.create(connection, account("acme-instagram"), actor="root")
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE channel_accounts SET sealed_credentials = :s WHERE name = :n"),
            {"s": raw(database, "acme-facebook"), "n": "acme-instagram"},
        )
    with database.engine.connect() as connection, pytest.raises(vault.SealError, match="another"):
        channels.by_name(connection, "acme-instagram")
    flipped = raw(database, "acme-facebook")
    flipped = flipped[:-6] + ("A" if flipped[-6] != "A" else "B") + flipped[-5:]
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE channel_accounts SET sealed_credentials = :s WHERE name = :n"),
            {"s": flipped, "n": "acme-facebook"},
        )
    with database.engine.connect() as connection, pytest.raises(vault.SealError, match="altered"):
        channels.by_name(connection, "acme-facebook")


def test_credentials_do_not_follow_a_url_changed_in_the_database(database: Database) -> None:
    """Someone who can write the database points the account's Graph URL at a server of
    theirs: the credentials no longer open, so the worker sends them nowhere."""
    with database.write() as connection:
        channels.create(connection, account(), actor="root")
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE channel_accounts SET settings = :s WHERE name = 'acme-facebook'"),
            {"s": json.dumps({"page_id": "1", "graph_base": "https://evil.example/v21.0"})},
        )
    with database.engine.connect() as connection, pytest.raises(vault.SealError):
        channels.by_name(connection, "acme-facebook")


def test_keys_rotate_reseals_every_secret_under_the_new_key(
    database: Database,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with database.write() as connection:
        channels.create(connection, account(), actor="root")
    old = raw(database, "acme-facebook")
    new_key = vault.new_key()
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", database_url)
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", new_key)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_PREVIOUS_KEYS", json.dumps([DEV_SECRETS_KEY]))
    code, out, err = run(monkeypatch, capsys, "keys", "rotate")
    assert code == 0, err
    assert "1 stored secret(s) re-sealed" in out
    resealed = raw(database, "acme-facebook")
    assert resealed != old and resealed.split(".")[1] != old.split(".")[1]
    # The old key may go: what it sealed is sealed under the new one now.
    vault.configure(vault.Vault(vault.decode_key(new_key)))
    with database.engine.connect() as connection:
        assert channels.by_name(connection, "acme-facebook").credentials["app_secret"] == SECRET
    code, out, _ = run(monkeypatch, capsys, "keys", "rotate")
    assert code == 0 and "0 stored secret(s)" in out
    # Without the key that sealed it, the service says which key it needs.
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", vault.new_key())
    monkeypatch.delenv("COUNTERSIGN_SECRETS_PREVIOUS_KEYS")
    code, _, err = run(monkeypatch, capsys, "keys", "rotate")
    said = " ".join(err.split())
    assert code == 1 and f"sealed under key {resealed.split('.')[1]}" in said


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path, postgres_admin: str | None) -> Iterator[str]:
    """An empty database of the same kind as `database_url`."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    assert postgres_admin is not None
    name = f"countersign_old_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_migration_seals_what_an_older_version_kept_in_the_clear(fresh_url: str) -> None:
    upgrade(fresh_url, "0017")
    old = Database(fresh_url)
    with old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO channel_accounts (name, channel, source, settings, credentials,"
                " created_by, created_at) VALUES ('legacy', 'x', NULL, '{}', :c, 'root',"
                " CURRENT_TIMESTAMP)"
            ),
            {"c": json.dumps({"bearer_token": TOKEN})},
        )
    old.dispose()
    upgrade(fresh_url)
    new = Database(fresh_url)
    try:
        assert TOKEN not in raw(new, "legacy")
        with new.engine.connect() as connection:
            assert channels.by_name(connection, "legacy").credentials == {"bearer_token": TOKEN}
            columns = {c["name"] for c in _columns(connection)}
        assert "credentials" not in columns and "sealed_credentials" in columns
    finally:
        new.dispose()


def _columns(connection: object) -> list[dict[str, object]]:
    from sqlalchemy import inspect

    return inspect(connection).get_columns("channel_accounts")  # type: ignore[return-value]


def test_the_files_the_service_makes_are_readable_by_its_user_only(tmp_path: Path) -> None:
    """`countersign db upgrade` and `audit checkpoint`, as an operator runs them, in a new
    data folder: the database (and its WAL), the checkpoints and their folder are owner-only,
    whatever the shell's umask; a database an older version left world-readable is closed."""
    data = tmp_path / "var"
    env = {
        **os.environ,
        **own_secrets(),
        "COUNTERSIGN_DATA_DIR": str(data),
        "COUNTERSIGN_DATABASE_URL": "",
        "COUNTERSIGN_AUDIT_CHECKPOINT_DIR": str(data / "checkpoints"),
    }
    command = [
        sys.executable,
        "-c",
        "import os; os.umask(0o022); from countersign.cli import main; main()",
    ]
    for args in (["db", "upgrade"], ["audit", "checkpoint"]):
        done = subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    made = [data, *data.rglob("*")]
    assert any(p.name == "countersign.db" for p in made)
    assert any(p.suffix == ".txt" for p in made)
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))
    database = data / "countersign.db"
    database.chmod(0o644)
    done = subprocess.run([*command, "db", "upgrade"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_make_run_keeps_a_secrets_key_of_its_own(tmp_path: Path) -> None:
    from countersign.devrunner import _secrets

    (tmp_path / "dev-secrets.json").write_text(json.dumps({"COUNTERSIGN_JWT_SECRET": "kept"}))
    kept = _secrets(tmp_path)
    assert kept["COUNTERSIGN_JWT_SECRET"] == "kept"  # a folder from before the key existed
    assert kept["COUNTERSIGN_SECRETS_KEY"] != DEV_SECRETS_KEY
    vault.decode_key(kept["COUNTERSIGN_SECRETS_KEY"])
    assert _secrets(tmp_path) == kept
    assert stat.S_IMODE((tmp_path / "dev-secrets.json").stat().st_mode) == 0o600


def test_a_second_database_on_a_file_in_use_keeps_the_first_one_s_locks(tmp_path: Path) -> None:
    """Making the file owner-only must not open and close it while this process uses it:
    closing any descriptor of a file drops all this process's POSIX locks on it, SQLite's
    included, and another process may then take the file for its own (here: leave WAL
    mode; in the suite, a worker process checkpointed and deleted the WAL under this one's
    open connections: "file is not a database"). sqlite.org/howtocorrupt.html, 2.2."""
    path = tmp_path / "locks.db"
    upgrade(f"sqlite:///{path}")
    first = Database(f"sqlite:///{path}")
    with first.engine.connect() as connection:  # open, as a running service's are
        connection.execute(text("SELECT COUNT(*) FROM drafts"))
        Database(f"sqlite:///{path}").dispose()  # another in this process, as a tool makes
        other = subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], "
             "timeout=0); print(c.execute('PRAGMA journal_mode=DELETE').fetchone()[0])",
             str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
    first.dispose()
    assert other.stdout.strip() != "delete", "another process took the file from under us"
