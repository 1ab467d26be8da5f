"""Read what the service's dead-letter mover stored (tests poll the store, not the DLQ)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from shared_kernel.settings import ServiceSettings


@dataclass(frozen=True)
class StoredLetter:
    message_id: str | None
    correlation_id: str | None
    body: bytes
    headers: dict[str, Any]


async def stored_dead_letters(
    settings: ServiceSettings,
    *,
    message_id: str | None = None,
    body: bytes | None = None,
    since: datetime | None = None,
    expect: int = 1,
    timeout: float = 20.0,
) -> list[StoredLetter]:
    """Wait until ``expect`` dead letters matching the filters are in the store; return them."""
    connection = await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        password=settings.postgres_admin_password or None,
        database=settings.database_name,
    )
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rows = await connection.fetch(
                "SELECT message_id, correlation_id, body, headers::text AS headers FROM dead_letters "
                "WHERE ($1::text IS NULL OR message_id = $1) AND ($2::bytea IS NULL OR body = $2) "
                "AND ($3::timestamptz IS NULL OR received_at >= $3) ORDER BY id",
                message_id,
                body,
                since,
            )
            if len(rows) >= expect:
                return [
                    StoredLetter(r["message_id"], r["correlation_id"], r["body"], orjson.loads(r["headers"]))
                    for r in rows
                ]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(rows)} of {expect} dead letters stored in {timeout}s")
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
