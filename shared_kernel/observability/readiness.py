"""Readiness: is this runtime able to take messages and commit them right now?

Ready only while the runtime is running (not starting, not stopping), both
of its AMQP connections are open — the consumer's, which receives and
acknowledges, and the publisher's, which sends retries, dead letters and the
outbox — and the database answers ``SELECT 1`` on the consumer's pool within
the timeout. Liveness asks less: that the event loop answers at all, since
restarting the process does not bring a broker or a database back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import orjson
from aio_pika.abc import AbstractConnection

from shared_kernel.persistence.database import Database

OK = "ok"
# How long a reconnecting consumer connection may take before it counts as down.
_BROKER_GRACE = 0.2


class Phase(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


class Pingable(Protocol):
    """The consumer's broker (FastStream): True once its connection is open."""

    async def ping(self, timeout: float | None) -> bool: ...


class HasConnection(Protocol):
    """The publisher or the dead-letter mover: its connection, or RuntimeError when it has none."""

    @property
    def connection(self) -> AbstractConnection: ...


@dataclass(frozen=True)
class ReadinessReport:
    checks: dict[str, str]  # check -> "ok" or what is wrong

    @property
    def ready(self) -> bool:
        return all(result == OK for result in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result != OK]

    def json(self) -> bytes:
        status = "ready" if self.ready else "not ready"
        return orjson.dumps({"status": status, "failed": self.failed, "checks": self.checks})


class Readiness:
    def __init__(
        self,
        *,
        consumer: Pingable,
        publisher: HasConnection,
        dead_letters: HasConnection,
        database: Database,
        timeout: float,
    ):
        self.phase = Phase.STARTING
        self._consumer = consumer
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._database = database
        self._timeout = timeout

    async def check(self) -> ReadinessReport:
        consumer, database = await asyncio.gather(self._consumer_state(), self._database_state())
        return ReadinessReport(
            {
                "runtime": OK if self.phase is Phase.RUNNING else self.phase.value,
                "consumer": consumer,
                "publisher": _connection_state(self._publisher, "the publisher's"),
                "dead-letters": _connection_state(self._dead_letters, "the dead-letter mover's"),
                "database": database,
            }
        )

    async def _consumer_state(self) -> str:
        try:
            connected = await self._consumer.ping(_BROKER_GRACE)
        except Exception as error:
            return _describe(error)
        return OK if connected else "the consumer's AMQP connection is not open"

    async def _database_state(self) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with self._database.pool.acquire(timeout=self._timeout) as connection:
                await connection.fetchval("SELECT 1", timeout=max(deadline - loop.time(), 0.001))
        except TimeoutError:
            return f"no answer to SELECT 1 within {self._timeout:g}s"
        except Exception as error:
            return _describe(error)
        return OK


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _connection_state(holder: HasConnection, whose: str) -> str:
    try:
        connection = holder.connection
    except RuntimeError:
        return f"{whose} AMQP connection is not open"
    if connection.is_closed:
        return f"{whose} AMQP connection is closed"
    if not connection.connected.is_set():
        return f"{whose} AMQP connection is lost; reconnecting"
    return OK
