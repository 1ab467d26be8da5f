"""Tenant A's handler cannot read or change tenant B's rows: the database refuses."""

from __future__ import annotations

import asyncpg
import pytest

from contracts import source_control as c
from services.source_control.adapters.tables import MAPPINGS
from services.source_control.domain.repository import Repository
from shared_kernel.persistence.store import AggregateStore
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario

pytestmark = pytest.mark.integration


async def test_the_service_role_is_neither_superuser_nor_owner(source_control: ServiceRuntime) -> None:
    async with source_control.database.pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT r.rolsuper, r.rolbypassrls, "
            "(SELECT count(*) FROM pg_tables t WHERE t.tableowner = current_user) AS owned "
            "FROM pg_roles r WHERE r.rolname = current_user"
        )
    assert tuple(row) == (False, False, 0)


async def test_tenant_a_cannot_read_or_change_tenant_b_rows(source_control: ServiceRuntime, bus: Bus) -> None:
    tenant_b = Scenario(bus, source_control.settings)
    repository_id, _ = await tenant_b.provision()
    before = await tenant_b.state_of("repositories", repository_id)
    database = source_control.database
    tenant_a = "tenant-a-" + tenant_b.tenant_id

    async with database.tenant_transaction(tenant_a) as connection:
        # Even a query that names tenant B explicitly sees nothing.
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM repositories WHERE tenant_id = $1", tenant_b.tenant_id
            )
            == 0
        )
        updated = await connection.execute(
            "UPDATE repositories SET state = '{}'::jsonb WHERE id = $1", repository_id
        )
        assert updated == "UPDATE 0"
        assert await connection.fetchval("SELECT count(*) FROM inbox") == 0
    # The store, given tenant B's id on tenant A's connection, finds nothing either.
    async with database.tenant_transaction(tenant_a) as connection:
        store = AggregateStore(connection, tenant_b.tenant_id)
        assert await store.find(MAPPINGS[Repository], id=repository_id) is None

    # Writing a row for tenant B while acting for tenant A is refused by the policy.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with database.tenant_transaction(tenant_a) as connection:
            await connection.execute(
                "INSERT INTO inbox (tenant_id, event_id, event_type, outcome) "
                "VALUES ($1, 'evt-forged', 'Forged', 'done')",
                tenant_b.tenant_id,
            )
    # With no tenant set, nothing is visible at all.
    async with database.pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM repositories") == 0

    assert await tenant_b.state_of("repositories", repository_id) == before


async def test_a_command_in_tenant_a_cannot_reach_tenant_b_aggregate(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    tenant_b = Scenario(bus, source_control.settings)
    repository_id, _ = await tenant_b.provision()
    before = await tenant_b.state_of("repositories", repository_id)
    tenant_a = Scenario(bus, source_control.settings)
    # Same repositoryId, other tenant: for tenant A it does not exist, so nothing changes for B.
    await tenant_a.send(
        c.ArchiveRepository(repository_id=repository_id, reason="hostile", archived_by="mallory")
    )
    await tenant_b.send(
        c.ChangeRepositorySetting(repository_id=repository_id, key="k", value="v", changed_by="b")
    )
    await tenant_b.wait("RepositorySettingChanged", repositoryId=repository_id)
    after = await tenant_b.state_of("repositories", repository_id)
    assert after is not None
    assert before is not None
    assert after["state"]["status"] == "Active"
    assert after["version"] == before["version"] + 1
    assert tenant_a.seen("RepositoryArchived") == []
