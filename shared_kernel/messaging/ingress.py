"""Ingress: facts that arrive in a foreign shape (a CI provider's service hooks).

An upstream system that cannot speak the canonical envelope posts its own
payloads; the gateway that receives them publishes the body unchanged on
``devops.ingress`` with a routing key naming the source and event (for
example ``azure-devops.build.complete``). A service that takes such facts
supplies an ``IngressAdapter``: its inbox is bound to the adapter's routing
keys, and the processor asks the adapter to turn a body that is not a
canonical envelope into one before anything else happens. The body is never rewritten, so a
delayed retry or a dead letter still holds what the provider sent, and the
adapter derives the eventId from the provider's own notification id, so a
redelivered hook is recognised by the inbox as a duplicate.
"""

from __future__ import annotations

from typing import Protocol

from shared_kernel.envelope import Envelope, InvalidEnvelope


class InvalidIngressMessage(InvalidEnvelope):
    """The body is in the adapter's shape but cannot be turned into a canonical message."""


class IngressAdapter(Protocol):
    """Normalises one upstream system's payloads into canonical envelopes."""

    @property
    def routing_keys(self) -> tuple[str, ...]:
        """Routing keys on ``devops.ingress`` this adapter takes (bound to the inbox)."""
        ...

    def decode(self, body: bytes) -> Envelope | None:
        """The canonical envelope for ``body``; None when ``body`` is not in this adapter's shape.

        Raises ``InvalidIngressMessage`` (naming the field) for a body in the
        adapter's shape that it cannot normalise; the message is dead-lettered.
        """
        ...
