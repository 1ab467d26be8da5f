"""Broker topology, declared in code in one place and created idempotently.

Fleet-wide: the four topic exchanges (commands, events, audit, ingress), each
with the alternate exchange ``devops.unroutable`` and its queue, and the
streams ``devops.events.history`` and ``devops.audit.history`` bound to every
event and every audit record, so late subscribers can read the past. Per service: the
inbox (quorum, delivery limit, dead-lettering at least once into the DLQ),
one delayed-retry queue per delay (queue TTL, dead-lettering back to the
inbox through the default exchange) and the DLQ.

Retry queue names carry their delay (``source_control.retry.5s``) because a
declared queue's arguments cannot change: a different delay is a different
queue, never a conflicting redeclaration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity
from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas.queue import QuorumQueueArgs, StreamQueueArgs

from contracts.registry import AUDIT_EXCHANGE, COMMANDS_EXCHANGE, EVENTS_EXCHANGE, INGRESS_EXCHANGE
from shared_kernel.durations import parse_duration

UNROUTABLE = "devops.unroutable"
EVENT_HISTORY_STREAM = "devops.events.history"
AUDIT_HISTORY_STREAM = "devops.audit.history"


def _topic(name: str) -> RabbitExchange:
    return RabbitExchange(
        name, type=ExchangeType.TOPIC, durable=True, arguments={"alternate-exchange": UNROUTABLE}
    )


UNROUTABLE_EXCHANGE = RabbitExchange(UNROUTABLE, type=ExchangeType.FANOUT, durable=True)
EXCHANGES: dict[str, RabbitExchange] = {
    name: _topic(name) for name in (COMMANDS_EXCHANGE, EVENTS_EXCHANGE, AUDIT_EXCHANGE, INGRESS_EXCHANGE)
}
DEFAULT_EXCHANGE = RabbitExchange("")


def exchange(name: str) -> RabbitExchange:
    """The declared exchange object for a name ('' is the default exchange)."""
    if not name:
        return DEFAULT_EXCHANGE
    return UNROUTABLE_EXCHANGE if name == UNROUTABLE else EXCHANGES[name]


def _quorum(name: str, **arguments: Any) -> RabbitQueue:
    return RabbitQueue(
        name, queue_type=QueueType.QUORUM, durable=True, arguments=cast("QuorumQueueArgs", arguments)
    )


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class ServiceTopology:
    """The queues of one service and what its inbox is bound to."""

    service: str
    retry_delays: tuple[str, ...]
    delivery_limit: int
    bindings: tuple[Binding, ...] = field(default=())

    @property
    def inbox(self) -> str:
        return f"{self.service}.inbox"

    @property
    def dlq(self) -> str:
        return f"{self.service}.dlq"

    def retry_queue(self, attempt: int) -> str:
        """Queue for delayed retry number ``attempt`` (0-based)."""
        return f"{self.service}.retry.{self.retry_delays[attempt]}"

    def inbox_queue(self) -> RabbitQueue:
        return _quorum(
            self.inbox,
            **{
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dlq,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def retry_queues(self) -> list[RabbitQueue]:
        return [
            _quorum(
                self.retry_queue(index),
                **{
                    "x-message-ttl": int(parse_duration(delay) * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.inbox,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            for index, delay in enumerate(self.retry_delays)
        ]

    def dlq_queue(self) -> RabbitQueue:
        return _quorum(self.dlq)


def history_stream(name: str, retention: str) -> RabbitQueue:
    arguments = cast("StreamQueueArgs", {"x-max-age": _stream_age(retention)})
    return RabbitQueue(name, queue_type=QueueType.STREAM, durable=True, arguments=arguments)


def _stream_age(retention: str) -> str:
    """RabbitMQ stream ``x-max-age`` units are Y M D h m s."""
    seconds = int(parse_duration(retention))
    return f"{seconds // 86400}D" if seconds % 86400 == 0 else f"{seconds}s"


async def _declare_queue(channel: AbstractChannel, queue: RabbitQueue) -> AbstractQueue:
    return await channel.declare_queue(queue.name, durable=True, arguments=dict(queue.arguments or {}))


async def _declare_exchange(channel: AbstractChannel, exchange: RabbitExchange) -> AbstractExchange:
    return await channel.declare_exchange(
        exchange.name, type=exchange.type.value, durable=True, arguments=dict(exchange.arguments or {})
    )


async def _declare_stream_once(connection: AbstractConnection, stream: RabbitQueue) -> AbstractQueue:
    """The first service declares a history stream; later ones use it as it is.

    Its retention may differ between services' settings; a redeclaration
    with another ``x-max-age`` would fail, and the first one wins anyway.
    """
    probe = await connection.channel()
    try:
        return await probe.declare_queue(stream.name, passive=True)
    except ChannelNotFoundEntity:
        channel = await connection.channel()
        return await _declare_queue(channel, stream)


async def declare_fleet(connection: AbstractConnection, *, history_retention: str) -> None:
    """Exchanges, the unroutable queue and the event and audit history streams."""
    channel = await connection.channel()
    unroutable = await _declare_exchange(channel, UNROUTABLE_EXCHANGE)
    unroutable_queue = await _declare_queue(channel, _quorum(UNROUTABLE))
    await unroutable_queue.bind(unroutable, routing_key="")
    for declared in EXCHANGES.values():
        await _declare_exchange(channel, declared)
    for stream_name, exchange_name in (
        (EVENT_HISTORY_STREAM, EVENTS_EXCHANGE),
        (AUDIT_HISTORY_STREAM, AUDIT_EXCHANGE),
    ):
        stream = await _declare_stream_once(connection, history_stream(stream_name, history_retention))
        await stream.bind(exchange_name, routing_key="#")
    await channel.close()


async def declare_service(connection: AbstractConnection, topology: ServiceTopology) -> None:
    """The service's inbox with its bindings, its retry queues and its DLQ."""
    channel = await connection.channel()
    await _declare_queue(channel, topology.dlq_queue())
    for queue in topology.retry_queues():
        await _declare_queue(channel, queue)
    inbox = await _declare_queue(channel, topology.inbox_queue())
    for binding in topology.bindings:
        await inbox.bind(binding.exchange, routing_key=binding.routing_key)
    await channel.close()


def bindings_for(routing: Iterable[tuple[str, str]]) -> tuple[Binding, ...]:
    return tuple(sorted({Binding(exchange=e, routing_key=k) for e, k in routing}, key=str))
