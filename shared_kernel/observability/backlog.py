"""The outbox backlog and the inbox size, read from the database when metrics are scraped.

One statement, one round trip, on the relay's pool: the relay role is the one
that sees every tenant's outbox rows (row-level security shows the consumer's
role one tenant's rows per transaction, and none without a tenant).

The outbox is read exactly: the relay deletes what it publishes, so the table
holds only what waits (due rows, and scheduled rows due later), and a count
of it stays cheap while the relay keeps up.

The inbox only grows, and no role the runtime holds sees all of its rows, so
its size is PostgreSQL's own estimate, the one the planner uses: the row
density that the last ANALYZE (or autovacuum) measured, times the table's
current size in pages. It follows growth between analyses, needs no
privilege (the catalog and the statistics views are readable by every role)
and costs no scan. A table never analysed yet (fewer than autovacuum's
threshold of changes) falls back to the statistics system's live-row count.
An exact count for every tenant would need a SECURITY DEFINER function owned
by the table's owner, created by a migration.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared_kernel.persistence.database import Database
from shared_kernel.persistence.tables import INBOX, OUTBOX

_FIGURES = f"""
SELECT
    count(*) FILTER (WHERE due_at <= now()) AS outbox_due,
    count(*) FILTER (WHERE due_at > now()) AS outbox_scheduled,
    coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0)::float8
        AS outbox_oldest_due_age,
    (
        SELECT CASE
            WHEN c.reltuples >= 0 AND c.relpages > 0
                THEN round(c.reltuples / c.relpages
                           * (pg_relation_size(c.oid) / current_setting('block_size')::float8))
            ELSE pg_stat_get_live_tuples(c.oid)
        END
        FROM pg_class c
        WHERE c.oid = '{INBOX}'::regclass
    )::float8 AS inbox_rows
FROM {OUTBOX}
"""


@dataclass(frozen=True)
class Backlog:
    outbox_due: int
    outbox_scheduled: int
    outbox_oldest_due_age: float  # seconds
    inbox_rows: float  # an estimate


class BacklogProbe:
    def __init__(self, database: Database, *, timeout: float) -> None:
        self._database = database
        self._timeout = timeout

    async def read(self) -> Backlog:
        """The figures now; TimeoutError if the database does not answer within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        async with self._database.pool.acquire(timeout=self._timeout) as connection:
            row = await connection.fetchrow(_FIGURES, timeout=max(deadline - loop.time(), 0.001))
        return Backlog(
            outbox_due=row["outbox_due"],
            outbox_scheduled=row["outbox_scheduled"],
            outbox_oldest_due_age=row["outbox_oldest_due_age"],
            inbox_rows=row["inbox_rows"],
        )
