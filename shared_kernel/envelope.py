"""The canonical envelope every command and event travels in.

The JSON body is the envelope (camelCase, the brief's table); the AMQP
properties mirror it so brokers, tools and subscribers can route and trace a
message without parsing the body.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared_kernel.ids import new_id, new_trace_id

_EVENT_ID = re.compile(r"(evt|cmd)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TRACE_ID = re.compile(r"(?!0{32})[0-9a-f]{32}")

HEADER_TENANT = "x-tenant-id"
HEADER_CAUSATION = "x-causation-id"
HEADER_SCHEMA_VERSION = "x-schema-version"


class InvalidEnvelope(ValueError):
    """The body is not a canonical envelope; the reason says why."""


class Envelope(BaseModel):
    """Envelope of one message; ``payload`` is validated by its contract."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    event_id: str
    event_type: str = Field(min_length=1, max_length=128, pattern=r"^[A-Z][A-Za-z0-9]*$")
    schema_version: int = Field(ge=1)
    # Tenants name folders, Git repositories and distribution keys: a safe token.
    tenant_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    project_id: str | None = Field(default=None, max_length=128)
    module_id: str | None = Field(default=None, max_length=128)
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    aggregate_version: int | None = Field(default=None, ge=1)
    trace_id: str
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = None
    occurred_at: datetime
    source: str = Field(min_length=1, max_length=128)
    payload: dict[str, Any]

    @field_validator("event_id")
    @classmethod
    def _prefixed_uuid(cls, value: str) -> str:
        if not _EVENT_ID.fullmatch(value):
            raise ValueError("eventId must be a prefixed UUID such as evt-<uuid> or cmd-<uuid>")
        return value

    @field_validator("trace_id")
    @classmethod
    def _w3c_trace_id(cls, value: str) -> str:
        if not _TRACE_ID.fullmatch(value):
            raise ValueError("traceId must be a W3C trace id (32 lower-case hex, not all zero)")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurredAt must carry a UTC offset (RFC 3339)")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _aggregate_fields_together(self) -> Self:
        given = [self.aggregate_type, self.aggregate_id, self.aggregate_version]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("aggregateType, aggregateId and aggregateVersion go together")
        return self

    @property
    def is_command(self) -> bool:
        return self.event_id.startswith("cmd-")

    # -- construction -----------------------------------------------------------------

    @classmethod
    def new(
        cls,
        *,
        kind_prefix: str,
        event_type: str,
        schema_version: int,
        payload: dict[str, Any],
        source: str,
        tenant_id: str,
        project_id: str | None = None,
        module_id: str | None = None,
        cause: Envelope | None = None,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
        aggregate: tuple[str, str, int] | None = None,
        event_id: str | None = None,
    ) -> Envelope:
        """A new message; with ``cause`` it continues that message's conversation.

        Built without re-validation from parts that are valid by construction
        (this is on the per-message path); ``event_id`` and ``occurred_at``,
        which callers may supply, are checked.
        """
        message_id = event_id or new_id(kind_prefix)
        if event_id is not None:
            cls._prefixed_uuid(event_id)
        when = cls._utc(occurred_at) if occurred_at is not None else datetime.now(UTC)
        aggregate_type, aggregate_id, aggregate_version = aggregate or (None, None, None)
        return cls.model_construct(
            event_id=message_id,
            event_type=event_type,
            schema_version=schema_version,
            tenant_id=tenant_id,
            project_id=project_id if project_id is not None else (cause.project_id if cause else None),
            module_id=module_id if module_id is not None else (cause.module_id if cause else None),
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            trace_id=trace_id or (cause.trace_id if cause else new_trace_id()),
            correlation_id=correlation_id or (cause.correlation_id if cause else message_id),
            causation_id=cause.event_id if cause else None,
            occurred_at=when,
            source=source,
            payload=payload,
        )

    # -- wire form --------------------------------------------------------------------

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True)

    @classmethod
    def from_json(cls, body: bytes) -> Envelope:
        """Parse a body; raises InvalidEnvelope naming what is wrong."""
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InvalidEnvelope(f"body is not JSON: {error}") from error
        if not isinstance(raw, dict):
            raise InvalidEnvelope("body is not a JSON object")
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            raise InvalidEnvelope(describe_validation_error(error)) from error

    def amqp_properties(self) -> dict[str, Any]:
        """AMQP basic properties mirroring the envelope (aio-pika Message kwargs)."""
        headers: dict[str, Any] = {
            HEADER_TENANT: self.tenant_id,
            HEADER_SCHEMA_VERSION: self.schema_version,
        }
        if self.causation_id:
            headers[HEADER_CAUSATION] = self.causation_id
        return {
            "message_id": self.event_id,
            "type": self.event_type,
            "correlation_id": self.correlation_id,
            "content_type": "application/json",
            "headers": headers,
        }

    def log_context(self) -> dict[str, Any]:
        """The ids every log line about this message carries."""
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "tenantId": self.tenant_id,
            "correlationId": self.correlation_id,
            "traceId": self.trace_id,
        }


def describe_validation_error(error: ValidationError) -> str:
    """A one-line reason naming the fields at fault, for dead-letter headers."""
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)
