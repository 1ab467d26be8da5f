"""Tenant A's handler cannot read or change tenant B's rows: the database refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from contracts import source_control as c
from services.source_control.adapters.tables import MAPPINGS
from services.source_control.domain.repository import Repository
from shared_kernel.persistence.database import tenant_transaction
from shared_kernel.persistence.store import AggregateStore
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario

pytestmark = pytest.mark.integration


async def test_the_service_role_is_neither_superuser_nor_owner(source_control: ServiceRuntime) -> None:
    async with source_control.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT r.rolsuper, r.rolbypassrls, "
                    "(SELECT count(*) FROM pg_tables t WHERE t.tableowner = current_user) AS owned "
                    "FROM pg_roles r WHERE r.rolname = current_user"
                )
            )
        ).one()
    assert tuple(row) == (False, False, 0)


async def test_tenant_a_cannot_read_or_change_tenant_b_rows(source_control: ServiceRuntime, bus: Bus) -> None:
    tenant_b = Scenario(bus, source_control.settings)
    repository_id, _ = await tenant_b.provision()
    before = await tenant_b.state_of("repositories", repository_id)
    engine = source_control.engine
    tenant_a = "tenant-a-" + tenant_b.tenant_id

    async with tenant_transaction(engine, tenant_a) as connection:
        # Even a query that names tenant B explicitly sees nothing.
        seen = await connection.execute(
            text("SELECT count(*) FROM repositories WHERE tenant_id = :b"), {"b": tenant_b.tenant_id}
        )
        assert seen.scalar() == 0
        updated = await connection.execute(
            text("UPDATE repositories SET state = '{}'::jsonb WHERE id = :id"), {"id": repository_id}
        )
        assert updated.rowcount == 0
        deleted_or_visible = await connection.execute(text("SELECT count(*) FROM inbox"))
        assert deleted_or_visible.scalar() == 0
    # The store, given tenant B's id on tenant A's connection, finds nothing either.
    async with tenant_transaction(engine, tenant_a) as connection:
        store = AggregateStore(connection, tenant_b.tenant_id)
        assert await store.find(MAPPINGS[Repository], id=repository_id) is None

    # Writing a row for tenant B while acting for tenant A is refused by the policy.
    with pytest.raises(DBAPIError, match="row-level security"):
        async with tenant_transaction(engine, tenant_a) as connection:
            await connection.execute(
                text(
                    "INSERT INTO inbox (tenant_id, event_id, event_type, outcome) "
                    "VALUES (:b, 'evt-forged', 'Forged', 'done')"
                ),
                {"b": tenant_b.tenant_id},
            )
    # With no tenant set, nothing is visible at all.
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM repositories"))).scalar() == 0

    assert await tenant_b.state_of("repositories", repository_id) == before


async def test_a_command_in_tenant_a_cannot_reach_tenant_b_aggregate(source_control: ServiceRuntime, bus: Bus) -> None:
    tenant_b = Scenario(bus, source_control.settings)
    repository_id, _ = await tenant_b.provision()
    before = await tenant_b.state_of("repositories", repository_id)
    tenant_a = Scenario(bus, source_control.settings)
    # Same repositoryId, other tenant: for tenant A it does not exist, so nothing changes for B.
    await tenant_a.send(c.ArchiveRepository(repository_id=repository_id, reason="hostile", archived_by="mallory"))
    await tenant_b.send(c.ChangeRepositorySetting(repository_id=repository_id, key="k", value="v", changed_by="b"))
    await tenant_b.wait("RepositorySettingChanged", repositoryId=repository_id)
    after = await tenant_b.state_of("repositories", repository_id)
    assert after is not None and before is not None
    assert after["state"]["status"] == "Active"
    assert after["version"] == before["version"] + 1
    assert tenant_a.seen("RepositoryArchived") == []
