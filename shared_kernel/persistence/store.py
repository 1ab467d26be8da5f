"""Load and save whole aggregates: one generic store for every aggregate type.

A mapping says which table holds an aggregate type, which columns are copied
out of the aggregate (for constraints and lookups) and which unique
constraint stands for which domain rule, so that a race the handler's own
check could not see still ends as the named rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import (
    CTE,
    Insert,
    MetaData,
    Table,
    Text,
    Update,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, insert

from shared_kernel.domain import AggregateRoot, RuleViolation
from shared_kernel.persistence.inbox_outbox import OutboxMessage
from shared_kernel.persistence.statements import Compiled, compile_statement
from shared_kernel.persistence.tables import messaging_tables

A = TypeVar("A", bound=AggregateRoot)

_KEY = ("tenant_id", "id")
_IMMUTABLE = (*_KEY, "created_at", "created_by")


class ConcurrencyConflict(Exception):
    """Someone saved the aggregate since it was loaded; retry the message."""


@dataclass(frozen=True)
class AggregateMapping:
    """Where and how one aggregate type is stored, and its compiled statements."""

    aggregate: type[AggregateRoot]
    table: Table
    # column -> function of the aggregate giving the column's value
    columns: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    # unique constraint name -> the rule a violation of it means
    unique_rules: Mapping[str, Callable[[Any], RuleViolation]] = field(default_factory=dict)

    def row(self, aggregate: AggregateRoot) -> dict[str, Any]:
        return {
            "tenant_id": aggregate.tenant_id,
            "id": aggregate.aggregate_id,
            "project_id": aggregate.project_id,
            **{column: value(aggregate) for column, value in self.columns.items()},
            "state": aggregate.wire_json(),
            "created_at": aggregate.created_at,
            "created_by": aggregate.created_by,
            "updated_at": aggregate.updated_at,
            "updated_by": aggregate.updated_by,
            "version": aggregate.version,
        }

    @cached_property
    def _row_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.table.columns)

    @cached_property
    def insert_statement(self) -> Compiled:
        return compile_statement(_with_events(self._saved_insert.returning(literal_column("1")).cte("saved")))

    @cached_property
    def update_statement(self) -> Compiled:
        return compile_statement(_with_events(self._saved_update.returning(literal_column("1")).cte("saved")))

    @cached_property
    def _saved_insert(self) -> Insert:
        return self.table.insert().values({c: bindparam(c) for c in self._row_columns})

    @cached_property
    def _saved_update(self) -> Update:
        """The update of the row, only if it is still at the version that was loaded."""
        table = self.table
        return (
            table.update()
            .where(
                table.c.tenant_id == bindparam("tenant_id"),
                table.c.id == bindparam("id"),
                table.c.version == bindparam("expected_version"),
            )
            .values({c: bindparam(c) for c in self._row_columns if c not in _IMMUTABLE})
        )

    @cached_property
    def insert_only_statement(self) -> Compiled:
        """The insert of an aggregate saved without events (a read model)."""
        return compile_statement(self._saved_insert.returning(literal_column("1")))

    @cached_property
    def update_only_statement(self) -> Compiled:
        """The update of an aggregate saved without events (a read model)."""
        return compile_statement(self._saved_update.returning(literal_column("1")))

    def select_statement(self, where: tuple[str, ...], *, limit: bool) -> Compiled:
        return _select_statement(self, where, limit)

    def max_statement(self, column: str, where: tuple[str, ...]) -> Compiled:
        return _max_statement(self, column, where)


_outbox = messaging_tables(MetaData())[1]
_EVENT_COLUMNS = ("tenant_id", "exchange", "routing_key", "message_id", "properties", "body")
_EVENT_ARRAYS = {
    name: ARRAY(JSONB if name == "properties" else BYTEA if name == "body" else Text)
    for name in _EVENT_COLUMNS
}


def _with_events(saved: CTE) -> Insert:
    """Save the aggregate and insert its events into the outbox in one statement.

    The events are inserted once per row the save returns: none when the
    version check fails, which is how a concurrent save is detected.
    """
    events = (
        func.unnest(*(bindparam(f"event_{name}", type_=_EVENT_ARRAYS[name]) for name in _EVENT_COLUMNS))
        .table_valued(*_EVENT_COLUMNS)
        .render_derived(name="events")
    )
    rows = select(*(events.c[name] for name in _EVENT_COLUMNS)).select_from(saved).join(events, true())
    return insert(_outbox).from_select(_EVENT_COLUMNS, rows)


def _event_arrays(events: Sequence[OutboxMessage]) -> dict[str, list[Any]]:
    return {f"event_{name}": [getattr(event, name) for event in events] for name in _EVENT_COLUMNS}


_statement_cache: dict[tuple[Any, ...], Compiled] = {}


def _select_statement(mapping: AggregateMapping, where: tuple[str, ...], limit: bool) -> Compiled:
    key = ("select", mapping.table.name, where, limit)
    if key not in _statement_cache:
        table = mapping.table
        # The state as JSON text, validated into the aggregate in one step (model_validate_json).
        state = cast(table.c.state, Text).label("state")
        query = select(state, table.c.version).where(table.c.tenant_id == bindparam("tenant_id"))
        for column in where:
            query = query.where(table.c[column] == bindparam(column))
        if limit:
            query = query.limit(bindparam("limit"))
        # The lock makes concurrent messages for one aggregate wait for each other
        # instead of failing on the version check (which stays, as the guard).
        _statement_cache[key] = compile_statement(query.with_for_update())
    return _statement_cache[key]


def _max_statement(mapping: AggregateMapping, column: str, where: tuple[str, ...]) -> Compiled:
    key = ("max", mapping.table.name, column, where)
    if key not in _statement_cache:
        table = mapping.table
        query = select(func.max(table.c[column])).where(table.c.tenant_id == bindparam("tenant_id"))
        for name in where:
            query = query.where(table.c[name] == bindparam(name))
        _statement_cache[key] = compile_statement(query)
    return _statement_cache[key]


class AggregateStore:
    """Reads and writes aggregates of any mapped type on one connection.

    Loaded rows are locked until the transaction ends. A failed write leaves
    the transaction aborted; the runtime rolls it back and records the
    outcome in a fresh one, so no savepoints are needed.
    """

    def __init__(self, connection: asyncpg.Connection, tenant_id: str) -> None:
        self._connection = connection
        self._tenant_id = tenant_id

    async def find_all(self, mapping: AggregateMapping, limit: int | None = None, **where: Any) -> list[Any]:
        statement = mapping.select_statement(tuple(sorted(where)), limit=limit is not None)
        rows = await self._connection.fetch(
            statement.sql, *statement.args({**where, "tenant_id": self._tenant_id, "limit": limit})
        )
        return [self._hydrate(mapping, row["state"], row["version"]) for row in rows]

    async def find(self, mapping: AggregateMapping, **where: Any) -> Any | None:
        found = await self.find_all(mapping, limit=2, **where)
        if len(found) > 1:
            raise LookupError(f"{mapping.aggregate.__name__} lookup {where} is not unique")
        return found[0] if found else None

    async def max_value(self, mapping: AggregateMapping, column: str, **where: Any) -> Any | None:
        statement = mapping.max_statement(column, tuple(sorted(where)))
        return await self._connection.fetchval(
            statement.sql, *statement.args({**where, "tenant_id": self._tenant_id})
        )

    async def save(
        self,
        mapping: AggregateMapping,
        aggregate: AggregateRoot,
        *,
        expected_version: int,
        events: Sequence[OutboxMessage],
    ) -> None:
        """Insert (``expected_version`` 0) or update the aggregate, with its events.

        ``aggregate.version`` is already the new version; the row is written
        only if the stored one is still ``expected_version``.
        """
        if events:
            statement = mapping.insert_statement if expected_version == 0 else mapping.update_statement
            values = {**mapping.row(aggregate), **_event_arrays(events)}
            written = f"INSERT 0 {len(events)}"  # one outbox row per event, none if the save failed
        elif expected_version == 0:
            # A read model, or an aggregate created without an event: no outbox rows.
            statement, values, written = mapping.insert_only_statement, mapping.row(aggregate), "INSERT 0 1"
        else:
            statement, values, written = mapping.update_only_statement, mapping.row(aggregate), "UPDATE 1"
        values["expected_version"] = expected_version
        try:
            status = await self._connection.execute(statement.sql, *statement.args(values))
        except asyncpg.UniqueViolationError as error:
            raise self._rule_for(mapping, aggregate, error) from error
        if status != written:
            raise ConcurrencyConflict(
                f"{mapping.aggregate.aggregate_type} {aggregate.aggregate_id} changed since version "
                f"{expected_version}"
            )

    @staticmethod
    def _hydrate(mapping: AggregateMapping, state: str, version: int) -> Any:
        aggregate = mapping.aggregate.model_validate_json(state)
        aggregate.version = version
        return aggregate

    @staticmethod
    def _rule_for(
        mapping: AggregateMapping, aggregate: AggregateRoot, error: asyncpg.UniqueViolationError
    ) -> Exception:
        rule = mapping.unique_rules.get(error.constraint_name or "")
        return rule(aggregate) if rule else error
