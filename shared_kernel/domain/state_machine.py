"""One table of allowed transitions per status enum."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Generic, TypeVar

S = TypeVar("S", bound=Enum)


class StateMachine(Generic[S]):
    """Allowed transitions of one status enum, declared in one place."""

    def __init__(self, transitions: Mapping[S, frozenset[S] | set[S]]) -> None:
        self._transitions = {state: frozenset(targets) for state, targets in transitions.items()}

    def can(self, current: S, target: S) -> bool:
        return target in self._transitions.get(current, frozenset())

    def is_terminal(self, state: S) -> bool:
        return not self._transitions.get(state)
