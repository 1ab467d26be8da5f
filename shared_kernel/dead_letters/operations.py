"""What operators do with a service's dead letters (used by ``devops dlq``).

Plain async functions on an ``Operator`` (who acts, on which service, with
which connections). Reading is queries on the store. Every change is logged
and published as an ``AuditRecord`` on ``devops.audit`` (routing key
``<context>.dead-letter-<action>``), one per dead letter, in the dead
letter's tenant and conversation, confirmed before the change commits:

- replay: each selected dead letter is taken in its own transaction (``FOR
  UPDATE SKIP LOCKED``, so two replays never take the same row), its copy
  published to ``<service>.inbox`` through the default exchange and
  confirmed, then the row is marked replayed and committed. A replay killed
  midway leaves every unconfirmed row dead; a copy confirmed but not yet
  marked is sent again by the next replay and ignored by the service's inbox
  (the eventId is kept).
- edit and retry: a corrected copy with a new eventId (derived from the edit,
  so retrying an interrupted edit sends the same id) caused by the original;
  the original is marked resolved.
- purge: the selected rows move to ``dead_letters_archive`` (who, when, why)
  in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError

import contracts
from contracts.common import AuditRecord
from contracts.registry import AUDIT_EXCHANGE, UnknownMessage, kebab
from shared_kernel.dead_letters import store
from shared_kernel.dead_letters.capture import BROKER_HEADERS, FAILURE_HEADERS, REPLAY_COUNT
from shared_kernel.dead_letters.store import DEAD, DeadLetter, Group, Selection
from shared_kernel.envelope import Envelope, InvalidEnvelope, describe_validation_error
from shared_kernel.ids import deterministic_id
from shared_kernel.logging import get_logger
from shared_kernel.messaging.failures import RETRY_COUNT
from shared_kernel.messaging.publisher import ConfirmedPublisher
from shared_kernel.persistence.database import Database
from shared_kernel.settings import ServiceSettings

log = get_logger(__name__)

OPERATOR_APP_ID = "devops.operator"
# The envelope needs a tenant; an undecodable dead letter may not name one.
UNKNOWN_TENANT = "unknown-tenant"
_AUDIT_CHUNK = 100


class DeadLetterError(Exception):
    """An operation refused, with the reason for the operator."""


class DeadLetterNotFound(DeadLetterError):
    """No dead letter (or archived one) with that id in this service."""


class EditRefused(DeadLetterError):
    """The dead letter cannot be edited now, or the edit would not make a valid message."""


class ReplayInterrupted(DeadLetterError):
    """A replay stopped on an error; ``replayed`` were confirmed and marked before it."""

    def __init__(self, replayed: list[int], error: BaseException) -> None:
        super().__init__(f"replay stopped after {len(replayed)} dead letter(s): {error!r}")
        self.replayed = replayed
        self.error = error


@dataclass(frozen=True)
class Operator:
    """Who acts on which service's dead letters, through which connections."""

    service: str
    context: str
    actor: str
    database: Database
    publisher: ConfirmedPublisher | None = None

    @property
    def inbox(self) -> str:
        return f"{self.service}.inbox"

    def require_publisher(self) -> ConfirmedPublisher:
        if self.publisher is None:
            raise RuntimeError("this operator session is read-only (no publisher)")
        return self.publisher


@asynccontextmanager
async def operator_session(
    settings: ServiceSettings, *, actor: str, publishing: bool = True
) -> AsyncIterator[Operator]:
    """Connections for one operator on one service: the operator role's pool and, to change
    anything, a confirming publisher."""
    database = Database(
        settings.operator_database_url, size=2, application_name=f"{settings.service_name}-operator"
    )
    await database.open()
    publisher: ConfirmedPublisher | None = None
    try:
        if publishing:
            publisher = ConfirmedPublisher(settings.amqp_url, app_id=OPERATOR_APP_ID)
            await publisher.connect()
        yield Operator(settings.service_name, settings.context, actor, database, publisher)
    finally:
        if publisher is not None:
            await publisher.close()
        await database.close()


# -- reading ---------------------------------------------------------------------------


async def list_groups(operator: Operator, statuses: tuple[str, ...] = (DEAD,)) -> list[Group]:
    async with operator.database.transaction() as connection:
        found = await store.groups(connection, statuses)
    log.info("dead letters listed", actor=operator.actor, groups=len(found), statuses=statuses)
    return found


async def list_letters(operator: Operator, selection: Selection, limit: int = 100) -> list[DeadLetter]:
    async with operator.database.transaction() as connection:
        found = await store.letters(connection, selection, limit)
    log.info("dead letters listed", actor=operator.actor, selection=str(selection), letters=len(found))
    return found


async def get(operator: Operator, letter_id: int) -> DeadLetter:
    async with operator.database.transaction() as connection:
        letter = await store.get(connection, letter_id)
    if letter is None:
        raise DeadLetterNotFound(f"no dead letter {letter_id} in {operator.service}")
    log.info("dead letter shown", actor=operator.actor, dead_letter_id=letter_id)
    return letter


async def count_selection(operator: Operator, selection: Selection) -> tuple[Selection, int]:
    """How many rows the selection takes now, and the selection bounded to them (``up_to``),
    so that what an operator confirmed is what a purge takes."""
    async with operator.database.transaction() as connection:
        found, highest = await store.count(connection, selection)
    bounded = Selection(selection.id, selection.group, selection.statuses, highest or 0)
    return bounded, found


async def list_archive(operator: Operator, limit: int = 100) -> list[DeadLetter]:
    async with operator.database.transaction() as connection:
        found = await store.list_archived(connection, limit)
    log.info("archived dead letters listed", actor=operator.actor, letters=len(found))
    return found


async def get_archived(operator: Operator, letter_id: int) -> DeadLetter:
    async with operator.database.transaction() as connection:
        letter = await store.get_archived(connection, letter_id)
    if letter is None:
        raise DeadLetterNotFound(f"no archived dead letter {letter_id} in {operator.service}")
    log.info("archived dead letter shown", actor=operator.actor, dead_letter_id=letter_id)
    return letter


def describe(letter: DeadLetter) -> dict[str, Any]:
    """Everything about one dead letter, for display: the store's record, the envelope,
    the payload, the failure headers and the broker's delivery history (``x-death``)."""
    try:
        decoded = orjson.loads(letter.body)
    except orjson.JSONDecodeError:
        decoded = None
    envelope = dict(decoded) if isinstance(decoded, dict) else None
    payload = envelope.pop("payload", None) if envelope is not None else None
    headers = letter.headers
    return {
        "deadLetter": {
            "id": letter.id,
            "service": letter.service,
            "status": letter.status,
            "group": letter.group_key,
            "failureOutcome": letter.failure_outcome,
            "exceptionType": letter.exception_type,
            "exceptionMessage": letter.exception_message,
            "attempts": letter.attempts,
            "firstFailureAt": letter.first_failure_at.isoformat(),
            "lastFailureAt": letter.last_failure_at.isoformat(),
            "receivedAt": letter.received_at.isoformat(),
            "originalExchange": letter.original_exchange,
            "originalRoutingKey": letter.original_routing_key,
            "replayCount": letter.replay_count,
            "lastReplayedAt": _iso(letter.last_replayed_at),
            "lastReplayedBy": letter.last_replayed_by,
            "resolvedAt": _iso(letter.resolved_at),
            "resolvedBy": letter.resolved_by,
            "resolution": letter.resolution,
            **(
                {
                    "archivedAt": _iso(letter.archived_at),
                    "archivedBy": letter.archived_by,
                    "archiveReason": letter.archive_reason,
                }
                if letter.archived_at is not None
                else {}
            ),
        },
        "envelope": envelope,
        "payload": payload,
        "body": None if envelope is not None else letter.body.decode("utf-8", errors="replace"),
        "failureHeaders": {k: v for k, v in headers.items() if k in FAILURE_HEADERS or k == REPLAY_COUNT},
        "deliveryHistory": headers.get("x-death") or [],
        "otherHeaders": {
            k: v
            for k, v in headers.items()
            if k not in FAILURE_HEADERS and k not in BROKER_HEADERS and k != REPLAY_COUNT
        },
        "properties": letter.properties,
    }


# -- replay ----------------------------------------------------------------------------

AfterConfirm = Callable[[DeadLetter, int], Awaitable[None]]


async def replay(
    operator: Operator,
    selection: Selection,
    *,
    reason: str = "",
    after_confirm: AfterConfirm | None = None,
) -> list[int]:
    """Replay the selected dead letters to the service's inbox, in id order; the ids replayed.

    Only rows present when the replay starts are taken (a replayed message
    that fails again comes back as a new dead letter, for a later replay).
    ``after_confirm(letter, n)`` runs after the n-th copy is confirmed and
    before its row commits (fault injection for the crash tests).
    """
    publisher = operator.require_publisher()
    if selection.up_to is None:
        selection, _ = await count_selection(operator, selection)
    replayed: list[int] = []
    after = 0
    log.info("replay started", actor=operator.actor, selection=selection.describe())
    try:
        while True:
            async with operator.database.transaction() as connection:
                letter = await store.claim_next(connection, selection, after)
                if letter is None:
                    break
                after = letter.id
                properties = _replay_properties(letter)
                await publisher.publish(
                    exchange_name="", routing_key=operator.inbox, body=letter.body, properties=properties
                )
                if after_confirm is not None:
                    await after_confirm(letter, len(replayed) + 1)
                await _audit(
                    operator,
                    letter,
                    "dead-letter-replayed",
                    outcome="replayed",
                    reason=reason,
                    replayCount=properties["headers"][REPLAY_COUNT],
                )
                await store.mark_replayed(connection, letter.id, operator.actor)
            replayed.append(letter.id)
            log.info(
                "dead letter replayed",
                actor=operator.actor,
                dead_letter_id=letter.id,
                eventId=letter.message_id,
                replay_count=properties["headers"][REPLAY_COUNT],
            )
    except Exception as error:
        log.exception("replay interrupted", actor=operator.actor, replayed=len(replayed))
        raise ReplayInterrupted(replayed, error) from error
    log.info("replay finished", actor=operator.actor, selection=selection.describe(), replayed=len(replayed))
    return replayed


def _replay_properties(letter: DeadLetter) -> dict[str, Any]:
    """The original properties and headers, ``x-replay-count`` incremented.

    The failure headers stay, for history; the broker's own (``x-death`` and
    kin) go, since RabbitMQ would read them for dead-letter cycle detection,
    and so does ``x-retry-count``: a replayed message gets the whole retry
    ladder again.
    """
    previous = _int(letter.headers.get(REPLAY_COUNT))
    headers = {
        key: value
        for key, value in letter.headers.items()
        if key not in BROKER_HEADERS and key != RETRY_COUNT
    }
    headers[REPLAY_COUNT] = previous + letter.replay_count + 1
    return {**_message_properties(letter.properties), "headers": headers}


# -- edit and retry --------------------------------------------------------------------


@dataclass(frozen=True)
class EditResult:
    dead_letter_id: int
    original_event_id: str | None
    new_event_id: str
    envelope: Envelope


@dataclass(frozen=True)
class Edit:
    """Changes to one dead letter: ``set`` dotted paths in the envelope (``payload.name``) to
    JSON values, ``unset`` paths, ``headers`` to set."""

    set: Mapping[str, Any] = field(default_factory=dict)
    unset: Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def canonical(self) -> bytes:
        return orjson.dumps(
            {"set": dict(self.set), "unset": sorted(self.unset), "headers": dict(self.headers)},
            option=orjson.OPT_SORT_KEYS,
        )


async def edit_and_retry(operator: Operator, letter_id: int, edit: Edit, *, note: str = "") -> EditResult:
    """Send a corrected copy of one dead letter and mark it resolved.

    The copy has a new eventId (same prefix) whose causationId is the
    original eventId; correlation and trace are kept. It is validated against
    the envelope and its contract before anything is sent.
    """
    publisher = operator.require_publisher()
    async with operator.database.transaction() as connection:
        letter = await _lock_for_edit(connection, operator, letter_id)
        envelope = corrected_envelope(letter, edit)
        properties = envelope.amqp_properties()
        properties["headers"] = {**_custom_headers(letter.headers), **properties["headers"], **edit.headers}
        await publisher.publish(
            exchange_name="", routing_key=operator.inbox, body=envelope.to_json(), properties=properties
        )
        original = envelope.causation_id
        resolution = f"edited and retried as {envelope.event_id}" + (f": {note}" if note else "")
        await _audit(
            operator,
            letter,
            "dead-letter-edited",
            outcome="resolved",
            reason=note,
            newEventId=envelope.event_id,
            changes=dict(edit.set),
            removed=list(edit.unset),
            headers=dict(edit.headers),
        )
        await store.mark_resolved(connection, letter.id, operator.actor, resolution)
        superseded = await store.resolve_siblings(
            connection,
            letter,
            operator.actor,
            f"superseded by the edit of dead letter {letter.id}: {resolution}",
        )
    log.info(
        "dead letter edited and retried",
        superseded=superseded,
        actor=operator.actor,
        dead_letter_id=letter.id,
        eventId=original,
        new_event_id=envelope.event_id,
        changes=sorted(edit.set),
    )
    return EditResult(letter.id, original, envelope.event_id, envelope)


async def _lock_for_edit(connection: asyncpg.Connection, operator: Operator, letter_id: int) -> DeadLetter:
    try:
        letter = await store.lock(connection, letter_id)
    except asyncpg.LockNotAvailableError:
        raise EditRefused(f"dead letter {letter_id} is being replayed or edited right now") from None
    if letter is None:
        raise DeadLetterNotFound(f"no dead letter {letter_id} in {operator.service}")
    if letter.status != DEAD:
        raise EditRefused(f"dead letter {letter_id} is {letter.status}, not dead ({letter.resolution or ''})")
    return letter


def corrected_envelope(letter: DeadLetter, edit: Edit) -> Envelope:
    """The corrected copy ``edit`` makes of ``letter``, validated; raises EditRefused.

    Its eventId is derived from the original message id and the edit: the
    same correction sent again (an edit retried after a crash, or made on
    another dead copy of the same message) has the same eventId, which the
    service's inbox then ignores.
    """
    try:
        body = orjson.loads(letter.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise EditRefused(f"dead letter {letter.id} is not a JSON envelope; purge it instead")
    for path, value in edit.set.items():
        _set_path(body, path, value)
    for path in edit.unset:
        _unset_path(body, path)
    original_id = body.get("eventId") or letter.message_id
    prefix = original_id.split("-", 1)[0] if isinstance(original_id, str) else ""
    if prefix not in ("cmd", "evt"):
        prefix = _prefix_of(body.get("eventType"))
    body["eventId"] = deterministic_id(
        prefix, "dead-letter-edit", str(original_id or letter.fingerprint), edit.canonical().decode()
    )
    if isinstance(original_id, str) and original_id:
        body["causationId"] = original_id
    try:
        envelope = Envelope.from_json(orjson.dumps(body))
    except InvalidEnvelope as error:
        raise EditRefused(f"the corrected envelope is still invalid: {error}") from None
    try:
        contract = contracts.registry.get(envelope.event_type, envelope.schema_version)
        contract.payload.model_validate(envelope.payload)
    except UnknownMessage as error:
        raise EditRefused(f"the corrected message has no contract: {error}") from None
    except ValidationError as error:
        raise EditRefused(
            f"the corrected payload does not fit {envelope.event_type} v{envelope.schema_version}: "
            f"{describe_validation_error(error)}"
        ) from None
    return envelope


def _prefix_of(event_type: Any) -> str:
    try:
        return contracts.registry.latest(str(event_type)).id_prefix
    except UnknownMessage:
        return "cmd"


def _path(path: str) -> list[str]:
    parts = [part for part in path.split(".") if part]
    if not parts:
        raise EditRefused(f"empty path {path!r}")
    return parts


def _container(body: Any, parts: list[str], path: str, *, create: bool) -> Any:
    node = body
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                if not create:
                    raise EditRefused(f"{path}: {part} is not in the message")
                node[part] = {}
            node = node[part]
        else:
            raise EditRefused(f"{path}: cannot go into {part}")
    return node


def _set_path(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = _path(path)
    node = _container(body, parents, path, create=True)
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise EditRefused(f"{path}: cannot set {last}")


def _unset_path(body: dict[str, Any], path: str) -> None:
    *parents, last = _path(path)
    node = _container(body, parents, path, create=False)
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]
    else:
        raise EditRefused(f"{path}: not in the message")


def _custom_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Headers that are neither the broker's, nor failure bookkeeping, nor replay counting."""
    return {
        key: value
        for key, value in headers.items()
        if key not in BROKER_HEADERS and key not in FAILURE_HEADERS and key != REPLAY_COUNT
    }


# -- purge -----------------------------------------------------------------------------


async def purge(operator: Operator, selection: Selection, *, reason: str) -> list[DeadLetter]:
    """Move the selected dead letters to the archive (who, when, why); the archived rows.

    Bound the selection first (``count_selection``) so that what the operator
    confirmed is all that is taken. Rows another operation holds are skipped.
    """
    if not reason.strip():
        raise DeadLetterError("a purge needs a reason")
    if selection.up_to is None:
        raise DeadLetterError("bound the selection (count_selection) before purging")
    async with operator.database.transaction() as connection:
        archived = await store.move_to_archive(connection, selection, actor=operator.actor, reason=reason)
        for start in range(0, len(archived), _AUDIT_CHUNK):
            await asyncio.gather(
                *(
                    _audit(operator, letter, "dead-letter-purged", outcome="archived", reason=reason)
                    for letter in archived[start : start + _AUDIT_CHUNK]
                )
            )
    log.info(
        "dead letters purged",
        actor=operator.actor,
        selection=selection.describe(),
        archived=len(archived),
        reason=reason,
    )
    return archived


# -- audit -----------------------------------------------------------------------------


async def _audit(
    operator: Operator, letter: DeadLetter, action: str, *, outcome: str, reason: str, **details: Any
) -> None:
    """One audit record about one dead letter, in its tenant and conversation (confirmed)."""
    record = AuditRecord(
        action=action,
        actor=operator.actor,
        outcome=outcome,
        reason=reason,
        subject_type=letter.event_type or "DeadLetter",
        subject_id=letter.message_id or f"dead-letter-{letter.id}",
        recorded_at=datetime.now(UTC),
        details={
            "deadLetterId": letter.id,
            "service": letter.service,
            "group": letter.group_key,
            "status": letter.status,
            "failureOutcome": letter.failure_outcome,
            "exceptionType": letter.exception_type,
            **details,
        },
    )
    envelope = _audit_envelope(operator, letter, record)
    await operator.require_publisher().publish(
        exchange_name=AUDIT_EXCHANGE,
        routing_key=f"{operator.context}.{kebab(action)}",
        body=envelope.to_json(),
        properties=envelope.amqp_properties(),
    )


def _audit_envelope(operator: Operator, letter: DeadLetter, record: AuditRecord) -> Envelope:
    common: dict[str, Any] = {
        "kind_prefix": "evt",
        "event_type": "AuditRecord",
        "schema_version": 1,
        "payload": record.wire(),
        "source": f"{OPERATOR_APP_ID}.{operator.actor}"[:128],
    }
    try:
        cause = Envelope.from_json(letter.body)
    except InvalidEnvelope:
        cause = None
    if cause is not None:
        return Envelope.new(**common, tenant_id=cause.tenant_id, cause=cause)
    envelope = Envelope.new(
        **common,
        tenant_id=letter.tenant_id or UNKNOWN_TENANT,
        correlation_id=letter.correlation_id or None,
    )
    if letter.message_id:
        envelope = envelope.model_copy(update={"causation_id": letter.message_id})
    return envelope


# -- helpers ---------------------------------------------------------------------------


def _message_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: properties[name]
        for name in ("message_id", "type", "correlation_id", "content_type")
        if properties.get(name) is not None
    }


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
