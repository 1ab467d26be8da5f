"""Statements on a service's dead-letter store (``dead_letters``, ``dead_letters_archive``).

SQLAlchemy Core, compiled once per shape for asyncpg (as the inbox and
outbox are); every function takes a connection inside the caller's
transaction, so the caller decides what commits together.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, BigInteger, MetaData, Text, any_, bindparam, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql import ColumnElement

from shared_kernel.dead_letters.capture import CapturedDeadLetter
from shared_kernel.persistence.statements import Compiled, compile_statement
from shared_kernel.persistence.tables import DEAD_LETTER_STATUSES, dead_letter_tables

dead_letters, archive = dead_letter_tables(MetaData())

DEAD, REPLAYED, RESOLVED = DEAD_LETTER_STATUSES


@dataclass(frozen=True, kw_only=True)
class DeadLetter(CapturedDeadLetter):
    """One row of the store (or of the archive, with the archive's columns set):
    what was captured, plus what the store and the operators added."""

    id: int
    received_at: datetime
    status: str
    replay_count: int
    last_replayed_at: datetime | None
    last_replayed_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    archived_at: datetime | None = None
    archived_by: str | None = None
    archive_reason: str | None = None

    @classmethod
    def of(cls, record: asyncpg.Record) -> DeadLetter:
        return cls(**dict(record))


@dataclass(frozen=True)
class Group:
    """Dead letters that failed the same way."""

    group_key: str
    service: str
    event_type: str | None
    failure_outcome: str
    exception_type: str
    reason: str
    count: int
    first_failure_at: datetime
    last_failure_at: datetime
    first_id: int
    last_id: int


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operation takes: one, a group, or all; by status.

    ``up_to`` bounds the ids taken: what failed after the operator looked (or
    a replayed message that failed again) is left for the next operation.
    """

    id: int | None = None
    group: str | None = None
    statuses: tuple[str, ...] = (DEAD,)
    up_to: int | None = None

    def describe(self) -> str:
        what = f"id {self.id}" if self.id is not None else f"group {self.group}" if self.group else "all"
        return f"{what} ({'/'.join(self.statuses)})"


_CAPTURED = tuple(f.name for f in fields(CapturedDeadLetter))
_STORE_COLUMNS = tuple(column.name for column in dead_letters.c)
# A DLQ message stored, then purged, then delivered again (the mover died
# between commit and ack) stays purged: the archive holds its fingerprint.
_INSERT = compile_statement(
    insert(dead_letters)
    .from_select(
        _CAPTURED,
        select(*(bindparam(name, type_=dead_letters.c[name].type) for name in _CAPTURED)).where(
            ~exists().where(archive.c.fingerprint == bindparam("fingerprint"))
        ),
    )
    .on_conflict_do_nothing(index_elements=["fingerprint"])
    .returning(dead_letters.c.id)
)
_GET = compile_statement(select(dead_letters).where(dead_letters.c.id == bindparam("id")))
_LOCK = compile_statement(
    select(dead_letters).where(dead_letters.c.id == bindparam("id")).with_for_update(nowait=True)
)
_MARK_REPLAYED = compile_statement(
    dead_letters.update()
    .where(dead_letters.c.id == bindparam("id"))
    .values(
        status=REPLAYED,
        replay_count=dead_letters.c.replay_count + 1,
        last_replayed_at=func.now(),
        last_replayed_by=bindparam("actor"),
    )
)
_MARK_RESOLVED = compile_statement(
    dead_letters.update()
    .where(dead_letters.c.id == bindparam("id"))
    .values(
        status=RESOLVED,
        resolved_at=func.now(),
        resolved_by=bindparam("actor"),
        resolution=bindparam("resolution"),
    )
)
# The other dead copies of one message (an at-least-once duplicate dead-lettered
# twice, or a copy a killed replay left behind): an edit of one supersedes them.
_RESOLVE_SIBLINGS = compile_statement(
    dead_letters.update()
    .where(
        dead_letters.c.message_id == bindparam("message_id"),
        dead_letters.c.id != bindparam("id"),
        dead_letters.c.status == DEAD,
    )
    .values(
        status=RESOLVED,
        resolved_at=func.now(),
        resolved_by=bindparam("actor"),
        resolution=bindparam("resolution"),
    )
    .returning(dead_letters.c.id)
)
_GROUPS = compile_statement(
    select(
        dead_letters.c.group_key,
        dead_letters.c.service,
        dead_letters.c.event_type,
        dead_letters.c.failure_outcome,
        dead_letters.c.exception_type,
        dead_letters.c.reason,
        func.count().label("count"),
        func.min(dead_letters.c.first_failure_at).label("first_failure_at"),
        func.max(dead_letters.c.last_failure_at).label("last_failure_at"),
        func.min(dead_letters.c.id).label("first_id"),
        func.max(dead_letters.c.id).label("last_id"),
    )
    .where(dead_letters.c.status == any_(bindparam("statuses", type_=ARRAY(Text))))
    .group_by(
        dead_letters.c.group_key,
        dead_letters.c.service,
        dead_letters.c.event_type,
        dead_letters.c.failure_outcome,
        dead_letters.c.exception_type,
        dead_letters.c.reason,
    )
    .order_by(func.count().desc(), func.min(dead_letters.c.id))
)
_GET_ARCHIVED = compile_statement(select(archive).where(archive.c.id == bindparam("id")))
_LIST_ARCHIVED = compile_statement(
    select(archive).order_by(archive.c.archived_at.desc(), archive.c.id.desc()).limit(bindparam("limit"))
)
_statement_cache: dict[tuple[Any, ...], Compiled] = {}


def _where(selection: Selection) -> list[ColumnElement[bool]]:
    clauses = [dead_letters.c.status == any_(bindparam("statuses", type_=ARRAY(Text)))]
    if selection.id is not None:
        clauses.append(dead_letters.c.id == bindparam("id", type_=BigInteger))
    if selection.group is not None:
        clauses.append(dead_letters.c.group_key == bindparam("group"))
    if selection.up_to is not None:
        clauses.append(dead_letters.c.id <= bindparam("up_to", type_=BigInteger))
    return clauses


def _values(selection: Selection, **more: Any) -> dict[str, Any]:
    return {
        "statuses": list(selection.statuses),
        "id": selection.id,
        "group": selection.group,
        "up_to": selection.up_to,
        **more,
    }


def _shape(selection: Selection) -> tuple[bool, bool, bool]:
    return (selection.id is not None, selection.group is not None, selection.up_to is not None)


def _cached(kind: str, selection: Selection, build: Any) -> Compiled:
    key = (kind, *_shape(selection))
    if key not in _statement_cache:
        _statement_cache[key] = compile_statement(build(_where(selection)))
    return _statement_cache[key]


async def insert_captured(connection: asyncpg.Connection, letter: CapturedDeadLetter) -> int | None:
    """Store a dead letter; None when its fingerprint is already stored or archived."""
    row_id = await connection.fetchval(_INSERT.sql, *_INSERT.args(vars(letter)))
    return int(row_id) if row_id is not None else None


async def get(connection: asyncpg.Connection, letter_id: int) -> DeadLetter | None:
    record = await connection.fetchrow(_GET.sql, *_GET.args({"id": letter_id}))
    return DeadLetter.of(record) if record else None


async def lock(connection: asyncpg.Connection, letter_id: int) -> DeadLetter | None:
    """The row, locked for this transaction; raises LockNotAvailableError if another holds it."""
    record = await connection.fetchrow(_LOCK.sql, *_LOCK.args({"id": letter_id}))
    return DeadLetter.of(record) if record else None


async def claim_next(connection: asyncpg.Connection, selection: Selection, after: int) -> DeadLetter | None:
    """The next selected row after ``after`` (id order) that no other transaction holds, locked."""

    def build(where: list[ColumnElement[bool]]) -> Any:
        return (
            select(dead_letters)
            .where(*where, dead_letters.c.id > bindparam("after", type_=BigInteger))
            .order_by(dead_letters.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )

    statement = _cached("claim", selection, build)
    record = await connection.fetchrow(statement.sql, *statement.args(_values(selection, after=after)))
    return DeadLetter.of(record) if record else None


async def mark_replayed(connection: asyncpg.Connection, letter_id: int, actor: str) -> None:
    await connection.execute(_MARK_REPLAYED.sql, *_MARK_REPLAYED.args({"id": letter_id, "actor": actor}))


async def mark_resolved(connection: asyncpg.Connection, letter_id: int, actor: str, resolution: str) -> None:
    values = {"id": letter_id, "actor": actor, "resolution": resolution}
    await connection.execute(_MARK_RESOLVED.sql, *_MARK_RESOLVED.args(values))


async def resolve_siblings(
    connection: asyncpg.Connection, letter: DeadLetter, actor: str, resolution: str
) -> list[int]:
    """Resolve the other dead rows carrying ``letter``'s message id; their ids."""
    if letter.message_id is None:
        return []
    values = {"message_id": letter.message_id, "id": letter.id, "actor": actor, "resolution": resolution}
    return [
        row["id"] for row in await connection.fetch(_RESOLVE_SIBLINGS.sql, *_RESOLVE_SIBLINGS.args(values))
    ]


async def groups(connection: asyncpg.Connection, statuses: tuple[str, ...]) -> list[Group]:
    rows = await connection.fetch(_GROUPS.sql, *_GROUPS.args({"statuses": list(statuses)}))
    return [Group(**dict(row)) for row in rows]


async def letters(connection: asyncpg.Connection, selection: Selection, limit: int) -> list[DeadLetter]:
    def build(where: list[ColumnElement[bool]]) -> Any:
        return select(dead_letters).where(*where).order_by(dead_letters.c.id).limit(bindparam("limit"))

    statement = _cached("letters", selection, build)
    rows = await connection.fetch(statement.sql, *statement.args(_values(selection, limit=limit)))
    return [DeadLetter.of(row) for row in rows]


async def count(connection: asyncpg.Connection, selection: Selection) -> tuple[int, int | None]:
    """How many rows the selection takes, and the highest id among them."""

    def build(where: list[ColumnElement[bool]]) -> Any:
        return select(func.count(), func.max(dead_letters.c.id)).where(*where)

    statement = _cached("count", selection, build)
    row = await connection.fetchrow(statement.sql, *statement.args(_values(selection)))
    return int(row[0]), (int(row[1]) if row[1] is not None else None)


async def move_to_archive(
    connection: asyncpg.Connection, selection: Selection, *, actor: str, reason: str
) -> list[DeadLetter]:
    """Delete the selected rows no other transaction holds and insert them into the archive, in
    one statement; the archived rows, in id order."""

    def build(where: list[ColumnElement[bool]]) -> Any:
        taken_ids = select(dead_letters.c.id).where(*where).with_for_update(skip_locked=True)
        taken = (
            dead_letters.delete()
            .where(dead_letters.c.id.in_(taken_ids))
            .returning(*dead_letters.c)
            .cte("taken")
        )
        columns = (*_STORE_COLUMNS, "archived_by", "archive_reason")
        return (
            insert(archive)
            .from_select(
                columns,
                select(
                    *(taken.c[name] for name in _STORE_COLUMNS),
                    bindparam("actor", type_=Text),
                    bindparam("reason", type_=Text),
                ),
            )
            .returning(*archive.c)
        )

    statement = _cached("archive", selection, build)
    rows = await connection.fetch(
        statement.sql, *statement.args(_values(selection, actor=actor, reason=reason))
    )
    return sorted((DeadLetter.of(row) for row in rows), key=lambda letter: letter.id)


async def get_archived(connection: asyncpg.Connection, letter_id: int) -> DeadLetter | None:
    record = await connection.fetchrow(_GET_ARCHIVED.sql, *_GET_ARCHIVED.args({"id": letter_id}))
    return DeadLetter.of(record) if record else None


async def list_archived(connection: asyncpg.Connection, limit: int) -> list[DeadLetter]:
    rows = await connection.fetch(_LIST_ARCHIVED.sql, *_LIST_ARCHIVED.args({"limit": limit}))
    return [DeadLetter.of(row) for row in rows]
