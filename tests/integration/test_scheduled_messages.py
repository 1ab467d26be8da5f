"""Outbox rows with a due time are published when due, not before (timers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import contracts
from contracts.common import CommandRejected
from services.source_control.adapters.tables import MAPPINGS
from shared_kernel.envelope import Envelope
from shared_kernel.persistence.inbox_outbox import record_in_inbox
from shared_kernel.persistence.unit_of_work import UnitOfWork
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario

pytestmark = pytest.mark.integration


async def test_a_scheduled_message_waits_in_the_outbox_until_due(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    cause = Envelope.new(
        kind_prefix="cmd",
        event_type="ProvisionRepository",
        schema_version=1,
        payload={},
        source="devops.tests",
        tenant_id=scenario.tenant_id,
    )
    due_at = datetime.now(UTC) + timedelta(seconds=2)
    async with source_control.database.transaction() as connection:
        assert await record_in_inbox(connection, cause, "done")
        uow = UnitOfWork(
            connection,
            cause=cause,
            mappings=MAPPINGS,  # type: ignore[arg-type]
            contracts=contracts.registry,
            context="source-control",
            source="devops.source-control",
        )
        timer = uow.send(
            CommandRejected(command_type="Timer", command_id=cause.event_id, rule="SoakTime", reason="due"),
            due_at=due_at,
        )
        await uow.flush()
    source_control.relay.wake()

    await asyncio.sleep(1.0)
    assert scenario.seen("CommandRejected") == []  # not due yet, though the relay was woken
    (published,) = await scenario.wait("CommandRejected", commandId=cause.event_id, timeout=10)
    assert datetime.now(UTC) >= due_at
    assert published.envelope["eventId"] == timer.event_id
    assert published.envelope["causationId"] == cause.event_id
    # The relay deletes the row once the broker has confirmed it.
    for _ in range(50):
        if not await scenario.rows("SELECT 1 FROM outbox WHERE tenant_id = $1", scenario.tenant_id):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the published row stayed in the outbox")
