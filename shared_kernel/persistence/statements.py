"""SQLAlchemy Core statements compiled once for asyncpg.

The schema and the statements are SQLAlchemy's (one source of truth with
the migrations); the per-message path executes the compiled SQL on asyncpg
directly, so no statement is built or compiled per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Compiled:
    """SQL with ``$n`` placeholders and the bind names in placeholder order."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]  # values the statement itself binds (literals)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] if name in values else self.constants[name] for name in self.names]


def compile_statement(statement: ClauseElement) -> Compiled:
    compiled = statement.compile(dialect=_DIALECT)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    order = getattr(compiled, "positiontup", None) or ()  # positional dialects only
    return Compiled(str(compiled), tuple(order), constants)
