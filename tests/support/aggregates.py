"""Checks every context's domain tests make of an aggregate: its events fit their contracts,
and a refused call leaves it exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import contracts  # noqa: F401  (registers every context's contracts)
from contracts import registry
from shared_kernel.domain import AggregateRoot, DomainError


def validated(aggregate: AggregateRoot) -> list[dict[str, Any]]:
    """The pending events' payloads, each checked against its contract (nothing missing, nothing extra)."""
    payloads = []
    for event in aggregate.pull_events():
        contract = registry.get(event.event_type, 1)
        assert contract.payload.model_validate(event.payload).wire() == event.payload
        payloads.append({"type": event.event_type, **event.payload})
    return payloads


def refusal(aggregate: AggregateRoot, error: type[DomainError], action: Callable[[], object]) -> DomainError:
    """The ``error`` that ``action`` raises; ``aggregate`` must be left exactly as it was.

    The aggregate's pending events are handed over first, so "unchanged" also
    means that the refused call recorded no event.
    """
    aggregate.pull_events()
    before = aggregate.wire()
    with pytest.raises(error) as raised:
        action()
    assert aggregate.wire() == before
    assert not aggregate.has_pending_events
    return raised.value
