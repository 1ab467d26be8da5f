"""Source Control's outbox keyed by tenant first, like its other tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from shared_kernel.persistence.migration_ops import key_outbox_by_id, key_outbox_by_tenant

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    key_outbox_by_tenant()


def downgrade() -> None:
    key_outbox_by_id()
