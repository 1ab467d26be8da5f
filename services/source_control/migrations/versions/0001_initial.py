"""Source Control: aggregate tables, inbox, outbox, tenant isolation, grants.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from services.source_control.adapters.tables import AGGREGATE_TABLES, metadata
from shared_kernel.persistence.migration_ops import grant_service_access, isolate_tenants
from shared_kernel.persistence.tables import INBOX, OUTBOX

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = (*AGGREGATE_TABLES, INBOX, OUTBOX)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in _TABLES])
    for table in _TABLES:
        isolate_tenants(table)
    grant_service_access(AGGREGATE_TABLES)


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in _TABLES])
