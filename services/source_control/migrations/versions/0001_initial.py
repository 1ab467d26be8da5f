"""Source Control: aggregate tables, inbox, outbox, tenant isolation, grants.

The tables are spelled out as they were at this revision, not taken from
the live metadata: later revisions change them, and a fresh database must
pass through the same steps as an upgraded one. (An aggregate table's common
columns come from ``create_aggregate_table``, which never changes.)

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""


import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared_kernel.persistence.migration_ops import (
    create_aggregate_table,
    grant_service_access,
    isolate_tenants,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AGGREGATE_TABLES = ("repositories", "branches", "commits", "pull_requests")
_TABLES = (*AGGREGATE_TABLES, "inbox", "outbox")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("routing_key", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("properties", JSONB(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_outbox_due_at", "outbox", ["due_at"])
    create_aggregate_table(
        "repositories",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("module_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant_id", "project_id", "name", name="uq_repositories_project_name"),
    )
    create_aggregate_table(
        "branches",
        sa.Column("repository_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
    )
    op.create_index(
        "uq_branches_repository_name",
        "branches",
        ["tenant_id", "repository_id", "name"],
        unique=True,
        postgresql_where=sa.text("status = 'Active'"),
    )
    create_aggregate_table(
        "commits",
        sa.Column("repository_id", sa.Text(), nullable=False),
        sa.Column("sha", sa.Text(), nullable=False),
        sa.Column("artifact_id", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant_id", "repository_id", "sha", name="uq_commits_repository_sha"),
    )
    op.create_index("ix_commits_artifact", "commits", ["tenant_id", "artifact_id"])
    create_aggregate_table(
        "pull_requests",
        sa.Column("repository_id", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("source_branch", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant_id", "repository_id", "number", name="uq_pull_requests_number"),
    )
    op.create_index(
        "ix_pull_requests_source", "pull_requests", ["tenant_id", "repository_id", "source_branch", "status"]
    )
    for table in _TABLES:
        isolate_tenants(table)
    grant_service_access(AGGREGATE_TABLES)


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
