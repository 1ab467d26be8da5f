"""Confirmed, persistent, mandatory publishing: the only way messages leave."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitBroker
from pamqp.commands import Basic

from shared_kernel.messaging.topology import exchange


class PublishNotConfirmed(Exception):
    """The broker did not confirm the message (nack, return or timeout)."""


class ConfirmedPublisher:
    def __init__(self, broker: RabbitBroker, *, timeout: float = 10.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def publish(
        self, *, exchange_name: str, routing_key: str, body: bytes, properties: dict[str, Any]
    ) -> None:
        """Publish and wait for the broker's confirm; raise if it is not an ack."""
        confirmation = await self._broker.publish(
            body,
            exchange=exchange(exchange_name),
            routing_key=routing_key,
            mandatory=True,
            persist=True,
            timeout=self._timeout,
            message_id=properties.get("message_id"),
            message_type=properties.get("type"),
            correlation_id=properties.get("correlation_id"),
            content_type=properties.get("content_type", "application/json"),
            headers=properties.get("headers") or {},
        )
        if not isinstance(confirmation, Basic.Ack):
            raise PublishNotConfirmed(
                f"{exchange_name or '(default)'}/{routing_key}: {type(confirmation).__name__}"
            )
