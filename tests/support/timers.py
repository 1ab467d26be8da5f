"""Write a scheduled message straight into a service's outbox, as a timer would."""

from __future__ import annotations

from datetime import datetime

import contracts
from contracts.common import CommandRejected
from services.source_control.adapters.tables import MAPPINGS
from shared_kernel.envelope import Envelope
from shared_kernel.persistence.inbox_outbox import record_in_inbox
from shared_kernel.persistence.unit_of_work import UnitOfWork
from shared_kernel.service import ServiceRuntime


async def schedule(runtime: ServiceRuntime, tenant_id: str, due_at: datetime) -> tuple[Envelope, Envelope]:
    """A message due at ``due_at`` (as a soak time would be): (its cause, the message)."""
    cause = Envelope.new(
        kind_prefix="cmd",
        event_type="ProvisionRepository",
        schema_version=1,
        payload={},
        source="devops.tests",
        tenant_id=tenant_id,
    )
    async with runtime.database.transaction() as connection:
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
    return cause, timer
