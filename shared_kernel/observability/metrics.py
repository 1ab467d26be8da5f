"""Prometheus metrics of one service runtime, in a registry of its own.

The per-message path only adds to plain numbers (``MessageTypeCounts``): the
runtime is one event loop, so nothing needs a lock and nothing takes one, and
nothing touches the database. The collector turns those numbers, the relay's
and the processor's own counters and the outbox and inbox figures read from
the database into metric families when ``/metrics`` is scraped.

Each runtime has its own ``CollectorRegistry``, not prometheus_client's global
one, so several runtimes can share a process (the tests run more than one).
Every family is named ``devops_…`` and carries a ``service`` label.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from math import nan
from typing import Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from shared_kernel.logging import get_logger
from shared_kernel.messaging.processor import Disposition, Outcome
from shared_kernel.observability.backlog import Backlog, BacklogProbe

log = get_logger(__name__)

# Handler latency, from validating the envelope to the commit: a few ms when all is
# well, seconds when the database waits on locks or in-place retries back off.
HANDLER_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# As prometheus_client writes them (str of a float: "0.001", "1.0").
_BUCKET_LABELS = (*(str(float(bound)) for bound in HANDLER_SECONDS_BUCKETS), "+Inf")

# The label of a delivery whose type is unknown here (undecodable, or not handled).
UNKNOWN_TYPE = "unknown"
SUCCEEDED = (Outcome.DONE, Outcome.DUPLICATE, Outcome.STALE, Outcome.REFUSED)
# As in the dead letter's x-failure-outcome header.
INVALID = "invalid"
EXHAUSTED = "exhausted"


class MessageTypeCounts:
    """What became of the deliveries of one message type (per-message path: keep it lean)."""

    __slots__ = (
        "consumed",
        "dead_lettered",
        "duration_buckets",
        "duration_sum",
        "retried",
        "returned",
        "succeeded",
    )

    def __init__(self) -> None:
        self.consumed = 0
        self.succeeded = dict.fromkeys(SUCCEEDED, 0)
        self.retried = 0
        self.dead_lettered = {INVALID: 0, EXHAUSTED: 0}
        self.returned = 0
        self.duration_buckets = [0] * len(_BUCKET_LABELS)  # per bucket, not cumulative; +Inf last
        self.duration_sum = 0.0

    def processed(self, seconds: float) -> None:
        """The processor decided one delivery, in ``seconds``."""
        self.consumed += 1
        self.duration_sum += seconds
        self.duration_buckets[bisect_left(HANDLER_SECONDS_BUCKETS, seconds)] += 1

    def settled(self, disposition: Disposition) -> None:
        """A delivery that needs no failure routing: it is acknowledged as it is."""
        self.succeeded[disposition.outcome] += 1

    def routed(self, disposition: Disposition, *, dead_lettered: bool) -> None:
        """A failed delivery the broker confirmed on a retry queue or the DLQ."""
        if not dead_lettered:
            self.retried += 1
        elif disposition.outcome is Outcome.DEAD:
            self.dead_lettered[INVALID] += 1
        else:
            self.dead_lettered[EXHAUSTED] += 1


class MessageMetrics:
    """Counts per message type, and the deliveries being processed right now."""

    def __init__(self, message_types: Iterable[str]) -> None:
        # Known types start at zero, so rates and alerts work before the first message.
        self._by_type = {message_type: MessageTypeCounts() for message_type in ("", *message_types)}
        self.in_flight = 0

    def of(self, message_type: str) -> MessageTypeCounts:
        """Counts of ``Disposition.message_type``: a handled type, or empty for unknown.

        The processor names only types this service handles, so the label set stays bounded.
        """
        counts = self._by_type.get(message_type)
        if counts is None:
            counts = self._by_type[message_type] = MessageTypeCounts()
        return counts

    def items(self) -> Iterator[tuple[str, MessageTypeCounts]]:
        """(label, counts) pairs, the unknown type labelled ``unknown``."""
        for message_type, counts in self._by_type.items():
            yield message_type or UNKNOWN_TYPE, counts


class InPlaceRetries(Protocol):
    """The processor's count of in-place retries, by message type."""

    @property
    def in_place_retries(self) -> Mapping[str, int]: ...


class RelayCounters(Protocol):
    """The outbox relay's running totals."""

    @property
    def published(self) -> int: ...

    @property
    def batches(self) -> int: ...

    @property
    def failures(self) -> int: ...


class DeadLetterCounters(Protocol):
    """The dead-letter mover's running totals."""

    @property
    def stored(self) -> int: ...

    @property
    def duplicates(self) -> int: ...


class RuntimeMetrics:
    """The registry of one runtime and the counters it exposes."""

    def __init__(
        self,
        *,
        service: str,
        message_types: Iterable[str],
        processor: InPlaceRetries,
        relay: RelayCounters,
        dead_letters: DeadLetterCounters,
        backlog: BacklogProbe,
    ) -> None:
        self.messages = MessageMetrics(message_types)
        self._collector = _RuntimeCollector(
            service,
            messages=self.messages,
            processor=processor,
            relay=relay,
            dead_letters=dead_letters,
            backlog=backlog,
        )
        self.registry = CollectorRegistry()
        self.registry.register(self._collector)
        # The standard process_* and python_* families: CPU, memory, file descriptors, GC.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    async def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """Read the database figures, then render the registry: (body, content type).

        The Prometheus text format unless the scraper asks for OpenMetrics.
        """
        await self._collector.refresh()
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _RuntimeCollector:
    def __init__(
        self,
        service: str,
        *,
        messages: MessageMetrics,
        processor: InPlaceRetries,
        relay: RelayCounters,
        dead_letters: DeadLetterCounters,
        backlog: BacklogProbe,
    ) -> None:
        self._service = service
        self._messages = messages
        self._processor = processor
        self._relay = relay
        self._dead_letters = dead_letters
        self._backlog_probe = backlog
        self._backlog: Backlog | None = None
        self._backlog_seconds = 0.0

    async def refresh(self) -> None:
        """Read the outbox and inbox figures (cheap queries, bounded by the probe's timeout)."""
        started = time.perf_counter()
        try:
            self._backlog = await self._backlog_probe.read()
        except Exception as error:
            self._backlog = None
            log.warning("could not read the outbox and inbox figures", error=repr(error))
        self._backlog_seconds = time.perf_counter() - started

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        yield from self._message_families()
        yield from self._relay_families()
        yield from self._dead_letter_families()
        yield from self._backlog_families()

    # Every family carries the service label first.
    def _counter(self, name: str, documentation: str, *labels: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, documentation, labels=["service", *labels])

    def _gauge(self, name: str, documentation: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, labels=["service"])

    def _message_families(self) -> Iterator[Metric]:
        service = self._service
        consumed = self._counter(
            "devops_messages_consumed",
            "Deliveries taken from the inbox queue and decided by the processor.",
            "message_type",
        )
        succeeded = self._counter(
            "devops_messages_succeeded",
            "Deliveries settled without a failure: done, duplicate, stale or refused (a rule said no).",
            "message_type",
            "outcome",
        )
        retried = self._counter(
            "devops_messages_retried",
            "Deliveries sent to a delayed-retry queue (too early, or a fault outlived in-place retries).",
            "message_type",
        )
        dead_lettered = self._counter(
            "devops_messages_dead_lettered",
            "Deliveries sent to the dead-letter queue: invalid at once, or exhausted after the last retry.",
            "message_type",
            "reason",
        )
        returned = self._counter(
            "devops_messages_returned",
            "Failed deliveries that could not be sent on (no confirm) and went back to the inbox queue.",
            "message_type",
        )
        transient = self._counter(
            "devops_messages_retried_in_place",
            "In-place retries after a transient fault (connection lost, serialization conflict).",
            "message_type",
        )
        latency = HistogramMetricFamily(
            "devops_handler_duration_seconds",
            "Time to decide one delivery: validation, the transaction and its commit.",
            labels=["service", "message_type"],
        )
        in_place = self._processor.in_place_retries
        for message_type, counts in self._messages.items():
            labels = [service, message_type]
            consumed.add_metric(labels, counts.consumed)
            for outcome, value in counts.succeeded.items():
                succeeded.add_metric([*labels, str(outcome)], value)
            retried.add_metric(labels, counts.retried)
            for reason, value in counts.dead_lettered.items():
                dead_lettered.add_metric([*labels, reason], value)
            returned.add_metric(labels, counts.returned)
            if message_type != UNKNOWN_TYPE:
                transient.add_metric(labels, in_place.get(message_type, 0))
            cumulative, buckets = 0, []
            for label, count in zip(_BUCKET_LABELS, counts.duration_buckets, strict=True):
                cumulative += count
                buckets.append((label, float(cumulative)))
            latency.add_metric(labels, buckets, counts.duration_sum)
        in_flight = self._gauge("devops_messages_in_flight", "Deliveries being processed now.")
        in_flight.add_metric([service], self._messages.in_flight)
        yield from (consumed, succeeded, retried, dead_lettered, returned, transient, latency, in_flight)

    def _relay_families(self) -> Iterator[Metric]:
        relay, labels = self._relay, [self._service]
        published = self._counter(
            "devops_relay_published",
            "Outbox messages the relay published, confirmed by the broker and deleted.",
        )
        published.add_metric(labels, relay.published)
        batches = self._counter("devops_relay_batches", "Outbox batches published.")
        batches.add_metric(labels, relay.batches)
        failures = self._counter(
            "devops_relay_failures",
            "Relay passes or batches that failed; their rows stay in the outbox for a later pass.",
        )
        failures.add_metric(labels, relay.failures)
        yield from (published, batches, failures)

    def _dead_letter_families(self) -> Iterator[Metric]:
        labels = [self._service]
        stored = self._counter(
            "devops_dead_letters_stored",
            "Dead letters moved from the DLQ into the store: the consumer's and the broker's "
            "(delivery limit) alike.",
        )
        stored.add_metric(labels, self._dead_letters.stored)
        duplicates = self._counter(
            "devops_dead_letters_duplicates", "DLQ deliveries already in the store (acked, not stored again)."
        )
        duplicates.add_metric(labels, self._dead_letters.duplicates)
        yield from (stored, duplicates)

    def _backlog_families(self) -> Iterator[Metric]:
        backlog, labels = self._backlog, [self._service]
        values: tuple[float, ...] = (
            (nan, nan, nan, nan)
            if backlog is None
            else (
                backlog.outbox_due,
                backlog.outbox_scheduled,
                backlog.outbox_oldest_due_age,
                backlog.inbox_rows,
            )
        )
        figures = (
            ("devops_outbox_backlog_rows", "Outbox rows due and not yet published."),
            ("devops_outbox_scheduled_rows", "Outbox rows due later: scheduled messages."),
            (
                "devops_outbox_oldest_due_age_seconds",
                "How long the oldest due outbox row has waited since it fell due; 0 when none is due.",
            ),
            ("devops_inbox_rows", "Rows in the inbox table: PostgreSQL's estimate, not an exact count."),
        )
        for (name, documentation), value in zip(figures, values, strict=True):
            family = self._gauge(name, f"{documentation} Read at scrape time.")
            family.add_metric(labels, value)
            yield family
        success = self._gauge(
            "devops_database_scrape_success",
            "1 if this scrape read the outbox and inbox figures, 0 if not (they are NaN then).",
        )
        success.add_metric(labels, 0.0 if backlog is None else 1.0)
        duration = self._gauge(
            "devops_database_scrape_duration_seconds",
            "How long this scrape took to read the outbox and inbox figures.",
        )
        duration.add_metric(labels, self._backlog_seconds)
        yield from (success, duration)
