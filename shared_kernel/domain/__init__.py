"""Pure domain building blocks shared by every bounded context."""

from shared_kernel.domain.aggregate import AggregateRoot, DomainModel, RecordedEvent
from shared_kernel.domain.errors import (
    DomainError,
    InvalidValue,
    PrerequisiteMissing,
    RuleViolation,
    StaleMessage,
)
from shared_kernel.domain.read_model import ReadModel
from shared_kernel.domain.state_machine import StateMachine

__all__ = [
    "AggregateRoot",
    "DomainError",
    "DomainModel",
    "InvalidValue",
    "PrerequisiteMissing",
    "ReadModel",
    "RecordedEvent",
    "RuleViolation",
    "StaleMessage",
    "StateMachine",
]
