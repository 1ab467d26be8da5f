"""A message taken off a service's DLQ, as the row the store keeps.

The failure headers the consumer adds (``shared_kernel.messaging.failures``)
say why and when it failed; a message the broker dead-lettered itself (its
delivery limit) carries ``x-death`` instead. Either way the row records the
whole message (body, headers, properties) so it can be shown and replayed
as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage

from shared_kernel.envelope import HEADER_TENANT
from shared_kernel.messaging.failures import (
    ATTEMPTS,
    EXCEPTION_MESSAGE,
    EXCEPTION_TYPE,
    FAILURE_OUTCOME,
    FIRST_FAILURE,
    LAST_FAILURE,
    ORIGINAL_EXCHANGE,
    ORIGINAL_ROUTING_KEY,
    RETRY_COUNT,
)

X_DEATH = "x-death"
REPLAY_COUNT = "x-replay-count"
# Headers the broker owns. A copy published with them would carry another
# queue's dead-lettering history: RabbitMQ's cycle detection reads ``x-death``
# and could drop the copy on its next trip through a retry queue.
BROKER_HEADERS = frozenset(
    {
        X_DEATH,
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)
# The consumer's failure headers (docs/topology.md, "Dead-letter headers").
FAILURE_HEADERS = frozenset(
    {
        RETRY_COUNT,
        ATTEMPTS,
        FAILURE_OUTCOME,
        EXCEPTION_TYPE,
        EXCEPTION_MESSAGE,
        FIRST_FAILURE,
        LAST_FAILURE,
        ORIGINAL_EXCHANGE,
        ORIGINAL_ROUTING_KEY,
        "x-service",
    }
)

_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)


@dataclass(frozen=True)
class CapturedDeadLetter:
    """A dead letter as it goes into ``dead_letters``."""

    fingerprint: str
    group_key: str
    service: str
    message_id: str | None
    event_type: str | None
    tenant_id: str | None
    correlation_id: str | None
    original_exchange: str | None
    original_routing_key: str | None
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    exception_type: str
    exception_message: str
    reason: str
    failure_outcome: str
    attempts: int
    first_failure_at: datetime
    last_failure_at: datetime


def capture(message: AbstractIncomingMessage, service: str) -> CapturedDeadLetter:
    """The row for one DLQ delivery; never raises on odd input (anything may be dead-lettered)."""
    headers = jsonable(dict(message.headers or {}))
    properties = {
        name: jsonable(getattr(message, name, None))
        for name in _PROPERTY_NAMES
        if getattr(message, name, None) is not None
    }
    envelope = _envelope_fields(message.body)
    deaths = [death for death in headers.get(X_DEATH) or [] if isinstance(death, dict)]
    now = datetime.now(UTC)
    # A replayed copy keeps its old failure headers: if the broker dead-lettered it
    # since (a delivery limit reached), the broker's newer record says what happened.
    # Retry queues' expiries are the consumer's own ladder, not a broker verdict;
    # the broker's times are whole seconds.
    consumer_failure = _when(headers.get(LAST_FAILURE))
    broker_failure = _death_time([d for d in deaths if d.get("reason") != "expired"], newest=True)
    broker_later = broker_failure is not None and (
        consumer_failure is None or broker_failure >= consumer_failure.replace(microsecond=0)
    )

    if (FAILURE_OUTCOME in headers or EXCEPTION_TYPE in headers) and not broker_later:
        failure_outcome = _text(headers.get(FAILURE_OUTCOME)) or "unknown"
        exception_type = _text(headers.get(EXCEPTION_TYPE)) or "Unknown"
        exception_message = _text(headers.get(EXCEPTION_MESSAGE)) or ""
        attempts = _int(headers.get(ATTEMPTS)) or _int(headers.get(RETRY_COUNT)) + 1
    elif deaths:
        # Dead-lettered by the broker (the inbox's delivery limit).
        verdicts = [death for death in deaths if death.get("reason") != "expired"] or deaths
        first = max(verdicts, key=lambda death: _when(death.get("time")) or now)
        reason = _text(headers.get("x-first-death-reason")) or _text(first.get("reason")) or "unknown"
        failure_outcome = reason.replace("_", "-")
        exception_type = f"Broker:{reason}"
        exception_message = (
            f"dead-lettered by the broker from {_text(first.get('queue'))} ({reason}, "
            f"{_int(first.get('count')) or 1} time(s)); the message may crash its consumer"
        )
        attempts = _int(headers.get("x-delivery-count")) or _int(first.get("count")) or 1
    else:
        failure_outcome, exception_type, exception_message, attempts = "unknown", "Unknown", "", 1

    last_failure = (
        (broker_failure if broker_later else consumer_failure) or _death_time(deaths, newest=True) or now
    )
    first_failure = _when(headers.get(FIRST_FAILURE)) or _death_time(deaths, newest=False) or last_failure
    message_id = _text(message.message_id) or envelope.get("eventId")
    event_type = _text(message.type) or envelope.get("eventType")
    reason = mask_reason(exception_message)
    return CapturedDeadLetter(
        fingerprint=fingerprint(message_id, message.body, headers),
        group_key=group_key(service, event_type, failure_outcome, exception_type, reason),
        service=service,
        message_id=message_id,
        event_type=event_type,
        tenant_id=_text(headers.get(HEADER_TENANT)) or envelope.get("tenantId"),
        correlation_id=_text(message.correlation_id) or envelope.get("correlationId"),
        original_exchange=_original(headers, ORIGINAL_EXCHANGE, deaths, "exchange"),
        original_routing_key=_original(headers, ORIGINAL_ROUTING_KEY, deaths, "routing-keys"),
        body=message.body,
        headers=headers,
        properties=properties,
        exception_type=_clean(exception_type),
        exception_message=_clean(exception_message),
        reason=reason,
        failure_outcome=_clean(failure_outcome),
        attempts=max(attempts, 1),
        first_failure_at=first_failure,
        last_failure_at=last_failure,
    )


def fingerprint(message_id: str | None, body: bytes, headers: dict[str, Any]) -> str:
    """Same message, same failure -> same fingerprint.

    A DLQ message delivered twice (the mover crashed between its commit and
    its ack) carries the same headers and is stored once; the same message
    failing again after a replay differs in its last-failure time, its broker
    history (``x-death``) or its replay count, so it is a new dead letter —
    even when the broker, not the consumer, dead-lettered the replayed copy.
    """
    identity = message_id or f"body:{hashlib.sha256(body).hexdigest()}"
    failure = orjson.dumps(
        [headers.get(LAST_FAILURE), headers.get(X_DEATH), headers.get(REPLAY_COUNT)],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(f"{identity}|".encode() + failure).hexdigest()


def group_key(service: str, event_type: str | None, outcome: str, exception_type: str, reason: str) -> str:
    """A short stable key naming one kind of failure (``devops dlq replay --group KEY``)."""
    parts = "\x1f".join((service, event_type or "", outcome, exception_type, reason))
    return hashlib.sha256(parts.encode()).hexdigest()[:12]


_VARIABLE = re.compile(
    r"""'[^']*'|"[^"]*"                              # quoted values
    |\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b  # UUIDs
    |\b[\w.:/-]*\d[\w.:/-]*                          # anything with a digit: ids, numbers, times
    """,
    re.VERBOSE,
)


def mask_reason(message: str) -> str:
    """The exception message with identifiers and values masked, so that one
    failure of many messages is one group (``repository repo-1 …`` and
    ``repository repo-2 …`` alike)."""
    return _clean(_VARIABLE.sub("…", message))[:300]


def jsonable(value: Any) -> Any:
    """AMQP header and property values as JSON (datetimes as ISO 8601, bytes as text)."""
    if isinstance(value, dict):
        return {_clean(str(key)): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        text = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
    else:  # str, Decimal and anything else the AMQP table codec may produce
        text = str(value)
    return _clean(text)


def _clean(text: str) -> str:
    """PostgreSQL text and jsonb hold no NUL character."""
    return text.replace("\x00", "\ufffd")


def _envelope_fields(body: bytes) -> dict[str, str]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(raw, dict):
        return {}
    fields = ("eventId", "eventType", "tenantId", "correlationId")
    return {name: _clean(raw[name]) for name in fields if isinstance(raw.get(name), str) and raw[name]}


def _text(value: Any) -> str:
    return "" if value is None else _clean(str(value))


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _death_time(deaths: list[dict[str, Any]], *, newest: bool) -> datetime | None:
    times = [when for death in deaths if (when := _when(death.get("time"))) is not None]
    if not times:
        return None
    return max(times) if newest else min(times)


def _original(
    headers: dict[str, Any], name: str, deaths: list[dict[str, Any]], death_field: str
) -> str | None:
    if name in headers:
        return _text(headers[name])
    if deaths:
        value = deaths[-1].get(death_field)
        if isinstance(value, list):
            return _text(value[0]) if value else None
        return _text(value) if value is not None else None
    return None
