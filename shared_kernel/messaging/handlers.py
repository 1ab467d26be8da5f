"""Handler registry: which handler takes which message type and version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from contracts.base import Payload
from contracts.registry import ContractRegistry, MessageContract, UnknownMessage
from shared_kernel.envelope import Envelope
from shared_kernel.persistence.unit_of_work import UnitOfWork

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Message(Generic[P]):
    """What a handler gets: the validated payload, its envelope, its unit of work."""

    payload: P
    envelope: Envelope
    uow: UnitOfWork
    received_at: datetime


Handler = Callable[[Message[Any]], Awaitable[None]]


class NotHandledHere(UnknownMessage):
    """A known message type that this service does not consume."""


class HandlerRegistry:
    def __init__(self, contracts: ContractRegistry) -> None:
        self._contracts = contracts
        self._handlers: dict[tuple[str, int], tuple[MessageContract, Handler]] = {}

    def add(
        self, payload_type: type[P], handler: Callable[[Message[P]], Awaitable[None]], *, version: int = 1
    ) -> None:
        contract = self._contracts.get(payload_type.__name__, version)
        if contract.payload is not payload_type:
            raise ValueError(f"{payload_type.__name__} v{version} is not the registered payload model")
        self._handlers[(contract.message_type, version)] = (contract, handler)

    def lookup(self, message_type: str, version: int) -> tuple[MessageContract, Handler]:
        try:
            return self._handlers[(message_type, version)]
        except KeyError:
            self._contracts.get(message_type, version)  # raises UnknownMessage if unknown at all
            raise NotHandledHere(f"{message_type} v{version} is not handled by this service") from None

    def subscriptions(self) -> list[tuple[str, str]]:
        """(exchange, routing key) for every handled message: the inbox bindings."""
        return [(c.exchange, c.routing_key) for c, _ in self._handlers.values()]
