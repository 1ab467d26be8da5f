"""The dead-letter mover: ``<service>.dlq`` into ``dead_letters``, commit, then ack.

Operators then work on the table (list, group, show, replay, edit, purge)
instead of scanning and requeueing the queue. A DLQ message delivered again
(the mover stopped between its commit and its ack) has the same fingerprint
and is only acknowledged. While the database is unreachable, a message is
held (not acknowledged) and its insert retried with back-off; on stop it goes
back to the queue with the channel.

It consumes on its own AMQP connection unless given one: the service's
publishing connection may be throttled by flow control, which must never
hold up acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from shared_kernel.dead_letters.capture import capture
from shared_kernel.dead_letters.store import insert_captured
from shared_kernel.logging import bound, get_logger
from shared_kernel.messaging.topology import ServiceTopology
from shared_kernel.persistence.database import Database

log = get_logger(__name__)


class DeadLetterMover:
    def __init__(
        self,
        amqp: str | AbstractConnection,
        database: Database,
        topology: ServiceTopology,
        *,
        prefetch: int = 16,
        max_backoff: float = 30.0,
    ) -> None:
        """``amqp``: a URL (the mover opens and closes its own connection) or an open connection.

        ``database``: the operator role's pool on the service's database.
        """
        self._amqp = amqp
        self._database = database
        self._topology = topology
        self._prefetch = prefetch
        self._max_backoff = max_backoff
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self.stored = 0
        self.duplicates = 0

    @property
    def connection(self) -> AbstractConnection:
        """The mover's own AMQP connection (for readiness)."""
        if self._connection is None:
            raise RuntimeError("the dead-letter mover is not connected")
        return self._connection

    @property
    def queue(self) -> str:
        return self._topology.dlq

    async def start(self) -> None:
        self._stopping.clear()
        if isinstance(self._amqp, str):
            self._connection = await aio_pika.connect_robust(
                self._amqp,
                client_properties={"connection_name": f"{self._topology.service} dead-letter mover"},
            )
            connection: AbstractConnection = self._connection
        else:
            connection = self._amqp
        self._channel = await connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        declared = self._topology.dlq_queue()
        # Same arguments as declare_service: a no-op when the service declared it first.
        self._queue = await self._channel.declare_queue(
            declared.name, durable=True, arguments=dict(declared.arguments or {})
        )
        self._consumer_tag = await self._queue.consume(self._on_message)
        log.info("dead-letter mover started", queue=self.queue)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking dead letters, let the ones in hand finish, close the channel.

        A dead letter not yet committed is not acknowledged: it goes back to
        the DLQ when the channel closes.
        """
        self._stopping.set()
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):  # the channel may already be gone
                await self._queue.cancel(self._consumer_tag)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        log.info("dead-letter mover stopped", stored=self.stored, duplicates=self.duplicates)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._move(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _move(self, message: AbstractIncomingMessage) -> None:
        letter = capture(message, self._topology.service)
        with bound(eventId=letter.message_id, eventType=letter.event_type, tenantId=letter.tenant_id):
            backoff = 0.2
            while True:
                try:
                    async with self._database.transaction() as connection:
                        stored_id = await insert_captured(connection, letter)
                    break
                except Exception:
                    if self._stopping.is_set():
                        log.warning("dead letter not stored before stop; it stays in the queue")
                        return
                    log.exception("could not store dead letter; retrying", retry_in=backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff)
                    backoff = min(backoff * 2, self._max_backoff)
            await message.ack()
        if stored_id is None:
            self.duplicates += 1
            log.info("dead letter already stored", fingerprint=letter.fingerprint)
        else:
            self.stored += 1
            log.info(
                "dead letter stored",
                dead_letter_id=stored_id,
                group=letter.group_key,
                exception_type=letter.exception_type,
                failure_outcome=letter.failure_outcome,
            )
