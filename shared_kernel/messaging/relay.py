"""Outbox relay: the one path by which committed messages are published.

Handlers wake it after each commit; it also polls, which publishes what a
crash left behind and scheduled rows once they fall due. In one short
transaction per batch it takes due rows in id order (deleted with ``FOR UPDATE
SKIP LOCKED``, so several replicas share the work), publishes them with
confirms, and commits only once the broker has confirmed every one: a row is
gone only once the broker holds its message. A failure rolls the deletion
back; a crash after the confirms and before the commit republishes the batch,
and subscribers deduplicate by eventId.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from shared_kernel.logging import get_logger
from shared_kernel.messaging.publisher import ConfirmedPublisher
from shared_kernel.persistence.database import Database
from shared_kernel.persistence.inbox_outbox import take_due

log = get_logger(__name__)


@dataclass
class _Batch:
    """Rows taken (deleted, uncommitted) whose publishes are under way."""

    transaction: Any
    publishes: list[asyncio.Task[None]]

    @property
    def size(self) -> int:
        return len(self.publishes)


class OutboxRelay:
    """Publishes due outbox rows; up to ``in_flight`` batches await their confirms at once.

    Batches are taken and their messages handed to the channel one batch at a
    time, in id order, so publish order follows the outbox; only the waits for
    confirms and the commits overlap, which keeps the delay a message spends
    in the outbox short under load.
    """

    def __init__(
        self,
        database: Database,
        publisher: ConfirmedPublisher,
        *,
        batch_size: int,
        poll_interval: float,
        in_flight: int = 2,
    ) -> None:
        self._database = database
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._in_flight = in_flight
        self._wake = asyncio.Event()
        self._stopping = False
        self._finishing: deque[asyncio.Task[int]] = deque()
        # Read by the metrics: messages confirmed and deleted, their batches, and
        # the passes or batches that failed (their rows stay for a later pass).
        self.published = 0
        self.batches = 0
        self.failures = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Take, publish and commit batches until stopped; sleep when nothing is due."""
        backoff = self._poll_interval
        while not self._stopping:
            self._wake.clear()
            try:
                taken = await self._next_batch()
                backoff = self._poll_interval
            except Exception:
                self.failures += 1
                log.exception("outbox relay failed; rows stay in the outbox")
                taken, backoff = 0, min(backoff * 2, 30.0)
            if taken == self._batch_size:
                continue  # more rows are waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
        # What handlers committed while the subscriber drained goes out now.
        try:
            await self.drain()
        except Exception:
            log.exception("final outbox drain failed; rows stay for the next start")
        log.info("outbox relay stopped", published=self.published, batches=self.batches)

    async def drain(self) -> int:
        """Publish every due row and wait for all of it; the number published."""
        before = self.published
        full = True
        while full:  # a full batch means more rows may be due
            full = await self._next_batch() == self._batch_size
        while self._finishing:
            await self._finishing.popleft()
        return self.published - before

    async def _next_batch(self) -> int:
        """Take one batch and start publishing it; the number of rows taken."""
        while self._finishing and (len(self._finishing) >= self._in_flight or self._finishing[0].done()):
            await self._finishing.popleft()
        transaction = self._database.transaction()
        connection = await transaction.__aenter__()
        try:
            taken = await take_due(connection, self._batch_size)
        except BaseException as error:
            await transaction.__aexit__(type(error), error, error.__traceback__)
            raise
        if not taken:
            await transaction.__aexit__(None, None, None)
            return 0
        publishes = [
            asyncio.create_task(
                self._publisher.publish(
                    exchange_name=row.exchange,
                    routing_key=row.routing_key,
                    body=row.body,
                    properties=row.properties,
                )
            )
            for row in taken
        ]
        self._finishing.append(asyncio.create_task(self._finish(_Batch(transaction, publishes))))
        return len(taken)

    async def _finish(self, batch: _Batch) -> int:
        """Commit the deletion once every message is confirmed; roll it back otherwise."""
        try:
            await asyncio.gather(*batch.publishes)
        except BaseException as error:
            for publish in batch.publishes:
                publish.cancel()
            await batch.transaction.__aexit__(type(error), error, error.__traceback__)
            self.failures += 1
            log.warning("outbox batch not confirmed; its rows stay in the outbox", error=repr(error))
            return 0
        await batch.transaction.__aexit__(None, None, None)
        if batch.size:
            self.published += batch.size
            self.batches += 1
        return batch.size

    def stop(self) -> None:
        """Ask ``run`` to finish its current pass, drain once more and return."""
        self._stopping = True
        self._wake.set()
