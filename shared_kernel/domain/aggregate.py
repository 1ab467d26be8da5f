"""Aggregate root base: identity, tenancy, audit fields, version, pending events.

Aggregates are pydantic models so that a repository can store the whole
aggregate (root, entities, value objects) as one document and load it back
validated. Field names are snake_case in Python and camelCase on the wire and
in storage, matching the spec's field names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel


class DomainModel(BaseModel):
    """Base of aggregates, entities and domain value records."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=True,
        use_enum_values=False,
        extra="forbid",
    )

    def wire(self) -> dict[str, Any]:
        """The camelCase JSON-compatible form used in payloads and storage."""
        return self.model_dump(mode="json", by_alias=True)

    def wire_json(self) -> bytes:
        """``wire()`` serialised straight to JSON bytes (no intermediate dict)."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True)


class RecordedEvent(BaseModel):
    """A domain event an aggregate method recorded, not yet in the outbox."""

    model_config = ConfigDict(frozen=True)

    event_type: str
    payload: dict[str, Any]


class AggregateRoot(DomainModel):
    """Consistency boundary: guards invariants, mutates, records events.

    ``version`` counts successful saves and is the optimistic-concurrency
    token; a repository refuses to save over a version it did not load.
    """

    aggregate_type: ClassVar[str]
    id_field: ClassVar[str]

    tenant_id: str
    project_id: str | None = None
    version: int = 0
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    _pending_events: list[RecordedEvent] = PrivateAttr(default_factory=list)

    @property
    def aggregate_id(self) -> str:
        value = getattr(self, self.id_field)
        return str(value)

    def record(self, event_type: str, payload: dict[str, Any], *, at: datetime, by: str) -> None:
        """Append a past-tense event and stamp the audit fields."""
        self.updated_at = at
        self.updated_by = by
        self._pending_events.append(RecordedEvent(event_type=event_type, payload=payload))

    def pull_events(self) -> list[RecordedEvent]:
        """Hand the pending events over (to the unit of work) and forget them."""
        events, self._pending_events = self._pending_events, []
        return events

    @property
    def has_pending_events(self) -> bool:
        return bool(self._pending_events)


def audit_fields(*, at: datetime, by: str) -> dict[str, Any]:
    """Audit columns of a new aggregate."""
    return {"created_at": at, "created_by": by, "updated_at": at, "updated_by": by}


__all__ = ["AggregateRoot", "DomainModel", "Field", "RecordedEvent", "audit_fields"]
