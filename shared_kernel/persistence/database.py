"""Connection pools and tenant-scoped transactions (asyncpg).

The tenant is set per transaction with ``set_config(..., true)``: it ends with
the transaction, so nothing leaks to the next user of a pooled connection, and
row-level security policies match nothing when it is absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


async def _init_connection(connection: asyncpg.Connection) -> None:
    for json_type in ("json", "jsonb"):
        await connection.set_type_codec(
            json_type,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """Returned to the pool without a reset round trip.

    Nothing here sets session state (the tenant is transaction-local, codecs
    live in the client), and asyncpg still ends any open transaction on release.
    """

    def get_reset_query(self) -> str:
        return ""


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
            min_size=1,
            max_size=self._size,
            init=_init_connection,
            connection_class=_PooledConnection,
            server_settings={"application_name": self._application_name},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction with no tenant yet: row-level security shows it nothing
        until the tenant is set (``record_in_inbox`` or ``tenant_transaction``)."""
        async with self.pool.acquire() as connection, connection.transaction():
            yield connection

    @asynccontextmanager
    async def tenant_transaction(self, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
        """One transaction in which only ``tenant_id``'s rows are visible."""
        async with self.transaction() as connection:
            await connection.execute(_SET_TENANT, tenant_id)
            yield connection
