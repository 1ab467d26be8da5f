"""Delayed retry and dead-lettering, done by the consumer so it can add headers.

A failed delivery is republished (body and headers kept) to the retry queue
of the next delay, or, when the delays are used up or the message is
invalid, to the service's DLQ with failure headers; only after the broker
confirms that copy is the original acknowledged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from shared_kernel.logging import get_logger
from shared_kernel.messaging.processor import Disposition, Outcome
from shared_kernel.messaging.publisher import ConfirmedPublisher
from shared_kernel.messaging.topology import ServiceTopology

log = get_logger(__name__)

RETRY_COUNT = "x-retry-count"
FIRST_FAILURE = "x-first-failure-at"
LAST_FAILURE = "x-last-failure-at"
EXCEPTION_TYPE = "x-exception-type"
EXCEPTION_MESSAGE = "x-exception-message"
ATTEMPTS = "x-attempts"
SERVICE = "x-service"
FAILURE_OUTCOME = "x-failure-outcome"
ORIGINAL_EXCHANGE = "x-original-exchange"
ORIGINAL_ROUTING_KEY = "x-original-routing-key"


def delivery_ids(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The envelope's ids as the AMQP properties mirror them, for log lines about a
    delivery whose body may not even parse."""
    return {
        "eventId": message.message_id,
        "eventType": message.type,
        "correlationId": message.correlation_id,
        "tenantId": (message.headers or {}).get("x-tenant-id"),
    }


class FailureRouter:
    def __init__(self, publisher: ConfirmedPublisher, topology: ServiceTopology) -> None:
        self._publisher = publisher
        self._topology = topology

    async def route(self, message: AbstractIncomingMessage, disposition: Disposition) -> str:
        """Send a failed delivery on; the queue it went to."""
        headers = dict(message.headers or {})
        retries = int(str(headers.get(RETRY_COUNT) or 0))
        now = datetime.now(UTC).isoformat()
        headers.setdefault(FIRST_FAILURE, now)
        headers.setdefault(ORIGINAL_EXCHANGE, message.exchange or "")
        headers.setdefault(ORIGINAL_ROUTING_KEY, message.routing_key or "")
        headers.update(
            {
                LAST_FAILURE: now,
                EXCEPTION_TYPE: disposition.error_type,
                EXCEPTION_MESSAGE: disposition.reason[:4000],
                SERVICE: self._topology.service,
            }
        )
        exhausted = retries >= len(self._topology.retry_delays)
        if disposition.outcome is Outcome.RETRY and not exhausted:
            headers[RETRY_COUNT] = retries + 1
            queue = self._topology.retry_queue(retries)
        else:
            headers[ATTEMPTS] = retries + 1
            headers[FAILURE_OUTCOME] = "invalid" if disposition.outcome is Outcome.DEAD else "exhausted"
            queue = self._topology.dlq
        await self._publisher.publish(
            exchange_name="",
            routing_key=queue,
            body=message.body,
            properties=_properties(message, headers),
        )
        log.warning(
            "delivery sent on",
            **delivery_ids(message),
            queue=queue,
            error_type=disposition.error_type,
            reason=disposition.reason,
            retries=retries,
        )
        return queue


def _properties(message: AbstractIncomingMessage, headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "type": message.type,
        "correlation_id": message.correlation_id,
        "content_type": message.content_type or "application/json",
        "headers": headers,
    }
