"""`countersign`: run the service and administer it. Reads the same settings as the server.

Errors are one readable line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from countersign import heap, logs, offline_verifier
from lifecycle.words import Role
from records import audit, audit_reads, channels, checkpoints, users, vault
from records.db import Database
from records.errors import CountersignError
from records.migrations import upgrade
from records.settings import Settings, load_settings

app = typer.Typer(
    help="Countersign: compliance-first approval of social-media replies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
keys_app = typer.Typer(help="The key that seals stored secrets.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
console = Console()
CLI_ACTOR = "cli"

RoleOption = Annotated[
    list[Role], typer.Option("--role", "-r", help="a role; repeat for several", show_default=False)
]


def _settings() -> Settings:
    return load_settings()


def _logging(settings: Settings) -> None:
    logs.configure(settings.log_format)


@app.command()
def dev() -> None:
    """Everything embedded: SQLite, the Temporal dev server, a worker and the API."""
    from countersign.devrunner import run_dev

    raise typer.Exit(run_dev(_settings()))


@app.command()
def api() -> None:
    """Serve the HTTP API (production: run several behind a load balancer)."""
    import uvicorn

    import api.app  # noqa: F401 - imported before the heap is settled

    settings = _settings()
    _refuse_development_secrets(settings, "api")
    _logging(settings)
    heap.settle()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        log_config=None,  # `countersign.logs` has configured logging
        access_log=False,  # written by `api.request_log`, by route template
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    _exit_skipping_finalization(0)


@app.command()
def worker() -> None:
    """Run a Temporal worker on the task queue (production: run several)."""
    import uvloop

    from workflows.worker import run

    settings = _settings()
    _refuse_development_secrets(settings, "worker")
    _logging(settings)
    heap.settle()
    uvloop.run(run(settings))
    _exit_skipping_finalization(0)


def _refuse_development_secrets(settings: Settings, what: str) -> None:
    """The development values are published in this repository: a process started with
    them accepts forged tokens. Only `countersign dev`, which makes its own, starts the API
    and the worker without these being set."""
    unset = settings.development_secrets()
    if unset:
        raise CountersignError(
            f"`countersign {what}` will not start with the development value of "
            f"{', '.join(unset)}: set them (`countersign dev` runs everything with its own)"
        )


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the Alembic migrations."""
    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    console.print(f"database at {_redacted(settings.resolved_database_url)} is at {revision}")


@users_app.command("add")
def users_add(
    username: str,
    role: RoleOption,
    password: Annotated[str | None, typer.Option(help="the password")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
    display_name: Annotated[str, typer.Option(help="the name people see")] = "",
) -> None:
    """Create a user with one or more roles."""
    if (password is None) == (not password_stdin):
        raise CountersignError("give exactly one of --password or --password-stdin")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    assert password is not None
    if len(password) < 12:
        raise CountersignError("the password must be at least 12 characters")
    if not role:
        raise CountersignError("give at least one --role")
    with _database().write_session() as session:
        users.create(
            session,
            username=username,
            roles=role,
            password=password,
            display_name=display_name,
            actor=CLI_ACTOR,
            actor_role=Role.admin.value,
        )
    console.print(f"created {username} with roles {', '.join(r.value for r in role)}")


@users_app.command("list")
def users_list() -> None:
    """List users, their roles and whether they are disabled."""
    table = Table("username", "display name", "roles", "disabled")
    with _database().read_session() as session:
        for user in users.list_users(session):
            public = users.to_public(session, user)
            roles = ", ".join(r.value for r in public.roles)
            table.add_row(
                public.username, public.display_name, roles, "yes" if public.disabled else ""
            )
    console.print(table)


@users_app.command("set-roles")
def users_set_roles(username: str, role: RoleOption) -> None:
    """Replace a user's roles."""
    if not role:
        raise CountersignError("give at least one --role")
    with _database().write_session() as session:
        users.set_roles(session, username, role, actor=CLI_ACTOR, actor_role=Role.admin.value)
    console.print(f"{username} now has roles {', '.join(r.value for r in role)}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: sign-in and every token they hold stop working at once."""
    with _database().write_session() as session:
        users.disable(session, username, actor=CLI_ACTOR, actor_role=Role.admin.value)
    console.print(f"{username} is disabled")


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None, typer.Option(help="check this JSONL export offline instead of the database")
    ] = None,
    key: Annotated[str, typer.Option(help="with --export: the log's verifier key")] = "",
    checkpoints_: Annotated[
        list[Path] | None,
        typer.Option("--checkpoints", help="with --export: checkpoint notes or folders"),
    ] = None,
) -> None:
    """Check the log within itself and against every signed checkpoint (in the database
    and in the checkpoint folder); exit 1 naming what is wrong. With --export, check an
    export offline, as `countersign/offline_verifier.py` does for anyone."""
    if export is not None:
        argv = ["--export", str(export), "--key", key]
        argv += ["--checkpoints", *map(str, checkpoints_ or [])] if checkpoints_ else []
        raise typer.Exit(offline_verifier.main(argv))
    settings = _settings()
    signer = checkpoints.signer_of(settings)
    with _database().read_session() as session:
        held = checkpoints.held(session.connection(), signer, checkpoints.sinks_of(settings))
        if held.problem is not None:
            raise CountersignError(held.problem)
        result = audit.verify(session, checkpoints=held.signed)
    if not result.ok:
        raise CountersignError(
            f"the audit log is broken at seq {result.first_bad_seq}: {result.problem} "
            f"({result.events_checked} events checked)"
        )
    signed = f", as signed at {result.checkpoint_size} events" if result.checkpoint_size else ""
    console.print(f"ok: {result.events_checked} events, chain intact{signed}")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of the log as it stands now (the worker also does, on a schedule)."""
    settings = _settings()
    with _database().write() as connection:
        found = checkpoints.issue(
            connection,
            checkpoints.signer_of(settings),
            sinks=checkpoints.sinks_of(settings),
            force=True,
        )
    assert found is not None
    console.print(found.note, end="")


@audit_app.command("new-key")
def audit_new_key() -> None:
    """Print a new audit signing key (COUNTERSIGN_AUDIT_SIGNING_KEY): keep it secret."""
    console.print(checkpoints.new_key())


@audit_app.command("export")
def audit_export(
    format: Annotated[str, typer.Option(help="jsonl or csv")] = "jsonl",
    output: Annotated[typer.FileTextWrite, typer.Option("--output", "-o")] = "-",  # type: ignore[assignment]
) -> None:
    """Write every event, in seq order, to a file or standard output."""
    if format not in ("jsonl", "csv"):
        raise CountersignError("--format is jsonl or csv")
    with _database().read_session() as session:
        for line in audit_reads.export_lines(session, audit_reads.AuditFilter(), format):
            output.write(line)


@keys_app.command("new")
def keys_new() -> None:
    """Print a new key for COUNTERSIGN_SECRETS_KEY (32 bytes, base64): keep it secret."""
    console.print(vault.new_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-seal every stored secret under COUNTERSIGN_SECRETS_KEY.

    To rotate: make a key (`countersign keys new`); set it as COUNTERSIGN_SECRETS_KEY and
    the old one in COUNTERSIGN_SECRETS_PREVIOUS_KEYS (a JSON list) for the API, the worker
    and this command; restart them; run this; then drop the old key from the list."""
    settings = _settings()
    vault.configure(vault.Vault.of(settings))
    database = Database(settings.resolved_database_url)
    with database.write() as connection:
        count = channels.reseal(connection)
        audit.append(
            connection,
            audit.NewEvent(
                actor=CLI_ACTOR,
                role="admin",
                action="secrets.rotated",
                payload={"resealed": count, "key_id": vault.current().key_id},
            ),
        )
    database.dispose()
    console.print(f"{count} stored secret(s) re-sealed under key {vault.current().key_id}")


def _exit_skipping_finalization(code: int) -> None:
    """Exit after a clean shutdown without running interpreter finalization.

    The Temporal client's Rust threads can outlive the interpreter and abort it while it
    finalizes ("PyGILState_Release ... finalizing", temporalio/sdk-python#300). By now the
    worker has drained and the database is disposed; only buffers remain to flush.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _database() -> Database:
    return Database(_settings().resolved_database_url)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    # Whatever this process or its children create (the SQLite file, logs, checkpoints,
    # keys) is readable by the service's own user only.
    os.umask(0o077)
    try:
        app()
    except CountersignError as exc:
        _fail(exc.detail)
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"configuration: {'.'.join(map(str, first['loc'])) or 'settings'}: {first['msg']}")
    except SQLAlchemyError as exc:
        _fail(f"database: {str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}")
    except (ConnectionError, FileNotFoundError, RuntimeError, OSError, vault.SealError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise SystemExit(1)


if __name__ == "__main__":
    main()
