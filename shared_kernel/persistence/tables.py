"""Table shapes every service uses: its inbox, its outbox, its aggregate tables.

An aggregate table keeps the whole aggregate as a JSONB document beside the
columns the database must know about: the tenant, the project, the audit
columns, the version (optimistic concurrency) and the columns that carry
uniqueness constraints or lookups. The primary key starts with ``tenant_id``
so the tables can be distributed by tenant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

INBOX = "inbox"
OUTBOX = "outbox"


def audit_columns() -> list[Column[Any]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("created_by", Text, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("updated_by", Text, nullable=False),
        Column("version", Integer, nullable=False),
    ]


def aggregate_table(metadata: MetaData, name: str, *extra: Any) -> Table:
    """An aggregate table: keys, lookup columns and constraints in ``extra``."""
    return Table(
        name,
        metadata,
        Column("tenant_id", Text, nullable=False),
        Column("id", Text, nullable=False),
        Column("project_id", Text, nullable=True),
        *extra,
        Column("state", JSONB, nullable=False),
        *audit_columns(),
        PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{name}"),
    )


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The inbox (processed message ids) and the outbox (messages to publish)."""
    inbox = Table(
        INBOX,
        metadata,
        Column("tenant_id", Text, nullable=False),
        Column("event_id", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("outcome", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("tenant_id", "event_id", name="pk_inbox"),
    )
    outbox = Table(
        OUTBOX,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("tenant_id", Text, nullable=False),
        Column("exchange", Text, nullable=False),
        Column("routing_key", Text, nullable=False),
        Column("message_id", Text, nullable=False),
        Column("properties", JSONB, nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("due_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_outbox_due_at", "due_at"),
    )
    return inbox, outbox
