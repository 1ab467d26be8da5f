"""Table shapes every service uses: its inbox, its outbox, its aggregate tables,
its dead-letter store.

An aggregate table keeps the whole aggregate as a JSONB document beside the
columns the database must know about: the tenant, the project, the audit
columns, the version (optimistic concurrency) and the columns that carry
uniqueness constraints or lookups. The primary key starts with ``tenant_id``
so the tables can be distributed by tenant.

The dead-letter store (``dead_letters`` and ``dead_letters_archive``) is the
exception: a dead letter may have no tenant (an undecodable body), so it has
no row-level security; only the operator role may touch it (grants).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

INBOX = "inbox"
OUTBOX = "outbox"
DEAD_LETTERS = "dead_letters"
DEAD_LETTERS_ARCHIVE = "dead_letters_archive"
DEAD_LETTER_STATUSES = ("dead", "replayed", "resolved")


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
        # Keyed by tenant first, like every table here (distributable by tenant_id);
        # the relay walks all tenants in id order through ix_outbox_id.
        Column("id", BigInteger, nullable=False, autoincrement=True),
        Column("tenant_id", Text, nullable=False),
        Column("exchange", Text, nullable=False),
        Column("routing_key", Text, nullable=False),
        Column("message_id", Text, nullable=False),
        Column("properties", JSONB, nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("due_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("tenant_id", "id", name="pk_outbox"),
        Index("ix_outbox_id", "id"),
        Index("ix_outbox_due_at", "due_at"),
    )
    return inbox, outbox


def _dead_letter_columns() -> list[Column[Any]]:
    """What operators group, show and replay by (shared by the store and its archive)."""
    return [
        # Same message, same failure: stored once (see shared_kernel.dead_letters.capture).
        Column("fingerprint", Text, nullable=False),
        # Hash of (service, event type, outcome, exception type, reason): ``--group``.
        Column("group_key", Text, nullable=False),
        Column("service", Text, nullable=False),
        Column("message_id", Text, nullable=True),
        Column("event_type", Text, nullable=True),
        Column("tenant_id", Text, nullable=True),
        Column("correlation_id", Text, nullable=True),
        Column("original_exchange", Text, nullable=True),
        Column("original_routing_key", Text, nullable=True),
        Column("body", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("properties", JSONB, nullable=False),
        Column("exception_type", Text, nullable=False),
        Column("exception_message", Text, nullable=False),
        # The exception message with identifiers and values masked: part of the group.
        Column("reason", Text, nullable=False),
        Column("failure_outcome", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("first_failure_at", DateTime(timezone=True), nullable=False),
        Column("last_failure_at", DateTime(timezone=True), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("status", Text, nullable=False, server_default="dead"),
        Column("replay_count", Integer, nullable=False, server_default="0"),
        Column("last_replayed_at", DateTime(timezone=True), nullable=True),
        Column("last_replayed_by", Text, nullable=True),
        Column("resolved_at", DateTime(timezone=True), nullable=True),
        Column("resolved_by", Text, nullable=True),
        Column("resolution", Text, nullable=True),
    ]


def dead_letter_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The dead-letter store of one service and the archive purged letters move to."""
    statuses = ", ".join(f"'{status}'" for status in DEAD_LETTER_STATUSES)
    dead_letters = Table(
        DEAD_LETTERS,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        *_dead_letter_columns(),
        UniqueConstraint("fingerprint", name="uq_dead_letters_fingerprint"),
        CheckConstraint(f"status IN ({statuses})", name="ck_dead_letters_status"),
        Index("ix_dead_letters_status_group", "status", "group_key", "id"),
        Index("ix_dead_letters_message_id", "message_id"),
    )
    archive = Table(
        DEAD_LETTERS_ARCHIVE,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=False),  # the dead letter's id
        *_dead_letter_columns(),
        Column("archived_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("archived_by", Text, nullable=False),
        Column("archive_reason", Text, nullable=False),
        Index("ix_dead_letters_archive_fingerprint", "fingerprint"),
        Index("ix_dead_letters_archive_archived_at", "archived_at"),
    )
    return dead_letters, archive


def service_metadata() -> MetaData:
    """A service's metadata with the tables every service has: inbox, outbox, dead letters."""
    metadata = MetaData()
    messaging_tables(metadata)
    dead_letter_tables(metadata)
    return metadata
