"""Routing registry: message type and major version -> contract."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from contracts.base import Payload

COMMANDS_EXCHANGE = "devops.commands"
EVENTS_EXCHANGE = "devops.events"
AUDIT_EXCHANGE = "devops.audit"
INGRESS_EXCHANGE = "devops.ingress"

ANY_CONTEXT = "*"

MessageKind = Literal["command", "event"]


def kebab(name: str) -> str:
    """``ProvisionRepository`` -> ``provision-repository``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


@dataclass(frozen=True)
class MessageContract:
    """One message type at one major version."""

    message_type: str
    version: int
    kind: MessageKind
    context: str  # owner of a command, emitter of an event; ANY_CONTEXT: every emitter
    payload: type[Payload]
    description: str = ""

    @property
    def exchange(self) -> str:
        return COMMANDS_EXCHANGE if self.kind == "command" else EVENTS_EXCHANGE

    @property
    def routing_key(self) -> str:
        if self.context == ANY_CONTEXT:
            raise ValueError(f"{self.message_type} is emitted by every context: use routing_key_for")
        return self.routing_key_for(self.context)

    def routing_key_for(self, emitting_context: str) -> str:
        """The routing key when ``emitting_context`` sends this message."""
        context = self.context if self.context != ANY_CONTEXT else emitting_context
        return f"{context}.{kebab(self.message_type)}.v{self.version}"

    @property
    def id_prefix(self) -> str:
        return "cmd" if self.kind == "command" else "evt"


class UnknownMessage(LookupError):
    """No contract for this message type and version."""


class ContractRegistry:
    def __init__(self) -> None:
        self._contracts: dict[tuple[str, int], MessageContract] = {}

    def register(self, contract: MessageContract) -> MessageContract:
        key = (contract.message_type, contract.version)
        if key in self._contracts and self._contracts[key] != contract:
            raise ValueError(f"contract {key} registered twice with different definitions")
        self._contracts[key] = contract
        return contract

    def command(
        self, context: str, payload: type[Payload], *, version: int = 1, description: str = ""
    ) -> MessageContract:
        return self._add("command", context, payload, version, description)

    def event(
        self, context: str, payload: type[Payload], *, version: int = 1, description: str = ""
    ) -> MessageContract:
        return self._add("event", context, payload, version, description)

    def _add(
        self, kind: MessageKind, context: str, payload: type[Payload], version: int, description: str
    ) -> MessageContract:
        return self.register(
            MessageContract(
                message_type=payload.__name__,
                version=version,
                kind=kind,
                context=context,
                payload=payload,
                description=description or (payload.__doc__ or "").strip(),
            )
        )

    def get(self, message_type: str, version: int) -> MessageContract:
        try:
            return self._contracts[(message_type, version)]
        except KeyError:
            raise UnknownMessage(f"no contract for {message_type} v{version}") from None

    def latest(self, message_type: str) -> MessageContract:
        versions = [c for (name, _), c in self._contracts.items() if name == message_type]
        if not versions:
            raise UnknownMessage(f"no contract for {message_type}")
        return max(versions, key=lambda c: c.version)

    def __iter__(self) -> Iterator[MessageContract]:
        return iter(sorted(self._contracts.values(), key=lambda c: (c.context, c.message_type, c.version)))


registry = ContractRegistry()
