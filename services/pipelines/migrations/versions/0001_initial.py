"""Pipelines: definitions, runs, build results, the repository read model; inbox, outbox,
dead-letter store, tenant isolation and grants.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from shared_kernel.persistence.migration_ops import create_aggregate_table, create_service_schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AGGREGATE_TABLES = ("pipeline_definitions", "pipeline_runs", "build_results", "source_repositories")


def upgrade() -> None:
    create_aggregate_table(
        "pipeline_definitions",
        sa.Column("repository_id", sa.Text(), nullable=False),
        sa.Column("module_id", sa.Text(), nullable=False),
        sa.Column("definition_path", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
    )
    op.create_index(
        "uq_pipeline_definitions_path",
        "pipeline_definitions",
        ["tenant_id", "repository_id", "definition_path"],
        unique=True,
        postgresql_where=sa.text("status = 'Active'"),
    )
    op.create_index(
        "ix_pipeline_definitions_module",
        "pipeline_definitions",
        ["tenant_id", "repository_id", "module_id", "status"],
    )
    create_aggregate_table(
        "pipeline_runs",
        sa.Column("pipeline_id", sa.Text(), nullable=False),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.UniqueConstraint("tenant_id", "pipeline_id", "run_number", name="uq_pipeline_runs_number"),
    )
    create_aggregate_table(
        "build_results",
        sa.Column("pipeline_run_id", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant_id", "pipeline_run_id", name="uq_build_results_run"),
    )
    create_aggregate_table("source_repositories")
    create_service_schema(AGGREGATE_TABLES)


def downgrade() -> None:
    for table in (*AGGREGATE_TABLES, "dead_letters_archive", "dead_letters", "inbox", "outbox"):
        op.drop_table(table)
