"""Packaging: package publications, container images, the build read model; inbox, outbox,
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

AGGREGATE_TABLES = ("package_publications", "container_images", "build_records")


def upgrade() -> None:
    create_aggregate_table(
        "package_publications",
        sa.Column("package_key", sa.Text(), nullable=False),
        sa.Column("version_key", sa.Text(), nullable=False),
        sa.Column("feed_key", sa.Text(), nullable=False),
        sa.UniqueConstraint(
            "tenant_id", "package_key", "version_key", "feed_key", name="uq_package_publications_version"
        ),
    )
    create_aggregate_table(
        "container_images",
        sa.Column("registry", sa.Text(), nullable=False),
        sa.Column("repository_name", sa.Text(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant_id", "registry", "digest", name="uq_container_images_digest"),
        sa.UniqueConstraint(
            "tenant_id", "registry", "repository_name", "tag", name="uq_container_images_tag"
        ),
    )
    create_aggregate_table("build_records")
    create_service_schema(AGGREGATE_TABLES)


def downgrade() -> None:
    for table in (*AGGREGATE_TABLES, "dead_letters_archive", "dead_letters", "inbox", "outbox"):
        op.drop_table(table)
