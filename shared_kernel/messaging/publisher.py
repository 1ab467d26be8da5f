"""Confirmed, persistent, mandatory publishing: the only way messages leave.

Publishing has its own AMQP connection, apart from the consumer's, as
RabbitMQ recommends: flow control that throttles a publishing connection
then never stalls the deliveries (and acks) of the consuming one.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from pamqp.commands import Basic


def amqp_message(body: bytes, properties: dict[str, Any], *, app_id: str | None = None) -> aio_pika.Message:
    """A persistent AMQP message with the envelope's mirrored properties (``Envelope.amqp_properties``)."""
    return aio_pika.Message(
        body,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=properties.get("message_id"),
        type=properties.get("type"),
        correlation_id=properties.get("correlation_id"),
        content_type=properties.get("content_type", "application/json"),
        headers=properties.get("headers") or {},
        app_id=app_id,
    )


class PublishNotConfirmed(Exception):
    """The broker did not confirm the message (nack, return or timeout)."""


class ConfirmedPublisher:
    def __init__(self, amqp_url: str, *, app_id: str, timeout: float = 10.0) -> None:
        self._amqp_url = amqp_url
        self._app_id = app_id
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._amqp_url, client_properties={"connection_name": f"{self._app_id} publisher"}
        )
        self._channel = await self._connection.channel(publisher_confirms=True)

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("publisher is not connected")
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None:
            raise RuntimeError("publisher is not connected")
        if name not in self._exchanges:
            self._exchanges[name] = (
                self._channel.default_exchange
                if not name
                else await self._channel.get_exchange(name, ensure=False)
            )
        return self._exchanges[name]

    async def publish(
        self, *, exchange_name: str, routing_key: str, body: bytes, properties: dict[str, Any]
    ) -> None:
        """Publish and wait for the broker's confirm; raise if it is not an ack."""
        exchange = await self._exchange(exchange_name)
        message = amqp_message(body, properties, app_id=self._app_id)
        confirmation = await exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=self._timeout
        )
        if not isinstance(confirmation, Basic.Ack):
            raise PublishNotConfirmed(
                f"{exchange_name or '(default)'}/{routing_key}: {type(confirmation).__name__}"
            )
