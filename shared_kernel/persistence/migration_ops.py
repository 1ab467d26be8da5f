"""DDL steps that every service's migrations share (tenant isolation, grants).

Called from Alembic revision scripts; the service's roles come from the
Alembic config the ``migrate`` command builds.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op

from shared_kernel.persistence.database import TENANT_SETTING
from shared_kernel.persistence.tables import INBOX, OUTBOX


def service_roles() -> tuple[str, str]:
    attributes = op.get_context().config.attributes  # type: ignore[union-attr]
    return attributes["app_role"], attributes["relay_role"]


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
