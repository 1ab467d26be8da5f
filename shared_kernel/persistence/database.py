"""Connection pools and tenant-scoped transactions (asyncpg).

The tenant is set per transaction with ``set_config(..., true)``: it ends with
the transaction, so nothing leaks to the next user of a pooled connection, and
row-level security policies match nothing when it is absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

TENANT_SETTING = "app.tenant_id"
_SET_TENANT = f"SELECT set_config('{TENANT_SETTING}', $1, true)"


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """An asyncpg DSN from a SQLAlchemy URL (``postgresql+asyncpg://…``)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


_JSONB_VERSION = b"\x01"  # the binary jsonb format: a version byte, then JSON text


def _encode_jsonb(value: Any) -> bytes:
    """JSON given as bytes is already serialised (an aggregate's state); anything else is dumped."""
    return _JSONB_VERSION + (value if isinstance(value, bytes) else orjson.dumps(value))


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """Returned to the pool without a reset round trip.

    Nothing here sets session state (the tenant is transaction-local, codecs
    live in the client), and asyncpg still ends any open transaction on release.
    """

    def get_reset_query(self) -> str:
        return ""


class _Transaction:
    """Pooled connection + transaction as one context manager (per-message path)."""

    __slots__ = ("_connection", "_pool", "_transaction")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __aenter__(self) -> asyncpg.Connection:
        self._connection = await self._pool.acquire()
        try:
            self._transaction = self._connection.transaction()
            await self._transaction.start()
        except BaseException:
            await self._pool.release(self._connection)
            raise
        return self._connection

    async def __aexit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        try:
            if error_type is None:
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        finally:
            await self._pool.release(self._connection)


class Database:
    """One pool for one role of one service's database."""

    def __init__(self, url: str, *, size: int, application_name: str) -> None:
        self._dsn = asyncpg_dsn(url)
        self._size = size
        self._application_name = application_name
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            # Open every connection up front: a pool that could not grow later (the
            # server out of slots) would starve the consumer or, worse, the relay.
            min_size=self._size,
            max_size=self._size,
            init=_init_connection,
            connection_class=_PooledConnection,
            server_settings={"application_name": self._application_name},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def transaction(self) -> _Transaction:
        """A transaction with no tenant yet: row-level security shows it nothing
        until the tenant is set (``record_in_inbox`` or ``tenant_transaction``)."""
        return _Transaction(self.pool)

    @asynccontextmanager
    async def tenant_transaction(self, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
        """One transaction in which only ``tenant_id``'s rows are visible."""
        async with self.transaction() as connection:
            await connection.execute(_SET_TENANT, tenant_id)
            yield connection
