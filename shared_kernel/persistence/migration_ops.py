"""DDL steps that every service's migrations share (tenant isolation, grants,
the dead-letter store).

Called from Alembic revision scripts; the service's roles come from the
Alembic config the ``migrate`` command builds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared_kernel.persistence.database import TENANT_SETTING
from shared_kernel.persistence.tables import DEAD_LETTERS, DEAD_LETTERS_ARCHIVE, INBOX, OUTBOX


def _role_attributes() -> dict[str, Any]:
    return op.get_context().config.attributes  # type: ignore[union-attr]


def service_roles() -> tuple[str, str]:
    attributes = _role_attributes()
    return attributes["app_role"], attributes["relay_role"]


def operator_role() -> str:
    """``devops_<service>_operator``: the dead-letter store and nothing else."""
    return str(_role_attributes()["operator_role"])


def isolate_tenants(table: str) -> None:
    """Row-level security: rows of the transaction's tenant only; none if unset."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    match = f"tenant_id = current_setting('{TENANT_SETTING}', true)"
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({match}) WITH CHECK ({match})")


def grant_service_access(aggregate_tables: Iterable[str]) -> None:
    """The consumer reads and writes its tables; the relay reads and deletes the outbox."""
    app, relay = service_roles()
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{app}", "{relay}"')
    for table in (*aggregate_tables, INBOX):
        op.execute(f'GRANT SELECT, INSERT, UPDATE ON {table} TO "{app}"')
    op.execute(f'GRANT INSERT ON {OUTBOX} TO "{app}"')
    op.execute(f'GRANT USAGE ON SEQUENCE {OUTBOX}_id_seq TO "{app}"')
    # FOR UPDATE (the relay's claim) needs the UPDATE privilege.
    op.execute(f'GRANT SELECT, UPDATE, DELETE ON {OUTBOX} TO "{relay}"')
    # The relay publishes every tenant's rows; the consumer still sees only its tenant's.
    op.execute(f'CREATE POLICY relay_sees_all ON {OUTBOX} TO "{relay}" USING (true)')


def _dead_letter_columns() -> list[sa.Column[Any]]:
    """The store's columns as ``tables.dead_letter_tables`` made them at revision 1."""
    return [
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("event_type", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("original_exchange", sa.Text(), nullable=True),
        sa.Column("original_routing_key", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", JSONB(), nullable=False),
        sa.Column("properties", JSONB(), nullable=False),
        sa.Column("exception_type", sa.Text(), nullable=False),
        sa.Column("exception_message", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("failure_outcome", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("status", sa.Text(), nullable=False, server_default="dead"),
        sa.Column("replay_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_replayed_by", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
    ]


def create_dead_letter_store() -> None:
    """``dead_letters`` and ``dead_letters_archive`` (revision 1), granted to the operator role.

    Spelled out rather than taken from the live metadata, like a revision
    script: a later change to the store is a new operation in a new revision.
    No row-level security: a dead letter may have no tenant (an undecodable
    body); the grants keep every role but the operator's away from it.
    """
    op.create_table(
        DEAD_LETTERS,
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        *_dead_letter_columns(),
        sa.UniqueConstraint("fingerprint", name="uq_dead_letters_fingerprint"),
        sa.CheckConstraint("status IN ('dead', 'replayed', 'resolved')", name="ck_dead_letters_status"),
    )
    op.create_index("ix_dead_letters_status_group", DEAD_LETTERS, ["status", "group_key", "id"])
    op.create_index("ix_dead_letters_message_id", DEAD_LETTERS, ["message_id"])
    op.create_table(
        DEAD_LETTERS_ARCHIVE,
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_dead_letter_columns(),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("archived_by", sa.Text(), nullable=False),
        sa.Column("archive_reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_dead_letters_archive_fingerprint", DEAD_LETTERS_ARCHIVE, ["fingerprint"])
    op.create_index("ix_dead_letters_archive_archived_at", DEAD_LETTERS_ARCHIVE, ["archived_at"])
    grant_operator_access()


def grant_operator_access() -> None:
    """The operator role: the dead-letter store (read, add, mark, move to the archive), no more.

    Nothing on the aggregate tables, the inbox or the outbox: replaying goes
    through the broker, and the service decides what a message does.
    """
    operator = operator_role()
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{operator}"')
    # FOR UPDATE (a replay's claim) needs UPDATE; a purge deletes after copying to the archive.
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {DEAD_LETTERS} TO "{operator}"')
    op.execute(f'GRANT USAGE ON SEQUENCE {DEAD_LETTERS}_id_seq TO "{operator}"')
    # The archive is append-only for operators: nothing leaves it untraceably.
    op.execute(f'GRANT SELECT, INSERT ON {DEAD_LETTERS_ARCHIVE} TO "{operator}"')


def drop_dead_letter_store() -> None:
    op.drop_table(DEAD_LETTERS_ARCHIVE)
    op.drop_table(DEAD_LETTERS)


def key_outbox_by_tenant() -> None:
    """Outbox primary key (tenant_id, id), like every other table; ids stay global and
    ordered (the relay reads them in order across tenants through ix_outbox_id)."""
    op.execute("ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_pkey")
    op.execute("ALTER TABLE outbox ADD CONSTRAINT pk_outbox PRIMARY KEY (tenant_id, id)")
    op.execute("CREATE INDEX ix_outbox_id ON outbox (id)")


def key_outbox_by_id() -> None:
    """The reverse of ``key_outbox_by_tenant``."""
    op.execute("DROP INDEX ix_outbox_id")
    op.execute("ALTER TABLE outbox DROP CONSTRAINT pk_outbox")
    op.execute("ALTER TABLE outbox ADD CONSTRAINT outbox_pkey PRIMARY KEY (id)")


# -- the first revision of a service ---------------------------------------------------
# A new service's first revision creates the foundation in its current shape
# with these; a later change to the foundation is a new operation here and a
# new revision in every service, never an edit of these.


def create_aggregate_table(name: str, *extra: Any) -> None:
    """An aggregate (or read model) table as shared_kernel.persistence.tables.aggregate_table makes it."""
    op.create_table(
        name,
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("project_id", sa.Text(), nullable=True),
        *extra,
        sa.Column("state", JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{name}"),
    )


def create_messaging_tables() -> None:
    """The inbox and the outbox, keyed by tenant first (as Source Control's are after 0004)."""
    op.create_table(
        INBOX,
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name="pk_inbox"),
    )
    op.create_table(
        OUTBOX,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("routing_key", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("properties", JSONB(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_id", OUTBOX, ["id"])
    op.create_index("ix_outbox_due_at", OUTBOX, ["due_at"])


def create_service_schema(aggregate_tables: Iterable[str]) -> None:
    """Messaging tables and the dead-letter store beside the aggregate tables already created;
    every tenant-owned table isolated by row-level security, and each role granted its part."""
    tables = tuple(aggregate_tables)
    create_messaging_tables()
    for table in (*tables, INBOX, OUTBOX):
        isolate_tenants(table)
    grant_service_access(tables)
    create_dead_letter_store()
