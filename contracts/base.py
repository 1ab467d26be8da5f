"""Base of every payload model: camelCase on the wire, strict, immutable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Payload(BaseModel):
    """A schema-versioned message body.

    Unknown fields are refused (``extra="forbid"``) so a payload of the wrong
    schema is caught at the consumer's door instead of half-applied.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @property
    def initiator(self) -> str | None:
        """Who asked: the first ``…_by`` field (``requestedBy``, ``mergedBy``, …), a reviewer or an author."""
        for name in type(self).model_fields:
            if name.endswith("_by") or name in ("reviewer", "author"):
                value = getattr(self, name)
                return str(value) if value is not None else None
        return None


class Event(Payload):
    """An event payload: what a context tells the others happened.

    Unlike a command, an event is read by subscribers the emitter does not
    know, on contract versions older than its own: a field added in a minor
    change (always optional) is ignored by them, not refused. The emitter
    still validates what it sends against the full model.
    """

    model_config = Payload.model_config | ConfigDict(extra="ignore")
