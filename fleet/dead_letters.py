"""``devops dlq``: a service's dead letters, from its dead-letter store.

devops dlq list SERVICE [--group KEY] [--status dead|replayed|resolved|all]
devops dlq show SERVICE ID
devops dlq replay SERVICE (--id N | --group KEY | --all) [--again] [--reason TEXT]
devops dlq edit SERVICE ID [--set PATH=JSON]… [--unset PATH]… [--header NAME=VALUE]… [--note TEXT]
devops dlq purge SERVICE (--id N | --group KEY | --all) --reason TEXT [--yes]
devops dlq archive SERVICE [ID]

Connections come from the service's settings (its environment variables:
``DEVOPS_AMQP_URL``, ``DEVOPS_POSTGRES_HOST``, ``<SERVICE>_OPERATOR_ROLE_PASSWORD``
or ``<SERVICE>_OPERATOR_DATABASE_URL``, …). Changes are made as ``--actor``
(default ``$USER``), logged and published as audit records.
"""

# ruff: noqa: PLR0917 - a Typer command declares its options as parameters
from __future__ import annotations

import asyncio
import getpass
import importlib
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
import structlog
import typer
from rich.console import Console
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table

from shared_kernel.dead_letters import operations as ops
from shared_kernel.dead_letters.store import DEAD, REPLAYED, DeadLetter, Selection
from shared_kernel.logging import configure_logging
from shared_kernel.persistence.tables import DEAD_LETTER_STATUSES
from shared_kernel.settings import ServiceSettings

# The settings class of each service, by the name in fleet.cli.SERVICES.
SETTINGS_CLASSES = {
    "source_control": "services.source_control.settings:SourceControlSettings",
    "pipelines": "services.pipelines.settings:PipelinesSettings",
    "packaging": "services.packaging.settings:PackagingSettings",
}
# Fault injection for the crash tests: SIGKILL this process after the N-th confirmed replay copy.
CRASH_AFTER_CONFIRMS = "DEVOPS_DLQ_CRASH_AFTER_CONFIRMS"

dlq = typer.Typer(
    help="Dead letters: list, show, replay, edit and retry, purge (with an archive).",
    no_args_is_help=True,
    add_completion=False,
)
errors = Console(stderr=True)
T = TypeVar("T")

ServiceArgument = Annotated[str, typer.Argument(help="service, e.g. source_control")]
Actor = Annotated[
    str, typer.Option(envvar="DEVOPS_OPERATOR", help="who is acting (audit records); default $USER")
]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@dlq.callback()
def _logging() -> None:
    """Dead letters of one service: what failed, why, and what to do about it."""
    if not structlog.is_configured():
        configure_logging(service="devops-dlq", level="INFO", fmt="auto")


def settings_for(service: str) -> ServiceSettings:
    from fleet.cli import SERVICES  # fleet.cli registers this group: imported late

    if service not in SERVICES or service not in SETTINGS_CLASSES:
        known = ", ".join(name for name in SERVICES if name in SETTINGS_CLASSES)
        raise typer.BadParameter(f"unknown service {service!r}; known: {known}")
    module, _, name = SETTINGS_CLASSES[service].partition(":")
    settings_type: type[ServiceSettings] = getattr(importlib.import_module(module), name)
    return settings_type()


def _run(
    service: str,
    actor: str,
    work: Callable[[ops.Operator], Awaitable[T]],
    *,
    publishing: bool = False,
) -> T:
    settings = settings_for(service)
    actor = actor or os.environ.get("USER") or getpass.getuser()

    async def session() -> T:
        async with ops.operator_session(settings, actor=actor, publishing=publishing) as operator:
            return await work(operator)

    try:
        return asyncio.run(session())
    except ops.ReplayInterrupted as error:
        errors.print(
            f"[red]replay interrupted[/] after {len(error.replayed)} dead letter(s): {error.error!r}"
        )
        errors.print("the dead letters not replayed are still dead: run the replay again")
        raise typer.Exit(1) from error
    except ops.DeadLetterError as error:
        errors.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error


def _statuses(status: str) -> tuple[str, ...]:
    if status == "all":
        return DEAD_LETTER_STATUSES
    if status not in DEAD_LETTER_STATUSES:
        raise typer.BadParameter(f"status is one of {', '.join(DEAD_LETTER_STATUSES)}, all")
    return (status,)


def _selection(
    letter_id: int | None, group: str | None, everything: bool, statuses: tuple[str, ...]
) -> Selection:
    if sum((letter_id is not None, group is not None, everything)) != 1:
        raise typer.BadParameter("choose exactly one of --id, --group, --all")
    return Selection(id=letter_id, group=group, statuses=statuses)


def _console() -> Console:
    """Tables for a terminal at its width; piped or captured, wide enough not to wrap ids."""
    console = Console()
    return console if console.is_terminal else Console(width=220)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _echo_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


# -- reading ---------------------------------------------------------------------------


@dlq.command("list")
def list_dead_letters(
    service: ServiceArgument,
    group: Annotated[str | None, typer.Option(help="list the dead letters of one group")] = None,
    status: Annotated[str, typer.Option(help="dead, replayed, resolved or all")] = DEAD,
    limit: Annotated[int, typer.Option(help="dead letters listed with --group")] = 100,
    actor: Actor = "",
    as_json: AsJson = False,
) -> None:
    """Dead letters grouped by failure, or the letters of one group.

    A group is one kind of failure: event type, outcome, exception type (or
    rule) and reason (the exception message with ids and values masked).
    """
    statuses = _statuses(status)
    if group is None:
        groups = _run(service, actor, lambda operator: ops.list_groups(operator, statuses))
        if as_json:
            _echo_json([vars(found) for found in groups])
            return
        table = Table(
            "group",
            "event type",
            "outcome",
            "exception / rule",
            "reason",
            "count",
            "first failure",
            "last failure",
            title=f"{service}: dead letters ({status}) by failure",
        )
        for found in groups:
            table.add_row(
                found.group_key,
                found.event_type or "?",
                found.failure_outcome,
                found.exception_type,
                found.reason,
                str(found.count),
                _when(found.first_failure_at),
                _when(found.last_failure_at),
            )
        _console().print(table if groups else f"no {status} dead letters in {service}")
        return
    selection = Selection(group=group, statuses=statuses)
    letters = _run(service, actor, lambda operator: ops.list_letters(operator, selection, limit))
    if as_json:
        _echo_json([_summary(letter) for letter in letters])
        return
    table = Table(
        "id",
        "eventId",
        "tenant",
        "status",
        "attempts",
        "replays",
        "last failure",
        "exception message",
        title=f"{service}: group {group}",
    )
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.message_id or "",
            letter.tenant_id or "",
            letter.status,
            str(letter.attempts),
            str(letter.replay_count),
            _when(letter.last_failure_at),
            letter.exception_message,
        )
    _console().print(table)


def _summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "eventId": letter.message_id,
        "eventType": letter.event_type,
        "tenantId": letter.tenant_id,
        "status": letter.status,
        "group": letter.group_key,
        "exceptionType": letter.exception_type,
        "exceptionMessage": letter.exception_message,
        "attempts": letter.attempts,
        "replayCount": letter.replay_count,
        "lastFailureAt": letter.last_failure_at,
        "archivedAt": letter.archived_at,
        "archivedBy": letter.archived_by,
        "archiveReason": letter.archive_reason,
    }


@dlq.command()
def show(
    service: ServiceArgument,
    letter_id: Annotated[int, typer.Argument(metavar="ID")],
    actor: Actor = "",
    as_json: AsJson = False,
) -> None:
    """One dead letter in full: envelope, payload, failure headers, delivery history."""
    letter = _run(service, actor, lambda operator: ops.get(operator, letter_id))
    _print_letter(letter, as_json=as_json)


def _print_letter(letter: DeadLetter, *, as_json: bool) -> None:
    described = ops.describe(letter)
    if as_json:
        _echo_json(described)
        return
    console = _console()
    record = Table.grid(padding=(0, 2))
    for key, value in described["deadLetter"].items():
        if value not in (None, ""):
            record.add_row(key, str(value))
    console.print(Panel(record, title=f"dead letter {letter.id} ({letter.status})"))
    for title in ("envelope", "payload", "failureHeaders", "deliveryHistory", "otherHeaders", "properties"):
        if described[title]:
            console.print(Panel(JSON.from_data(described[title], default=str), title=title))
    if described["body"] is not None:
        console.print(Panel(described["body"], title="body (not JSON)"))


@dlq.command()
def archive(
    service: ServiceArgument,
    letter_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="show one archived letter")] = None,
    limit: Annotated[int, typer.Option(help="newest first")] = 100,
    actor: Actor = "",
    as_json: AsJson = False,
) -> None:
    """Purged dead letters, read back from the archive (who purged them, when, why)."""
    if letter_id is not None:
        letter = _run(service, actor, lambda operator: ops.get_archived(operator, letter_id))
        _print_letter(letter, as_json=as_json)
        return
    letters = _run(service, actor, lambda operator: ops.list_archive(operator, limit))
    if as_json:
        _echo_json([_summary(letter) for letter in letters])
        return
    table = Table(
        "id",
        "archived",
        "by",
        "reason",
        "event type",
        "eventId",
        "tenant",
        "exception / rule",
        title=f"{service}: archived dead letters",
    )
    for letter in letters:
        table.add_row(
            str(letter.id),
            _when(letter.archived_at),
            letter.archived_by or "",
            letter.archive_reason or "",
            letter.event_type or "?",
            letter.message_id or "",
            letter.tenant_id or "",
            letter.exception_type,
        )
    _console().print(table)


# -- changing --------------------------------------------------------------------------


@dlq.command()
def replay(
    service: ServiceArgument,
    letter_id: Annotated[int | None, typer.Option("--id", help="one dead letter")] = None,
    group: Annotated[str | None, typer.Option(help="every dead letter of a group")] = None,
    everything: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    again: Annotated[
        bool, typer.Option(help="also letters replayed before (the service ignores what it processed)")
    ] = False,
    reason: Annotated[str, typer.Option(help="why (audit record)")] = "",
    actor: Actor = "",
) -> None:
    """Send dead letters back to the service's inbox (eventId kept, each copy confirmed)."""
    statuses = (DEAD, REPLAYED) if again else (DEAD,)
    selection = _selection(letter_id, group, everything, statuses)
    after_confirm = _crash_after(int(os.environ.get(CRASH_AFTER_CONFIRMS) or 0))
    replayed = _run(
        service,
        actor,
        lambda operator: ops.replay(operator, selection, reason=reason, after_confirm=after_confirm),
        publishing=True,
    )
    _console().print(f"replayed {len(replayed)} dead letter(s) of {service} to {service}.inbox")
    if not replayed and letter_id is not None:
        letter = _run(service, actor, lambda operator: ops.get(operator, letter_id))
        errors.print(
            f"dead letter {letter_id} is {letter.status}"
            + (" (use --again to send it again)" if letter.status == REPLAYED else "")
            + ("" if letter.status != DEAD else " but another replay holds it")
        )
        raise typer.Exit(1)


def _crash_after(confirms: int) -> ops.AfterConfirm | None:
    if confirms <= 0:
        return None

    async def crash(_: DeadLetter, confirmed: int) -> None:
        if confirmed >= confirms:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def _assignment(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{option} takes NAME=VALUE, got {text!r}")
    return name.strip(), value


@dlq.command()
def edit(
    service: ServiceArgument,
    letter_id: Annotated[int, typer.Argument(metavar="ID")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="PATH=JSON in the envelope, e.g. payload.name='\"orders\"'"),
    ] = None,
    unset: Annotated[list[str] | None, typer.Option(help="PATH to remove, e.g. payload.unexpected")] = None,
    header: Annotated[list[str] | None, typer.Option(help="NAME=VALUE header on the corrected copy")] = None,
    note: Annotated[str, typer.Option(help="why (resolution note, audit record)")] = "",
    actor: Actor = "",
) -> None:
    """Correct one dead letter and send it as a new message; the original is marked resolved.

    The corrected copy has a new eventId (same prefix) whose causationId is
    the original eventId; the correlation and trace are kept.
    """
    changes: dict[str, Any] = {}
    for text in set_ or []:
        path, raw = _assignment(text, "--set")
        try:
            changes[path] = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise typer.BadParameter(
                f"--set {path}: {raw!r} is not JSON (quote strings: '\"text\"')"
            ) from error
    headers = dict(_assignment(text, "--header") for text in header or [])
    if not changes and not unset and not headers:
        raise typer.BadParameter("nothing to change: give --set, --unset or --header")
    correction = ops.Edit(set=changes, unset=tuple(unset or ()), headers=headers)
    result = _run(
        service,
        actor,
        lambda operator: ops.edit_and_retry(operator, letter_id, correction, note=note),
        publishing=True,
    )
    _console().print(
        f"dead letter {result.dead_letter_id} resolved; corrected copy sent as {result.new_event_id} "
        f"(caused by {result.original_event_id})"
    )
    typer.echo(result.new_event_id)


@dlq.command()
def purge(
    service: ServiceArgument,
    reason: Annotated[str, typer.Option(help="why (kept in the archive and the audit record)")],
    letter_id: Annotated[int | None, typer.Option("--id", help="one dead letter")] = None,
    group: Annotated[str | None, typer.Option(help="every dead letter of a group")] = None,
    everything: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    status: Annotated[
        str | None, typer.Option(help="dead, replayed, resolved or all (default: all for --id, else dead)")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    actor: Actor = "",
) -> None:
    """Move dead letters to the archive, after an explicit confirmation."""
    if not reason.strip():
        raise typer.BadParameter("--reason must say why")
    statuses = _statuses(status or ("all" if letter_id is not None else DEAD))
    selection = _selection(letter_id, group, everything, statuses)
    bounded, found = _run(service, actor, lambda operator: ops.count_selection(operator, selection))
    if not found:
        _console().print(f"nothing to purge in {service} ({selection.describe()})")
        return
    if not yes:
        answer = typer.prompt(
            f"{found} dead letter(s) of {service} ({selection.describe()}) will move to the archive. "
            f"Type {found} to confirm"
        )
        if answer.strip() != str(found):
            errors.print("[red]not confirmed; nothing purged[/]")
            raise typer.Exit(1)
    archived = _run(
        service, actor, lambda operator: ops.purge(operator, bounded, reason=reason), publishing=True
    )
    _console().print(
        f"archived {len(archived)} dead letter(s) of {service}"
        + (f" ({found - len(archived)} held by another operation were left)" if len(archived) < found else "")
        + f"; read them back with: devops dlq archive {service}"
    )
