"""One message, one transaction: decide a delivery's outcome.

``MessageProcessor.process`` takes a body and returns a ``Disposition``; the
subscriber acts on it (ack, delayed retry, dead letter). Keeping the decision
apart from the broker keeps the outcome table of the architecture brief in
one readable place:

| outcome    | what happens here                                                |
|------------|------------------------------------------------------------------|
| done       | inbox + state + outbox committed                                 |
| duplicate  | inbox already has the eventId: nothing                           |
| stale      | StaleMessage: inbox row committed (outcome stale), no state      |
| refused    | RuleViolation: rollback; inbox + CommandRejected + audit committed |
| retry      | PrerequisiteMissing, or a fault that outlived in-place retries    |
| dead       | undecodable, missing fields, unknown type, wrong schema           |
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from contracts.common import CommandRejected
from contracts.registry import ContractRegistry, UnknownMessage
from shared_kernel.domain import (
    AggregateRoot,
    InvalidValue,
    PrerequisiteMissing,
    RuleViolation,
    StaleMessage,
)
from shared_kernel.envelope import Envelope, InvalidEnvelope, describe_validation_error
from shared_kernel.logging import bound, get_logger
from shared_kernel.messaging.faults import is_transient
from shared_kernel.messaging.handlers import Handler, HandlerRegistry, Message
from shared_kernel.messaging.ingress import IngressAdapter
from shared_kernel.persistence.database import Database
from shared_kernel.persistence.inbox_outbox import record_in_inbox, set_inbox_outcome
from shared_kernel.persistence.store import AggregateMapping
from shared_kernel.persistence.unit_of_work import UnitOfWork

log = get_logger(__name__)


class Outcome(StrEnum):
    DONE = "done"
    DUPLICATE = "duplicate"
    STALE = "stale"
    REFUSED = "refused"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class Disposition:
    outcome: Outcome
    error_type: str = ""
    reason: str = ""
    # The eventType, once known to be one this service handles; empty for a body
    # that is undecodable or of a type it does not handle. Metric labels come
    # from it, so a sender cannot make their number grow without bound.
    message_type: str = ""

    @property
    def publishes(self) -> bool:
        """Whether the outbox may hold something new to publish."""
        return self.outcome in (Outcome.DONE, Outcome.REFUSED)


def _dead(error_type: str, reason: str, message_type: str = "") -> Disposition:
    return Disposition(Outcome.DEAD, error_type, reason, message_type)


@dataclass(frozen=True)
class ProcessorConfig:
    context: str
    source: str
    transient_attempts: int
    crash_at: str = ""


class MessageProcessor:
    def __init__(
        self,
        database: Database,
        handlers: HandlerRegistry,
        contracts: ContractRegistry,
        mappings: Mapping[type[AggregateRoot], AggregateMapping],
        config: ProcessorConfig,
        *,
        ingress: Sequence[IngressAdapter] = (),
    ) -> None:
        self._database = database
        self._ingress = tuple(ingress)
        self._handlers = handlers
        self._contracts = contracts
        self._mappings = mappings
        self._config = config
        # In-place retries after a transient fault, by message type (read by the metrics).
        self.in_place_retries: Counter[str] = Counter()

    async def process(self, body: bytes) -> Disposition:
        try:
            envelope = self._decode(body)
        except InvalidEnvelope as error:  # or an ingress adapter's InvalidIngressMessage
            log.warning("invalid envelope", reason=str(error))
            return _dead(type(error).__name__, str(error))
        with bound(**envelope.log_context()):
            return await self._process(envelope)

    def _decode(self, body: bytes) -> Envelope:
        """The canonical envelope as sent, or from an ingress adapter that knows the body's shape.

        Canonical first: it is nearly every message, and the per-message path
        stays as it is; only a body that is not an envelope is offered to the
        adapters, and if none knows it the envelope's own error stands.
        """
        try:
            return Envelope.from_json(body)
        except InvalidEnvelope:
            for adapter in self._ingress:
                envelope = adapter.decode(body)
                if envelope is not None:
                    return envelope
            raise

    async def _process(self, envelope: Envelope) -> Disposition:  # noqa: PLR0911 - one return per outcome
        try:
            contract, handler = self._handlers.lookup(envelope.event_type, envelope.schema_version)
        except UnknownMessage as error:
            log.warning("message not handled", reason=str(error))
            return _dead(type(error).__name__, str(error))
        message_type = envelope.event_type
        try:
            payload = contract.payload.model_validate(envelope.payload)
        except ValidationError as error:
            reason = f"{message_type} v{envelope.schema_version}: {describe_validation_error(error)}"
            log.warning("invalid payload", reason=reason)
            return _dead("InvalidPayload", reason, message_type)
        try:
            return await self._apply_with_retries(envelope, payload, handler)
        except RuleViolation as rule:
            try:
                return await self._refuse(envelope, rule, actor=payload.initiator)
            except Exception as error:
                # Nothing committed: the whole message is tried again later.
                log.warning("could not record the refusal; delayed retry", rule=rule.rule, exc_info=True)
                return Disposition(Outcome.RETRY, type(error).__name__, str(error), envelope.event_type)
        except (InvalidValue, ValidationError) as invalid:
            # A value the contract let through but the domain's value objects refuse.
            reason = (
                describe_validation_error(invalid) if isinstance(invalid, ValidationError) else str(invalid)
            )
            log.warning("invalid message content", reason=reason)
            return _dead("InvalidPayload", f"{message_type}: {reason}", message_type)
        except PrerequisiteMissing as early:
            log.info("too early; delayed retry", rule=early.rule, reason=str(early))
            return Disposition(Outcome.RETRY, early.rule, str(early), message_type)
        except Exception as error:
            log.warning("processing failed; delayed retry", exc_info=True)
            return Disposition(Outcome.RETRY, type(error).__name__, str(error), message_type)

    async def _apply_with_retries(self, envelope: Envelope, payload: object, handler: Handler) -> Disposition:
        """Apply; on a transient fault, retry in place (tenacity) before giving up.

        The first attempt runs outside tenacity: most messages need no retry,
        and the per-message path stays lean.
        """
        try:
            return await self._apply(envelope, payload, handler)
        except Exception as error:
            if not is_transient(error) or self._config.transient_attempts < 2:
                raise
            log.info("transient fault; retrying in place", error=repr(error))
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._config.transient_attempts - 1),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception(is_transient),
            reraise=True,
        ):
            with attempt:
                self.in_place_retries[envelope.event_type] += 1
                return await self._apply(envelope, payload, handler)
        raise AssertionError("unreachable: AsyncRetrying returns or raises")

    async def _apply(self, envelope: Envelope, payload: object, handler: Handler) -> Disposition:
        async with self._database.transaction() as connection:
            if not await record_in_inbox(connection, envelope, Outcome.DONE):
                log.info("duplicate delivery ignored")
                return Disposition(Outcome.DUPLICATE, message_type=envelope.event_type)
            uow = self._unit_of_work(connection, envelope)
            try:
                await handler(Message(payload, envelope, uow, datetime.now(UTC)))
            except StaleMessage as stale:
                await set_inbox_outcome(connection, envelope, Outcome.STALE)
                log.info("stale message ignored", rule=stale.rule, reason=str(stale))
                return Disposition(Outcome.STALE, stale.rule, str(stale), envelope.event_type)
            events = await uow.flush()
            self._crash_if("before_commit")
        self._crash_if("after_commit")
        log.debug("message processed", events=events)
        return Disposition(Outcome.DONE, message_type=envelope.event_type)

    async def _refuse(self, envelope: Envelope, rule: RuleViolation, *, actor: str | None) -> Disposition:
        """Commit the refusal (inbox, CommandRejected, audit) and nothing else."""
        async with self._database.transaction() as connection:
            if not await record_in_inbox(connection, envelope, f"refused:{rule.rule}"):
                return Disposition(Outcome.DUPLICATE, message_type=envelope.event_type)
            uow = self._unit_of_work(connection, envelope)
            if envelope.is_command:
                uow.send(
                    CommandRejected(
                        command_type=envelope.event_type,
                        command_id=envelope.event_id,
                        rule=rule.rule,
                        reason=str(rule),
                    )
                )
            uow.audit(
                "rule-refused",
                actor=actor or envelope.source,
                outcome="refused",
                reason=str(rule),
                rule=rule.rule,
            )
            await uow.flush()
        log.info("rule refused", rule=rule.rule, reason=str(rule))
        return Disposition(Outcome.REFUSED, rule.rule, str(rule), envelope.event_type)

    def _unit_of_work(self, connection: asyncpg.Connection, envelope: Envelope) -> UnitOfWork:
        return UnitOfWork(
            connection,
            cause=envelope,
            mappings=self._mappings,
            contracts=self._contracts,
            context=self._config.context,
            source=self._config.source,
        )

    def _crash_if(self, point: str) -> None:
        """Fault injection for the crash tests (setting ``crash_at``)."""
        if self._config.crash_at == point:
            log.warning("crash injected", point=point)
            os.kill(os.getpid(), signal.SIGKILL)
