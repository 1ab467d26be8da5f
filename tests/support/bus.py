"""A test's view of the broker: send messages, capture what the fleet emits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

import contracts
from contracts.base import Payload
from contracts.registry import AUDIT_EXCHANGE, COMMANDS_EXCHANGE, EVENTS_EXCHANGE
from shared_kernel.envelope import Envelope
from shared_kernel.messaging.publisher import amqp_message


@dataclass(frozen=True)
class Captured:
    exchange: str
    routing_key: str
    envelope: dict[str, Any]
    properties: AbstractIncomingMessage

    @property
    def event_type(self) -> str:
        return str(self.envelope.get("eventType"))

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.envelope.get("payload") or {})


class Capture:
    """Everything published on devops.events and devops.audit while it listens."""

    def __init__(self) -> None:
        self.messages: list[Captured] = []
        self._changed = asyncio.Condition()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            captured = Captured(
                message.exchange or "", message.routing_key or "", orjson.loads(message.body), message
            )
        async with self._changed:
            self.messages.append(captured)
            self._changed.notify_all()

    def matching(self, event_type: str, **payload: Any) -> list[Captured]:
        return [
            m
            for m in self.messages
            if m.event_type == event_type and all(m.payload.get(k) == v for k, v in payload.items())
        ]

    async def wait_for(
        self,
        event_type: str,
        *,
        count: int = 1,
        timeout: float = 15.0,
        where: Callable[[Captured], bool] | None = None,
        **payload: Any,
    ) -> list[Captured]:
        def found() -> list[Captured]:
            hits = self.matching(event_type, **payload)
            return [m for m in hits if where is None or where(m)]

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
            except TimeoutError:
                seen = sorted({m.event_type for m in self.messages})
                raise AssertionError(
                    f"waited {timeout}s for {count} x {event_type} {payload}; "
                    f"saw {len(found())}; types seen: {seen}"
                ) from None
        return found()


class Bus:
    def __init__(self, channel: AbstractChannel, capture: Capture, queue: AbstractQueue) -> None:
        self.channel = channel
        self.capture = capture
        self._queue = queue

    @classmethod
    async def open(cls, connection: aio_pika.abc.AbstractConnection) -> Bus:
        channel = await connection.channel(publisher_confirms=True)
        capture = Capture()
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        for exchange in (EVENTS_EXCHANGE, AUDIT_EXCHANGE):
            await queue.bind(exchange, routing_key="#")
        await queue.consume(capture.on_message)
        return cls(channel, capture, queue)

    def command(
        self,
        payload: Payload,
        *,
        tenant_id: str,
        project_id: str | None = "proj-1",
        correlation_id: str | None = None,
        event_id: str | None = None,
        version: int = 1,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        contract = contracts.registry.get(type(payload).__name__, version)
        return Envelope.new(
            kind_prefix=contract.id_prefix,
            event_type=contract.message_type,
            schema_version=contract.version,
            payload=payload.wire(),
            source="devops.tests",
            tenant_id=tenant_id,
            project_id=project_id,
            correlation_id=correlation_id,
            event_id=event_id,
            occurred_at=occurred_at,
        )

    async def send(self, envelope: Envelope) -> Envelope:
        contract = contracts.registry.get(envelope.event_type, envelope.schema_version)
        await self.publish_raw(
            envelope.to_json(), contract.exchange, contract.routing_key, envelope.amqp_properties()
        )
        return envelope

    async def publish_raw(
        self,
        body: bytes,
        exchange: str = COMMANDS_EXCHANGE,
        routing_key: str = "",
        properties: dict[str, Any] | None = None,
    ) -> None:
        properties = properties or {}
        target = await self.channel.get_exchange(exchange) if exchange else self.channel.default_exchange
        await target.publish(
            amqp_message(body, properties),
            routing_key=routing_key,
            mandatory=True,
        )

    async def drain_queue(
        self, name: str, *, expect: int, timeout: float = 20.0
    ) -> list[AbstractIncomingMessage]:
        """Take ``expect`` messages off a queue (acked), waiting up to ``timeout``."""
        queue = await self.channel.declare_queue(name, passive=True)
        taken: list[AbstractIncomingMessage] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(taken) < expect:
            message = await queue.get(fail=False)
            if message is None:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{name}: got {len(taken)} of {expect} messages in {timeout}s")
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            taken.append(message)
        return taken

    async def queue_depth(self, name: str) -> int:
        """Messages on a queue now (a robust channel hands back its cached passive
        declaration, so declare it again to read the current count)."""
        queue = await self.channel.declare_queue(name, passive=True)
        result = await queue.declare()
        return int(result.message_count or 0)

    async def settled(self, *services: str, timeout: float = 30.0) -> None:
        """Wait until the services' inbox and retry queues stay empty for a moment.

        A quorum queue counts ready messages, not those a consumer holds, so
        the queues must read empty several times in a row (a held message is
        acknowledged, or returned, within that time).
        """
        names = [f"{service}.{queue}" for service in services for queue in ("inbox", "retry.1s", "retry.2s")]
        deadline = asyncio.get_running_loop().time() + timeout
        quiet = 0
        while quiet < 5:
            depths = [await self.queue_depth(name) for name in names]
            quiet = quiet + 1 if not any(depths) else 0
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"queues did not settle: {dict(zip(names, depths, strict=True))}")
            await asyncio.sleep(0.1)
