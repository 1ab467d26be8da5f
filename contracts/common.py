"""Events every context emits through the shared runtime."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.base import Event
from contracts.registry import ANY_CONTEXT, registry


class CommandRejected(Event):
    """A command was refused by a domain rule; no state changed."""

    command_type: str
    command_id: str
    rule: str
    reason: str
    aggregate_type: str | None = None
    aggregate_id: str | None = None


registry.event(ANY_CONTEXT, CommandRejected)


class AuditRecord(Event):
    """A governance audit record: who did what, when, why, with what outcome.

    Published on ``devops.audit`` with routing key ``<context>.<action-kebab>``;
    the envelope's correlationId ties it to the conversation.
    """

    action: str
    actor: str
    outcome: str
    reason: str = ""
    subject_type: str
    subject_id: str
    recorded_at: datetime
    details: dict[str, Any] = {}
