"""Engines and tenant-scoped transactions.

The tenant is set per transaction with ``set_config(..., true)``: it ends with
the transaction, so nothing leaks to the next user of a pooled connection, and
row-level security policies match nothing when it is absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

TENANT_SETTING = "app.tenant_id"
_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)")


def create_engine(url: str, *, pool_size: int, application_name: str) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )


@asynccontextmanager
async def tenant_transaction(engine: AsyncEngine, tenant_id: str) -> AsyncIterator[AsyncConnection]:
    """One transaction in which only ``tenant_id``'s rows are visible."""
    async with engine.begin() as connection:
        await connection.execute(_SET_TENANT, {"tenant": tenant_id})
        yield connection
