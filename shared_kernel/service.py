"""Run one service: wire the runtime around its handlers, migrate, start, stop.

A service supplies a ``ServiceDefinition`` (its settings type, aggregate
mappings, migrations folder and a factory that builds its handlers from its
settings); everything else — topology, subscriber, processor, retries, dead
letters, relay, metrics, health endpoints, logging, signals — is this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.message import RabbitMessage

import contracts
from contracts.registry import INGRESS_EXCHANGE, ContractRegistry, UnknownMessage
from shared_kernel.dead_letters.mover import DeadLetterMover
from shared_kernel.domain import AggregateRoot
from shared_kernel.durations import parse_duration
from shared_kernel.logging import configure_logging, get_logger
from shared_kernel.messaging.failures import FailureRouter, delivery_ids
from shared_kernel.messaging.handlers import HandlerRegistry
from shared_kernel.messaging.ingress import IngressAdapter
from shared_kernel.messaging.processor import MessageProcessor, Outcome, ProcessorConfig
from shared_kernel.messaging.publisher import ConfirmedPublisher
from shared_kernel.messaging.relay import OutboxRelay
from shared_kernel.messaging.topology import ServiceTopology, bindings_for, declare_fleet, declare_service
from shared_kernel.observability import (
    BacklogProbe,
    HttpEndpoint,
    Phase,
    Readiness,
    RuntimeMetrics,
    service_routes,
)
from shared_kernel.persistence.database import Database
from shared_kernel.persistence.store import AggregateMapping
from shared_kernel.settings import ServiceSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class ServiceDefinition:
    settings_type: type[ServiceSettings]
    mappings: Mapping[type[AggregateRoot], AggregateMapping]
    migrations: Path
    build_handlers: Callable[[Any], HandlerRegistry]
    # Adapters for facts that arrive in an upstream system's own shape (service hooks).
    ingress: tuple[IngressAdapter, ...] = ()


class ServiceRuntime:
    """One running consumer: subscriber, processor, failure router, relay and HTTP endpoint."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.settings = settings
        self.handlers = definition.build_handlers(settings)
        self.topology = ServiceTopology(
            service=settings.service_name,
            retry_delays=tuple(settings.retry_delays),
            delivery_limit=settings.delivery_limit,
            bindings=bindings_for([*self.handlers.subscriptions(), *_ingress_bindings(definition)]),
        )
        graceful = parse_duration(settings.shutdown_timeout)
        self.broker = RabbitBroker(
            settings.amqp_url,
            app_id=settings.source,
            graceful_timeout=graceful,
            logger=None,
            apply_types=False,  # the handler takes the message itself: no per-message injection
        )
        self.database = Database(
            settings.database_url,
            size=settings.database_pool_size,
            application_name=f"{settings.service_name}-consumer",
        )
        self.relay_database = Database(
            settings.relay_database_url,
            size=settings.relay_in_flight_batches + 1,
            application_name=f"{settings.service_name}-relay",
        )
        self.publisher = ConfirmedPublisher(settings.amqp_url, app_id=settings.source)
        self.processor = MessageProcessor(
            self.database,
            self.handlers,
            contracts.registry,
            definition.mappings,
            ProcessorConfig(
                context=settings.context,
                source=settings.source,
                transient_attempts=settings.transient_attempts,
                crash_at=settings.crash_at,
            ),
            ingress=definition.ingress,
        )
        self.failures = FailureRouter(self.publisher, self.topology)
        self.relay = OutboxRelay(
            self.relay_database,
            self.publisher,
            batch_size=settings.relay_batch_size,
            poll_interval=parse_duration(settings.relay_poll_interval),
            in_flight=settings.relay_in_flight_batches,
        )
        # Dead letters go from the DLQ into a table operators work on (devops dlq …).
        self.operator_database = Database(
            settings.operator_database_url, size=2, application_name=f"{settings.service_name}-dead-letters"
        )
        self.dead_letters = DeadLetterMover(settings.amqp_url, self.operator_database, self.topology)
        health_timeout = parse_duration(settings.health_timeout)
        self.metrics = RuntimeMetrics(
            service=settings.service_name,
            message_types=_handled_types(self.handlers, contracts.registry),
            processor=self.processor,
            relay=self.relay,
            dead_letters=self.dead_letters,
            backlog=BacklogProbe(self.relay_database, timeout=health_timeout),
        )
        self.readiness = Readiness(
            consumer=self.broker,
            publisher=self.publisher,
            dead_letters=self.dead_letters,
            database=self.database,
            timeout=health_timeout,
        )
        self.http = HttpEndpoint(
            settings.health_host, settings.health_port, service_routes(self.metrics, self.readiness)
        )
        self._relay_task: asyncio.Task[None] | None = None
        self._subscriber = self.broker.subscriber(
            self.topology.inbox_queue(),
            channel=Channel(prefetch_count=settings.prefetch),
            ack_policy=AckPolicy.MANUAL,
            decoder=_undecoded,  # the processor decodes, so bad JSON reaches it and is dead-lettered
            title=f"{settings.service_name} inbox",
        )
        self._subscriber(self.on_delivery)

    @property
    def health_port(self) -> int:
        """The port of /metrics, /healthz and /readyz (the OS's choice for ``health_port`` 0)."""
        return self.http.port

    async def on_delivery(self, message: RabbitMessage) -> None:
        """Decide, act, and only then acknowledge (counting costs a few integer additions).

        Whatever goes wrong here, the delivery is either acknowledged after its
        outcome is safe, or returned to the inbox (its delivery limit ends a
        loop): never left unacknowledged until the channel closes.
        """
        raw = message.raw_message
        messages = self.metrics.messages
        messages.in_flight += 1
        try:
            started = time.perf_counter()
            disposition = await self.processor.process(raw.body)
            counts = messages.of(disposition.message_type)
            counts.processed(time.perf_counter() - started)
            if disposition.outcome in (Outcome.RETRY, Outcome.DEAD):
                try:
                    queue = await self.failures.route(raw, disposition)
                except Exception:
                    log.exception(
                        "could not route failed delivery; returning it to the inbox", **delivery_ids(raw)
                    )
                    counts.returned += 1
                    await message.nack(requeue=True)
                    return
                counts.routed(disposition, dead_lettered=queue == self.topology.dlq)
            else:
                counts.settled(disposition)
            await message.ack()
        except Exception:
            log.exception("delivery failed unexpectedly; returning it to the inbox", **delivery_ids(raw))
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        finally:
            messages.in_flight -= 1
        if disposition.publishes:
            self.relay.wake()

    async def start(self) -> None:
        # First, so liveness answers while the rest connects (readiness says "starting").
        await self.http.start()
        try:
            await self.database.open()
            await self.relay_database.open()
            await self.operator_database.open()
            await self.publisher.connect()
            await declare_fleet(self.publisher.connection, history_retention=self.settings.history_retention)
            await declare_service(self.publisher.connection, self.topology)
            await self.dead_letters.start()
            await self.broker.connect()
            self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
            await self.broker.start()
        except BaseException:
            await self.http.close()
            raise
        self.readiness.phase = Phase.RUNNING
        log.info(
            "service started",
            inbox=self.topology.inbox,
            prefetch=self.settings.prefetch,
            health_port=self.health_port,
        )

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones finish, drain the outbox, disconnect.

        Unacknowledged deliveries go back to the queue when the channel closes;
        nothing was acknowledged before its commit, so nothing is lost.
        """
        log.info("service stopping")
        self.readiness.phase = Phase.STOPPING
        await self._subscriber.stop()  # waits for in-flight handlers (graceful timeout)
        await self.dead_letters.stop()
        self.relay.stop()
        if self._relay_task is not None:
            await self._relay_task
        await self.broker.stop()
        await self.publisher.close()
        await self.database.close()
        await self.relay_database.close()
        await self.operator_database.close()
        await self.http.close()  # last: liveness answers while in-flight work drains
        log.info("service stopped")


def _ingress_bindings(definition: ServiceDefinition) -> list[tuple[str, str]]:
    return [(INGRESS_EXCHANGE, key) for adapter in definition.ingress for key in adapter.routing_keys]


async def _undecoded(message: RabbitMessage) -> RabbitMessage:
    return message


def _handled_types(handlers: HandlerRegistry, registry: ContractRegistry) -> list[str]:
    """The message types this service handles: their metric series start at zero."""
    handled = set()
    for contract in registry:
        try:
            handlers.lookup(contract.message_type, contract.version)
        except UnknownMessage:
            continue
        handled.add(contract.message_type)
    return sorted(handled)


async def serve(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    runtime = ServiceRuntime(definition, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    await stop.wait()
    await runtime.stop()


def main(definition: ServiceDefinition, argv: list[str] | None = None) -> None:
    """``python -m services.<name> [migrate]``."""
    from shared_kernel.persistence.migrations import migrate

    args = sys.argv[1:] if argv is None else argv
    settings = definition.settings_type()
    configure_logging(service=settings.service_name, level=settings.log_level, fmt=settings.log_format)
    if args[:1] == ["migrate"]:
        asyncio.run(migrate(settings, definition.migrations))
    elif not args:
        _run(serve(definition, settings))
    else:
        raise SystemExit(f"usage: python -m services.{settings.service_name} [migrate]")


def _run(coroutine: Any) -> None:
    try:
        import uvloop

        uvloop.run(coroutine)
    except ImportError:
        asyncio.run(coroutine)
