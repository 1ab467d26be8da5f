"""Domain errors, one family per outcome of the brief's section 4.

The runtime decides what happens to a delivery from the family an error
belongs to, so a context only has to raise the right named error:

- ``RuleViolation`` (rule refused): the refusal is committed as an event and
  an audit record, state is unchanged, the delivery is acknowledged.
- ``StaleMessage`` (stale): acknowledged, nothing changes, logged.
- ``PrerequisiteMissing`` (too early): nothing committed, delayed retry.
- ``InvalidValue``: a value object refused its input; raised while a command
  is mapped, it makes the message invalid (dead-lettered at once).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    @property
    def rule(self) -> str:
        """The rule's name as it appears in events, audit records and logs."""
        return type(self).__name__


class RuleViolation(DomainError):
    """An invariant or policy refused the command. Subclass it per rule."""


class StaleMessage(DomainError):
    """The message reports something the aggregate has already moved past."""


class PrerequisiteMissing(DomainError):
    """Something the message needs has not arrived yet; try again later."""


class InvalidValue(DomainError, ValueError):
    """A value object was given a value it cannot hold."""
