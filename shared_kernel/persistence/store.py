"""Load and save whole aggregates: one generic store for every aggregate type.

A mapping says which table holds an aggregate type, which columns are copied
out of the aggregate (for constraints and lookups) and which unique
constraint stands for which domain rule, so that a race the handler's own
check could not see still ends as the named rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared_kernel.domain import AggregateRoot, RuleViolation

A = TypeVar("A", bound=AggregateRoot)


class ConcurrencyConflict(Exception):
    """Someone saved the aggregate since it was loaded; retry the message."""


@dataclass(frozen=True)
class AggregateMapping:
    """Where and how one aggregate type is stored."""

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
            "state": aggregate.wire(),
            "created_at": aggregate.created_at,
            "created_by": aggregate.created_by,
            "updated_at": aggregate.updated_at,
            "updated_by": aggregate.updated_by,
            "version": aggregate.version,
        }


class AggregateStore:
    """Reads and writes aggregates of any mapped type on one connection.

    A failed write leaves the transaction aborted; the runtime rolls it back
    and records the outcome in a fresh one, so no savepoints are needed.
    """

    def __init__(self, connection: AsyncConnection, tenant_id: str) -> None:
        self._connection = connection
        self._tenant_id = tenant_id

    async def find_all(self, mapping: AggregateMapping, limit: int | None = None, **where: Any) -> list[Any]:
        """Aggregates matching ``where``, locked until the transaction ends.

        The lock makes concurrent messages for one aggregate wait for each
        other instead of failing on the version check (which stays, as the
        guard against anyone who did not lock).
        """
        table = mapping.table
        query = select(table.c.state, table.c.version).where(table.c.tenant_id == self._tenant_id)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        if limit is not None:
            query = query.limit(limit)
        query = query.with_for_update()
        rows = (await self._connection.execute(query)).all()
        return [self._hydrate(mapping, state, version) for state, version in rows]

    async def find(self, mapping: AggregateMapping, **where: Any) -> Any | None:
        found = await self.find_all(mapping, limit=2, **where)
        if len(found) > 1:
            raise LookupError(f"{mapping.aggregate.__name__} lookup {where} is not unique")
        return found[0] if found else None

    async def max_value(self, mapping: AggregateMapping, column: str, **where: Any) -> Any | None:
        table = mapping.table
        query = select(func.max(table.c[column])).where(table.c.tenant_id == self._tenant_id)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        return (await self._connection.execute(query)).scalar()

    async def insert(self, mapping: AggregateMapping, aggregate: AggregateRoot) -> None:
        aggregate.version = 1
        try:
            await self._connection.execute(mapping.table.insert().values(mapping.row(aggregate)))
        except IntegrityError as error:
            aggregate.version = 0
            raise self._rule_for(mapping, aggregate, error) from error

    async def update(self, mapping: AggregateMapping, aggregate: AggregateRoot) -> None:
        loaded = aggregate.version
        aggregate.version = loaded + 1
        table = mapping.table
        row = mapping.row(aggregate)
        del row["tenant_id"], row["id"], row["created_at"], row["created_by"]
        statement = (
            table.update()
            .where(table.c.tenant_id == aggregate.tenant_id)
            .where(table.c.id == aggregate.aggregate_id)
            .where(table.c.version == loaded)
            .values(row)
        )
        try:
            result = await self._connection.execute(statement)
        except IntegrityError as error:
            aggregate.version = loaded
            raise self._rule_for(mapping, aggregate, error) from error
        if result.rowcount != 1:
            aggregate.version = loaded
            raise ConcurrencyConflict(
                f"{mapping.aggregate.aggregate_type} {aggregate.aggregate_id} changed since version {loaded}"
            )

    @staticmethod
    def _hydrate(mapping: AggregateMapping, state: dict[str, Any], version: int) -> Any:
        aggregate = mapping.aggregate.model_validate(state)
        aggregate.version = version
        return aggregate

    @staticmethod
    def _rule_for(mapping: AggregateMapping, aggregate: AggregateRoot, error: IntegrityError) -> Exception:
        constraint = getattr(getattr(error.orig, "__cause__", None), "constraint_name", None)
        rule = mapping.unique_rules.get(constraint or "")
        return rule(aggregate) if rule else error
