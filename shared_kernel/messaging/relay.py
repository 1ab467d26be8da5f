"""Outbox relay: the one path by which committed messages are published.

Handlers wake it after each commit; it also polls, which publishes what a
crash left behind and scheduled rows once they fall due. In one short
transaction it takes due rows in id order (deleted with ``FOR UPDATE SKIP
LOCKED``, so several replicas share the work), publishes them with confirms,
and commits only once the broker has confirmed every one: a row is gone only
once the broker holds its message. A failure rolls the deletion back; a crash
after the confirms and before the commit republishes the batch, and
subscribers deduplicate by eventId.
"""

from __future__ import annotations

import asyncio
import contextlib

from shared_kernel.logging import get_logger
from shared_kernel.messaging.publisher import ConfirmedPublisher
from shared_kernel.persistence.database import Database
from shared_kernel.persistence.inbox_outbox import take_due

log = get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        publisher: ConfirmedPublisher,
        *,
        batch_size: int,
        poll_interval: float,
    ) -> None:
        self._database = database
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0
        self.batches = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Drain, then sleep until woken or the poll interval passes; until stopped."""
        backoff = self._poll_interval
        while not self._stopping:
            try:
                await self.drain()
                backoff = self._poll_interval
            except Exception:
                log.exception("outbox relay failed; rows stay in the outbox")
                backoff = min(backoff * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
        # What handlers committed while the subscriber drained goes out now.
        try:
            await self.drain()
        except Exception:
            log.exception("final outbox drain failed; rows stay for the next start")
        log.info("outbox relay stopped", published=self.published, batches=self.batches)

    async def drain(self) -> int:
        """Publish every due row; the number published."""
        total = 0
        while True:
            sent = await self._publish_batch()
            total += sent
            if sent < self._batch_size:
                return total

    async def _publish_batch(self) -> int:
        async with self._database.transaction() as connection:
            taken = await take_due(connection, self._batch_size)
            if not taken:
                return 0
            await asyncio.gather(
                *(
                    self._publisher.publish(
                        exchange_name=row.exchange,
                        routing_key=row.routing_key,
                        body=row.body,
                        properties=row.properties,
                    )
                    for row in taken
                )
            )
        self.published += len(taken)
        self.batches += 1
        return len(taken)

    def stop(self) -> None:
        """Ask ``run`` to finish its current pass, drain once more and return."""
        self._stopping = True
        self._wake.set()
