"""One unit of work per message: load, change, save, and queue what to publish.

Aggregates loaded or added through the unit of work are tracked; ``flush``
saves each one that recorded events (optimistic concurrency) and turns the
events into outbox rows in the canonical envelope, caused by the incoming
message, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from contracts.base import Payload
from contracts.common import AuditRecord
from contracts.registry import AUDIT_EXCHANGE, ContractRegistry, kebab
from shared_kernel.domain import AggregateRoot
from shared_kernel.envelope import Envelope
from shared_kernel.persistence.inbox_outbox import OutboxMessage, write_outbox
from shared_kernel.persistence.store import AggregateMapping, AggregateStore

A = TypeVar("A", bound=AggregateRoot)


class UnitOfWork:
    def __init__(
        self,
        connection: asyncpg.Connection,
        *,
        cause: Envelope,
        mappings: Mapping[type[AggregateRoot], AggregateMapping],
        contracts: ContractRegistry,
        context: str,
        source: str,
    ) -> None:
        self.connection = connection
        self.cause = cause
        self._store = AggregateStore(connection, cause.tenant_id)
        self._mappings = mappings
        self._contracts = contracts
        self._context = context
        self._source = source
        self._tracked: dict[tuple[type[AggregateRoot], str], AggregateRoot] = {}
        self._new: set[tuple[type[AggregateRoot], str]] = set()
        self._changed: set[tuple[type[AggregateRoot], str]] = set()
        self._outbox: list[OutboxMessage] = []

    # -- aggregates -------------------------------------------------------------------

    async def get(self, aggregate_type: type[A], aggregate_id: str) -> A | None:
        key = (aggregate_type, aggregate_id)
        if key in self._tracked:
            return self._tracked[key]  # type: ignore[return-value]
        return await self.find(aggregate_type, id=aggregate_id)

    async def find(self, aggregate_type: type[A], **where: Any) -> A | None:
        found = await self._store.find(self._mappings[aggregate_type], **where)
        return self._track(found) if found is not None else None

    async def find_all(self, aggregate_type: type[A], **where: Any) -> list[A]:
        found = await self._store.find_all(self._mappings[aggregate_type], **where)
        return [self._track(aggregate) for aggregate in found]

    async def next_number(self, aggregate_type: type[AggregateRoot], column: str, **where: Any) -> int:
        """The next number in a per-scope sequence (a unique constraint guards races)."""
        current = await self._store.max_value(self._mappings[aggregate_type], column, **where)
        return int(current or 0) + 1

    def add(self, aggregate: AggregateRoot) -> None:
        key = (type(aggregate), aggregate.aggregate_id)
        self._tracked[key] = aggregate
        self._new.add(key)

    def changed(self, model: AggregateRoot) -> None:
        """Save ``model`` at flush although it recorded no event (a read model that was updated)."""
        self._changed.add((type(model), model.aggregate_id))

    def _track(self, aggregate: A) -> A:
        key = (type(aggregate), aggregate.aggregate_id)
        return self._tracked.setdefault(key, aggregate)  # type: ignore[return-value]

    # -- messages to other contexts ---------------------------------------------------

    def send(self, payload: Payload, *, due_at: datetime | None = None, version: int = 1) -> Envelope:
        """Queue a message by its contract, caused by the incoming one.

        A command to another context, an event no aggregate records (such as
        CommandRejected), or with ``due_at`` a timer the relay publishes when due.
        """
        contract = self._contracts.get(type(payload).__name__, version)
        envelope = Envelope.new(
            kind_prefix=contract.id_prefix,
            event_type=contract.message_type,
            schema_version=contract.version,
            payload=payload.wire(),
            source=self._source,
            tenant_id=self.cause.tenant_id,
            cause=self.cause,
        )
        self._outbox.append(
            OutboxMessage.of(
                envelope,
                exchange=contract.exchange,
                routing_key=contract.routing_key_for(self._context),
                due_at=due_at,
            )
        )
        return envelope

    def audit(self, action: str, *, actor: str, outcome: str, reason: str = "", **details: Any) -> None:
        """Queue a governance audit record (who, what, when, why, correlation)."""
        queue_audit(
            self._outbox,
            self.cause,
            self._context,
            self._source,
            action=action,
            actor=actor,
            outcome=outcome,
            reason=reason,
            details=details,
        )

    # -- end of the message -----------------------------------------------------------

    async def flush(self) -> int:
        """Save changed aggregates and write their events to the outbox; events written."""
        written = 0
        for key, aggregate in self._tracked.items():
            if not (aggregate.has_pending_events or key in self._new or key in self._changed):
                continue
            expected_version = 0 if key in self._new else aggregate.version
            aggregate.version = expected_version + 1
            events = [
                self._event_message(aggregate, event.event_type, event.payload)
                for event in aggregate.pull_events()
            ]
            await self._store.save(
                self._mappings[key[0]], aggregate, expected_version=expected_version, events=events
            )
            written += len(events)
        await write_outbox(self.connection, self._outbox)
        self._outbox = []
        return written

    def _event_message(
        self, aggregate: AggregateRoot, event_type: str, payload: dict[str, Any]
    ) -> OutboxMessage:
        contract = self._contracts.latest(event_type)
        # The contract is the wire's authority: an event that does not fit it is a bug.
        wire = contract.payload.model_validate(payload).wire()
        envelope = Envelope.new(
            kind_prefix="evt",
            event_type=event_type,
            schema_version=contract.version,
            payload=wire,
            source=self._source,
            tenant_id=aggregate.tenant_id,
            project_id=aggregate.project_id,
            module_id=wire.get("moduleId"),
            cause=self.cause,
            aggregate=(aggregate.aggregate_type, aggregate.aggregate_id, aggregate.version),
        )
        return OutboxMessage.of(
            envelope, exchange=contract.exchange, routing_key=contract.routing_key_for(self._context)
        )


def queue_audit(
    outbox: list[OutboxMessage],
    cause: Envelope,
    context: str,
    source: str,
    *,
    action: str,
    actor: str,
    outcome: str,
    reason: str,
    details: dict[str, Any],
) -> None:
    """Append an audit record about ``cause`` to ``outbox``."""
    record = AuditRecord(
        action=action,
        actor=actor,
        outcome=outcome,
        reason=reason,
        subject_type=cause.event_type,
        subject_id=cause.event_id,
        recorded_at=datetime.now(UTC),
        details=details,
    )
    envelope = Envelope.new(
        kind_prefix="evt",
        event_type="AuditRecord",
        schema_version=1,
        payload=record.wire(),
        source=source,
        tenant_id=cause.tenant_id,
        cause=cause,
    )
    outbox.append(
        OutboxMessage.of(envelope, exchange=AUDIT_EXCHANGE, routing_key=f"{context}.{kebab(action)}")
    )
