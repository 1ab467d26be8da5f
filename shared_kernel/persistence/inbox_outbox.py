"""Inbox (idempotency) and outbox (publish after commit) statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import MetaData, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert

from shared_kernel.envelope import Envelope
from shared_kernel.persistence.database import TENANT_SETTING
from shared_kernel.persistence.statements import compile_statement
from shared_kernel.persistence.tables import messaging_tables

_inbox, _outbox = messaging_tables(MetaData())

_INBOX_COLUMNS = ("tenant_id", "event_id", "event_type", "outcome")
# Sets the transaction's tenant and records the message in one round trip: the
# row-level security check of the insert already sees the tenant the CTE set.
_TENANT = select(func.set_config(TENANT_SETTING, bindparam("tenant_id"), True).label("tenant")).cte("tenant")
_RECORD_INBOX = compile_statement(
    insert(_inbox)
    .from_select(_INBOX_COLUMNS, select(*(bindparam(name) for name in _INBOX_COLUMNS)).select_from(_TENANT))
    .on_conflict_do_nothing()
    .returning(_inbox.c.event_id)
)
_SET_OUTCOME = compile_statement(
    _inbox.update()
    .where(_inbox.c.tenant_id == bindparam("tenant_id"), _inbox.c.event_id == bindparam("event_id"))
    .values(outcome=bindparam("outcome"))
)
_OUTBOX_COLUMNS = ("tenant_id", "exchange", "routing_key", "message_id", "properties", "body")
_INSERT_OUTBOX = compile_statement(
    insert(_outbox)
    .values(
        {
            **{name: bindparam(name) for name in _OUTBOX_COLUMNS},
            "due_at": func.coalesce(bindparam("due_at", type_=_outbox.c.due_at.type), func.now()),
        }
    )
    .inline()  # no RETURNING: nothing reads the new ids
)
# Take due rows in id order, skipping rows another relay holds, and delete them
# in the same statement; the deletion only lasts if the transaction commits,
# which the relay does after the broker has confirmed every message.
_due_ids = (
    select(_outbox.c.id)
    .where(_outbox.c.due_at <= func.now())
    .order_by(_outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_TAKE_DUE = compile_statement(
    _outbox.delete()
    .where(_outbox.c.id.in_(_due_ids))
    .returning(_outbox.c.id, _outbox.c.exchange, _outbox.c.routing_key, _outbox.c.properties, _outbox.c.body)
)


async def record_in_inbox(connection: asyncpg.Connection, envelope: Envelope, outcome: str) -> bool:
    """Enter the message's tenant and record it as processed; False for a duplicate.

    Call it first in the message's transaction: it is what scopes the rest of
    the transaction to the tenant (see ``Database.transaction``).
    """
    values = {
        "tenant_id": envelope.tenant_id,
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        "outcome": outcome,
    }
    return await connection.fetchval(_RECORD_INBOX.sql, *_RECORD_INBOX.args(values)) is not None


async def set_inbox_outcome(connection: asyncpg.Connection, envelope: Envelope, outcome: str) -> None:
    values = {"tenant_id": envelope.tenant_id, "event_id": envelope.event_id, "outcome": outcome}
    await connection.execute(_SET_OUTCOME.sql, *_SET_OUTCOME.args(values))


@dataclass(frozen=True)
class OutboxMessage:
    """A message to publish once the transaction that wrote it has committed."""

    tenant_id: str
    exchange: str
    routing_key: str
    message_id: str
    properties: dict[str, Any]
    body: bytes
    due_at: datetime | None = None

    @classmethod
    def of(
        cls, envelope: Envelope, *, exchange: str, routing_key: str, due_at: datetime | None = None
    ) -> OutboxMessage:
        return cls(
            tenant_id=envelope.tenant_id,
            exchange=exchange,
            routing_key=routing_key,
            message_id=envelope.event_id,
            properties=envelope.amqp_properties(),
            body=envelope.to_json(),
            due_at=due_at,
        )


async def write_outbox(connection: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
    rows = [_INSERT_OUTBOX.args(vars(message)) for message in messages]
    if len(rows) == 1:
        await connection.execute(_INSERT_OUTBOX.sql, *rows[0])
    elif rows:
        await connection.executemany(_INSERT_OUTBOX.sql, rows)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    exchange: str
    routing_key: str
    properties: dict[str, Any]
    body: bytes


async def take_due(connection: asyncpg.Connection, limit: int) -> list[OutboxRow]:
    """Delete up to ``limit`` due rows, returned in id order (undone by a rollback)."""
    rows = await connection.fetch(_TAKE_DUE.sql, *_TAKE_DUE.args({"limit": limit}))
    return sorted((OutboxRow(*row) for row in rows), key=lambda row: row.id)
