"""Outbox rows with a due time are published when due, not before (timers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario
from tests.support.timers import schedule

pytestmark = pytest.mark.integration


async def test_a_scheduled_message_waits_in_the_outbox_until_due(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    due_at = datetime.now(UTC) + timedelta(seconds=2)
    cause, timer = await schedule(source_control, scenario.tenant_id, due_at)
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
