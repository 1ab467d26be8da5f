"""Inbox (idempotency) and outbox (publish after commit) statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from shared_kernel.envelope import Envelope

_RECORD_INBOX = text(
    "INSERT INTO inbox (tenant_id, event_id, event_type, outcome) "
    "VALUES (:tenant_id, :event_id, :event_type, :outcome) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)

_INSERT_OUTBOX = text(
    "INSERT INTO outbox (tenant_id, exchange, routing_key, message_id, properties, body, due_at) "
    "VALUES (:tenant_id, :exchange, :routing_key, :message_id, :properties, :body, "
    "coalesce(:due_at, now()))"
).bindparams(bindparam("properties", type_=JSONB))

_CLAIM_DUE = text(
    "SELECT id, exchange, routing_key, properties, body FROM outbox "
    "WHERE due_at <= now() ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_DELETE_SENT = text("DELETE FROM outbox WHERE id = ANY(:ids)")


async def record_in_inbox(
    connection: AsyncConnection, envelope: Envelope, outcome: str
) -> bool:
    """Record the message as processed; False when it was already (a duplicate)."""
    result = await connection.execute(
        _RECORD_INBOX,
        {
            "tenant_id": envelope.tenant_id,
            "event_id": envelope.event_id,
            "event_type": envelope.event_type,
            "outcome": outcome,
        },
    )
    return result.first() is not None


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


async def write_outbox(connection: AsyncConnection, messages: Sequence[OutboxMessage]) -> None:
    if not messages:
        return
    await connection.execute(
        _INSERT_OUTBOX,
        [
            {
                "tenant_id": m.tenant_id,
                "exchange": m.exchange,
                "routing_key": m.routing_key,
                "message_id": m.message_id,
                "properties": m.properties,
                "body": m.body,
                "due_at": m.due_at,
            }
            for m in messages
        ],
    )


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    exchange: str
    routing_key: str
    properties: dict[str, Any]
    body: bytes


async def claim_due(connection: AsyncConnection, limit: int) -> list[ClaimedMessage]:
    """Lock due rows in id order; rows another relay holds are skipped."""
    rows = await connection.execute(_CLAIM_DUE, {"limit": limit})
    return [ClaimedMessage(*row) for row in rows]


async def delete_sent(connection: AsyncConnection, ids: Sequence[int]) -> None:
    await connection.execute(_DELETE_SENT, {"ids": list(ids)})
