"""The dead-letter store and the operators' dead-letter tools, against the real broker and database.

Source Control runs in this process (the ``source_control`` fixture) with the
dead-letter mover beside it; operations run as a test operator, through the
functions the CLI uses and through the CLI itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest
from sqlalchemy import MetaData
from typer.testing import CliRunner

from contracts import source_control as c
from fleet.cli import app
from services.source_control.settings import SourceControlSettings
from shared_kernel.dead_letters import operations as ops
from shared_kernel.dead_letters.mover import DeadLetterMover
from shared_kernel.dead_letters.store import Selection
from shared_kernel.envelope import Envelope
from shared_kernel.messaging.handlers import Message
from shared_kernel.messaging.topology import ServiceTopology, declare_fleet, declare_service
from shared_kernel.persistence.database import Database
from shared_kernel.persistence.tables import dead_letter_tables
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration

DLQ = "source_control.dlq"
INBOX = "source_control.inbox"


def _topology(settings: SourceControlSettings) -> ServiceTopology:
    return ServiceTopology(
        service=settings.service_name,
        retry_delays=tuple(settings.retry_delays),
        delivery_limit=settings.delivery_limit,
    )


@pytest.fixture
async def empty_store(source_control_queues: SourceControlSettings) -> SourceControlSettings:
    """No dead letters left by earlier tests (``--all`` means all)."""
    await _admin_execute(source_control_queues, "DELETE FROM dead_letters")
    return source_control_queues


@pytest.fixture
async def mover(empty_store: SourceControlSettings) -> AsyncIterator[DeadLetterMover]:
    """The dead-letter mover on source_control.dlq, as the operator role."""
    database = Database(empty_store.operator_database_url, size=2, application_name="test-dead-letter-mover")
    await database.open()
    moving = DeadLetterMover(empty_store.amqp_url, database, _topology(empty_store))
    await moving.start()
    yield moving
    await moving.stop()
    await database.close()


def operator(settings: SourceControlSettings, actor: str) -> AbstractAsyncContextManager[ops.Operator]:
    return ops.operator_session(settings, actor=actor)


async def _admin_connection(settings: SourceControlSettings) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        password=settings.postgres_admin_password or None,
        database=settings.database_name,
    )


async def _admin_execute(settings: SourceControlSettings, sql: str, *args: Any) -> str:
    connection = await _admin_connection(settings)
    try:
        return str(await connection.execute(sql, *args))
    finally:
        await connection.close()


async def _admin_rows(settings: SourceControlSettings, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await _admin_connection(settings)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def _stored(
    scenario: Scenario,
    count: int,
    *,
    where: str = "tenant_id = $1",
    args: tuple[Any, ...] = (),
    timeout: float = 25.0,
) -> list[asyncpg.Record]:
    """Wait until ``count`` dead letters match, then return them in id order."""
    query = f"SELECT * FROM dead_letters WHERE {where} ORDER BY id"
    arguments = args or (scenario.tenant_id,)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await scenario.rows(query, *arguments)
        if len(rows) >= count:
            assert len(rows) == count, [dict(row) for row in rows]
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(rows)} of {count} dead letters stored in {timeout}s")
        await asyncio.sleep(0.1)


async def _cli(*arguments: str, input: str | None = None) -> Any:
    """``devops dlq …`` in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, ["dlq", *arguments], input=input)


async def _send_to_dlq(
    bus: Bus,
    envelope: Envelope,
    *,
    exception_type: str = "RuntimeError",
    message: str = "boom",
    outcome: str = "exhausted",
    last_failure_at: str | None = None,
) -> dict[str, Any]:
    """A dead letter as the consumer's failure router writes one (to seed the store in bulk)."""
    when = last_failure_at or datetime.now(UTC).isoformat()
    properties = envelope.amqp_properties()
    properties["headers"].update(
        {
            "x-retry-count": 2,
            "x-attempts": 3,
            "x-failure-outcome": outcome,
            "x-exception-type": exception_type,
            "x-exception-message": message,
            "x-service": "source_control",
            "x-first-failure-at": when,
            "x-last-failure-at": when,
            "x-original-exchange": "devops.commands",
            "x-original-routing-key": "source-control.change-repository-setting.v1",
        }
    )
    await bus.publish_raw(envelope.to_json(), "", DLQ, properties)
    return properties


async def _wait_inbox_empty(bus: Bus, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await bus.queue_depth(INBOX):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{INBOX} did not drain")
        await asyncio.sleep(0.1)


# -- the store ----------------------------------------------------------------------------


async def test_the_store_matches_its_table_definitions_and_only_the_operator_role_may_use_it(
    source_control_database: SourceControlSettings,
) -> None:
    settings = source_control_database
    for table in dead_letter_tables(MetaData()):
        rows = await _admin_rows(
            settings,
            "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = $1",
            table.name,
        )
        migrated = {row["column_name"]: row["is_nullable"] == "YES" for row in rows}
        assert migrated == {column.name: bool(column.nullable) for column in table.c}, table.name
    privileges = await _admin_rows(
        settings,
        "SELECT t, p, has_table_privilege($1, t, p) AS granted"
        " FROM unnest(ARRAY['dead_letters', 'dead_letters_archive', 'repositories', 'branches',"
        " 'commits', 'pull_requests', 'inbox', 'outbox']) AS t,"
        " unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p",
        settings.operator_role,
    )
    granted = {(row["t"], row["p"]) for row in privileges if row["granted"]}
    assert granted == {
        ("dead_letters", "SELECT"),
        ("dead_letters", "INSERT"),
        ("dead_letters", "UPDATE"),
        ("dead_letters", "DELETE"),
        ("dead_letters_archive", "SELECT"),
        ("dead_letters_archive", "INSERT"),
    }
    # The service's own roles do not see the store.
    for role in (settings.app_role, settings.relay_role):
        (row,) = await _admin_rows(
            settings, "SELECT has_table_privilege($1, 'dead_letters', 'SELECT') AS g", role
        )
        assert row["g"] is False
    (role,) = await _admin_rows(
        settings, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", settings.operator_role
    )
    assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)


async def test_a_dead_letter_delivered_twice_is_stored_once_and_broker_dead_letters_are_kept_too(
    mover: DeadLetterMover, bus: Bus, empty_store: SourceControlSettings
) -> None:
    scenario = Scenario(bus, empty_store)
    envelope = scenario.envelope(
        c.ChangeRepositorySetting(repository_id=unique("repo"), key="k", value="v", changed_by="a")
    )
    when = datetime.now(UTC).isoformat()
    # The same DLQ message twice, as after a mover crash between its commit and its ack.
    await _send_to_dlq(bus, envelope, last_failure_at=when)
    await _send_to_dlq(bus, envelope, last_failure_at=when)
    # Dead-lettered by the broker (the inbox's delivery limit): x-death, no failure headers.
    poison = scenario.envelope(
        c.ChangeRepositorySetting(repository_id=unique("repo"), key="k", value="v", changed_by="a")
    )
    properties = poison.amqp_properties()
    properties["headers"].update(
        {
            "x-death": [
                {
                    "count": 1,
                    "reason": "delivery_limit",
                    "queue": INBOX,
                    "time": datetime.now(UTC).replace(microsecond=0),
                    "exchange": "devops.commands",
                    "routing-keys": ["source-control.change-repository-setting.v1"],
                }
            ],
            "x-first-death-reason": "delivery_limit",
            "x-first-death-queue": INBOX,
            "x-first-death-exchange": "devops.commands",
            "x-delivery-count": 20,
        }
    )
    await bus.publish_raw(poison.to_json(), "", DLQ, properties)
    # An undecodable body without any id.
    junk = b"{not json " + unique("junk").encode()
    await bus.publish_raw(junk, "", DLQ, {"headers": {"x-failure-outcome": "invalid"}})

    rows = await _stored(scenario, 2)
    (junk_row,) = await _stored(scenario, 1, where="body = $1", args=(junk,))
    deadline = asyncio.get_running_loop().time() + 10
    while mover.stored + mover.duplicates < 4:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (mover.stored, mover.duplicates) == (3, 1)
    assert await bus.queue_depth(DLQ) == 0
    first, second = rows
    assert first["message_id"] == envelope.event_id
    assert first["failure_outcome"] == "exhausted"
    assert first["attempts"] == 3
    assert first["status"] == "dead"
    assert first["original_routing_key"] == "source-control.change-repository-setting.v1"
    assert second["message_id"] == poison.event_id
    assert second["failure_outcome"] == "delivery-limit"
    assert second["exception_type"] == "Broker:delivery_limit"
    assert second["attempts"] == 20
    assert second["original_exchange"] == "devops.commands"
    assert orjson.loads(second["headers"])["x-death"][0]["queue"] == INBOX
    assert junk_row["tenant_id"] is None
    assert junk_row["event_type"] is None
    assert junk_row["failure_outcome"] == "invalid"


# -- failing, storing, replaying ----------------------------------------------------------


async def test_messages_failing_on_a_missing_prerequisite_or_a_bug_are_replayed_once_each_after_the_fix(
    source_control: ServiceRuntime, mover: DeadLetterMover, bus: Bus
) -> None:
    settings = source_control.settings
    scenario = Scenario(bus, settings)
    actor = unique("operator")
    # A missing prerequisite: branches of a repository that does not exist yet.
    missing_repository = unique("repo")
    branches = [unique("br") for _ in range(3)]
    for index, branch_id in enumerate(branches):
        await scenario.send(
            c.CreateBranch(
                branch_id=branch_id,
                repository_id=missing_repository,
                name=f"feature/f{index}",
                from_branch="main",
                created_by="agent-1",
            )
        )
    # A bug: the handler of ChangeRepositorySetting raises.
    repository_id, _ = await scenario.provision()
    _, original = source_control.handlers.lookup("ChangeRepositorySetting", 1)

    async def broken(message: Message[c.ChangeRepositorySetting]) -> None:
        raise ZeroDivisionError(f"bug while changing {message.payload.key}")

    source_control.handlers.add(c.ChangeRepositorySetting, broken)
    settings_changed = [
        await scenario.send(
            c.ChangeRepositorySetting(repository_id=repository_id, key=f"k{index}", value="v", changed_by="a")
        )
        for index in range(2)
    ]
    try:
        rows = await _stored(scenario, 5)
    finally:
        source_control.handlers.add(c.ChangeRepositorySetting, original)  # the bug is fixed

    by_type = {row["event_type"]: row for row in rows}
    assert {row["failure_outcome"] for row in rows} == {"exhausted"}
    assert by_type["CreateBranch"]["exception_type"] == "RepositoryNotProvisionedYet"
    assert by_type["ChangeRepositorySetting"]["exception_type"] == "ZeroDivisionError"
    assert {row["attempts"] for row in rows} == {3}  # first delivery + the 1s and 2s retries

    # Listed by failure, shown in full.
    listed = await _cli("list", "source_control", "--json")
    assert listed.exit_code == 0, listed.output
    groups = {g["exception_type"]: g for g in orjson.loads(listed.stdout)}
    assert groups["RepositoryNotProvisionedYet"]["count"] == 3
    assert groups["RepositoryNotProvisionedYet"]["event_type"] == "CreateBranch"
    assert groups["ZeroDivisionError"]["count"] == 2
    assert groups["ZeroDivisionError"]["reason"] == "bug while changing …"
    table = await _cli("list", "source_control")
    assert table.exit_code == 0, table.output
    assert "RepositoryNotProvisionedYet" in table.stdout
    shown = await _cli("show", "source_control", str(by_type["CreateBranch"]["id"]), "--json")
    assert shown.exit_code == 0, shown.output
    letter = orjson.loads(shown.stdout)
    assert letter["envelope"]["eventId"] == by_type["CreateBranch"]["message_id"]
    assert letter["payload"]["repositoryId"] == missing_repository
    assert letter["failureHeaders"]["x-exception-type"] == "RepositoryNotProvisionedYet"
    assert letter["failureHeaders"]["x-failure-outcome"] == "exhausted"
    history = letter["deliveryHistory"]
    assert {entry["queue"] for entry in history} == {"source_control.retry.1s", "source_control.retry.2s"}
    assert {entry["reason"] for entry in history} == {"expired"}
    pretty = await _cli("show", "source_control", str(by_type["CreateBranch"]["id"]))
    assert pretty.exit_code == 0, pretty.output
    assert "deliveryHistory" in pretty.stdout

    # The cause removed: the repository exists now, the handler is fixed. Replay by group.
    await scenario.provision(repository_id=missing_repository)
    for group in (
        groups["RepositoryNotProvisionedYet"]["group_key"],
        groups["ZeroDivisionError"]["group_key"],
    ):
        replayed = await _cli("replay", "source_control", "--group", group, "--actor", actor)
        assert replayed.exit_code == 0, replayed.output
    for branch_id in branches:
        await scenario.wait("BranchCreated", branchId=branch_id, timeout=20)
    for index in range(2):
        await scenario.wait("RepositorySettingChanged", repositoryId=repository_id, key=f"k{index}")
    await scenario.wait("AuditRecord", count=5, action="dead-letter-replayed", actor=actor)

    # Replaying again changes nothing: nothing dead is left to take…
    async with operator(settings, actor) as again:
        assert await ops.replay(again, Selection(group=groups["ZeroDivisionError"]["group_key"])) == []
        # …and sending the replayed ones once more is ignored by the service's inbox.
        resent = await ops.replay(again, Selection(statuses=("dead", "replayed")))
    assert len(resent) == 5
    await _wait_inbox_empty(bus)
    await asyncio.sleep(0.5)

    for branch_id in branches:
        assert len(scenario.seen("BranchCreated", branchId=branch_id)) == 1
    assert len(scenario.seen("RepositorySettingChanged")) == 2
    event_ids = [row["message_id"] for row in rows]
    inbox = await scenario.rows(
        "SELECT event_id, outcome FROM inbox WHERE tenant_id = $1 AND event_id = ANY($2)",
        scenario.tenant_id,
        event_ids,
    )
    assert sorted((row["event_id"], row["outcome"]) for row in inbox) == sorted(
        (e, "done") for e in event_ids
    )
    after = await scenario.rows(
        "SELECT * FROM dead_letters WHERE tenant_id = $1 ORDER BY id", scenario.tenant_id
    )
    assert [(row["status"], row["replay_count"], row["last_replayed_by"]) for row in after] == [
        ("replayed", 2, actor)
    ] * 5
    # The replayed copy kept its eventId, counted the replay and kept its failure history.
    (audit,) = [
        m
        for m in scenario.seen("AuditRecord", action="dead-letter-replayed")
        if m.payload["subjectId"] == settings_changed[0].event_id and m.payload["details"]["replayCount"] == 1
    ]
    assert audit.routing_key == "source-control.dead-letter-replayed"
    assert audit.envelope["causationId"] == settings_changed[0].event_id
    assert audit.envelope["correlationId"] == settings_changed[0].correlation_id
    assert audit.payload["outcome"] == "replayed"


async def test_two_replays_at_once_publish_each_dead_letter_exactly_once(
    mover: DeadLetterMover,
    bus: Bus,
    empty_store: SourceControlSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    """No consumer on the inbox here: what the two replays published is counted on the queue."""
    settings = empty_store
    await declare_fleet(amqp, history_retention=settings.history_retention)
    await declare_service(amqp, _topology(settings))
    scenario = Scenario(bus, settings)
    repository_id = unique("repo")
    envelopes = [
        scenario.envelope(
            c.ChangeRepositorySetting(repository_id=repository_id, key=f"k{index}", value="v", changed_by="a")
        )
        for index in range(40)
    ]
    for envelope in envelopes:
        await _send_to_dlq(bus, envelope)
    rows = await _stored(scenario, 40)
    (group,) = {row["group_key"] for row in rows}

    async def replay_as(actor: str) -> list[int]:
        async with operator(settings, actor) as session:
            return await ops.replay(session, Selection(group=group))

    first, second = await asyncio.gather(replay_as("ops-a"), replay_as("ops-b"))
    assert first, "ops-a replayed nothing: the two replays did not overlap"
    assert second, "ops-b replayed nothing: the two replays did not overlap"
    assert not set(first) & set(second)
    assert sorted(first + second) == [row["id"] for row in rows]

    published = await bus.drain_queue(INBOX, expect=40)
    await asyncio.sleep(0.3)
    inbox = await bus.channel.declare_queue(INBOX, passive=True)
    assert await inbox.get(fail=False) is None  # not one message more
    assert sorted(m.message_id or "" for m in published) == sorted(e.event_id for e in envelopes)
    assert {m.headers["x-replay-count"] for m in published} == {1}
    for message in published:
        assert message.headers["x-failure-outcome"] == "exhausted"  # history kept
        assert "x-retry-count" not in message.headers  # a fresh retry ladder
        assert message.body == next(e for e in envelopes if e.event_id == message.message_id).to_json()
    states = await scenario.rows(
        "SELECT status, replay_count FROM dead_letters WHERE tenant_id = $1", scenario.tenant_id
    )
    assert {(row["status"], row["replay_count"]) for row in states} == {("replayed", 1)}


async def test_a_replay_that_fails_midway_leaves_the_rest_dead_and_a_second_replay_finishes(
    source_control: ServiceRuntime, mover: DeadLetterMover, bus: Bus
) -> None:
    settings = source_control.settings
    scenario = Scenario(bus, settings)
    repository_id, _ = await scenario.provision()
    envelopes = [
        scenario.envelope(
            c.ChangeRepositorySetting(repository_id=repository_id, key=f"k{index}", value="v", changed_by="a")
        )
        for index in range(10)
    ]
    for envelope in envelopes:
        await _send_to_dlq(bus, envelope)
    rows = await _stored(scenario, 10)

    async def broker_lost_after_four(_: Any, confirmed: int) -> None:
        if confirmed == 4:
            raise ConnectionError("connection to the broker lost")

    async with operator(settings, "ops-interrupted") as session:
        with pytest.raises(ops.ReplayInterrupted) as interrupted:
            await ops.replay(session, Selection(), after_confirm=broker_lost_after_four)
    assert interrupted.value.replayed == [row["id"] for row in rows[:3]]
    states = await scenario.rows(
        "SELECT status FROM dead_letters WHERE tenant_id = $1 ORDER BY id", scenario.tenant_id
    )
    # The fourth copy was confirmed, but its row was not marked: still dead, like the six never sent.
    assert [row["status"] for row in states] == ["replayed"] * 3 + ["dead"] * 7

    async with operator(settings, "ops-finishing") as session:
        finished = await ops.replay(session, Selection())
    assert finished == [row["id"] for row in rows[3:]]
    await scenario.wait("RepositorySettingChanged", count=10, timeout=20)
    await _wait_inbox_empty(bus)
    await asyncio.sleep(0.5)
    assert len(scenario.seen("RepositorySettingChanged")) == 10
    inbox = await scenario.rows(
        "SELECT event_id FROM inbox WHERE tenant_id = $1 AND event_id = ANY($2)",
        scenario.tenant_id,
        [e.event_id for e in envelopes],
    )
    assert len(inbox) == 10
    repository = await scenario.state_of("repositories", repository_id)
    assert repository is not None
    assert repository["version"] == 11


# -- edit and retry -----------------------------------------------------------------------


async def test_edit_and_retry_gets_an_invalid_payload_processed_as_a_new_message_caused_by_the_original(
    source_control: ServiceRuntime, mover: DeadLetterMover, bus: Bus
) -> None:
    settings = source_control.settings
    scenario = Scenario(bus, settings)
    actor = unique("operator")
    repository_id = unique("repo")
    good = scenario.envelope(
        c.ProvisionRepository(
            repository_id=repository_id,
            name=unique("orders"),
            kind="source",
            provider="GitHub",
            requested_by="a",
        )
    )
    wire = orjson.loads(good.to_json())
    wire["payload"]["provider"] = "Subversion"
    wire["payload"]["unexpected"] = True
    await bus.publish_raw(
        orjson.dumps(wire),
        "devops.commands",
        "source-control.provision-repository.v1",
        good.amqp_properties(),
    )
    (row,) = await _stored(scenario, 1)
    assert (row["failure_outcome"], row["exception_type"]) == ("invalid", "InvalidPayload")
    assert row["attempts"] == 1

    # A correction that is still wrong is refused before anything is sent.
    refused = await _cli(
        "edit", "source_control", str(row["id"]), "--set", 'payload.provider="CVS"', "--actor", actor
    )
    assert refused.exit_code == 1
    assert "provider" in refused.output
    (unchanged,) = await scenario.rows("SELECT status FROM dead_letters WHERE id = $1", row["id"])
    assert unchanged["status"] == "dead"

    edited = await _cli(
        "edit",
        "source_control",
        str(row["id"]),
        "--set",
        'payload.provider="AzureDevOps"',
        "--unset",
        "payload.unexpected",
        "--header",
        "x-corrected-by=" + actor,
        "--note",
        "provider typo",
        "--actor",
        actor,
    )
    assert edited.exit_code == 0, edited.output
    new_event_id = edited.stdout.strip().splitlines()[-1]
    assert new_event_id.startswith("cmd-")
    assert new_event_id != good.event_id

    (provisioned,) = await scenario.wait("RepositoryProvisioned", repositoryId=repository_id)
    assert provisioned.payload["provider"] == "AzureDevOps"
    assert provisioned.envelope["causationId"] == new_event_id
    assert provisioned.envelope["correlationId"] == good.correlation_id
    (resolved,) = await scenario.rows("SELECT * FROM dead_letters WHERE id = $1", row["id"])
    assert resolved["status"] == "resolved"
    assert resolved["resolved_by"] == actor
    assert new_event_id in resolved["resolution"]
    assert "provider typo" in resolved["resolution"]
    (audit,) = await scenario.wait("AuditRecord", action="dead-letter-edited", actor=actor)
    assert audit.routing_key == "source-control.dead-letter-edited"
    assert audit.payload["subjectId"] == good.event_id
    assert audit.payload["details"]["newEventId"] == new_event_id
    assert audit.payload["details"]["changes"] == {"payload.provider": "AzureDevOps"}
    inbox = await scenario.rows("SELECT event_id FROM inbox WHERE tenant_id = $1", scenario.tenant_id)
    assert {r["event_id"] for r in inbox} == {new_event_id}

    # The corrected copy records the original as its cause; a resolved letter is not edited twice.
    async with operator(settings, actor) as session:
        with pytest.raises(ops.EditRefused, match="resolved"):
            await ops.edit_and_retry(session, row["id"], ops.Edit(set={"payload.provider": "GitHub"}))
        corrected = ops.corrected_envelope(
            await ops.get(session, row["id"]),
            ops.Edit(
                set={"payload.provider": "AzureDevOps"},
                unset=("payload.unexpected",),
                headers={"x-corrected-by": actor},
            ),
        )
    assert (
        corrected.event_id == new_event_id
    )  # the same edit gives the same id: a retried edit is a duplicate
    assert corrected.causation_id == good.event_id
    assert corrected.trace_id == good.trace_id


# -- purge and the archive ----------------------------------------------------------------


async def test_purge_asks_for_the_count_moves_letters_to_the_archive_and_audits_each(
    mover: DeadLetterMover, bus: Bus, empty_store: SourceControlSettings
) -> None:
    scenario = Scenario(bus, empty_store)
    actor = unique("operator")
    bodies = [b"{not json " + unique("junk").encode() for _ in range(3)]
    for body in bodies:
        await bus.publish_raw(
            body,
            "",
            DLQ,
            {
                "headers": {
                    "x-failure-outcome": "invalid",
                    "x-exception-type": "InvalidEnvelope",
                    "x-exception-message": "body is not JSON: unexpected character: line 1 column 2 (char 1)",
                }
            },
        )
    kept = scenario.envelope(
        c.ChangeRepositorySetting(repository_id=unique("repo"), key="k", value="v", changed_by="a")
    )
    await _send_to_dlq(bus, kept)
    rows = await _stored(scenario, 3, where="body = ANY($1)", args=(bodies,))
    (group,) = {row["group_key"] for row in rows}
    await _stored(scenario, 1)

    # A wrong count purges nothing; so does no answer.
    refused = await _cli(
        "purge", "source_control", "--group", group, "--reason", "junk", "--actor", actor, input="2\n"
    )
    assert refused.exit_code == 1
    assert "Type 3 to confirm" in refused.output
    assert len(await scenario.rows("SELECT 1 FROM dead_letters WHERE group_key = $1", group)) == 3
    missing_reason = await _cli("purge", "source_control", "--all", "--yes", "--reason", " ")
    assert missing_reason.exit_code == 2

    purged = await _cli(
        "purge",
        "source_control",
        "--group",
        group,
        "--reason",
        "junk from a test",
        "--actor",
        actor,
        input="3\n",
    )
    assert purged.exit_code == 0, purged.output
    assert "archived 3" in purged.stdout
    assert await scenario.rows("SELECT 1 FROM dead_letters WHERE group_key = $1", group) == []
    assert (
        len(await scenario.rows("SELECT 1 FROM dead_letters WHERE tenant_id = $1", scenario.tenant_id)) == 1
    )

    archived = await _cli("archive", "source_control", "--json")
    assert archived.exit_code == 0, archived.output
    listed = {entry["id"]: entry for entry in orjson.loads(archived.stdout)}
    for row in rows:
        assert listed[row["id"]]["archivedBy"] == actor
        assert listed[row["id"]]["archiveReason"] == "junk from a test"
    one = await _cli("archive", "source_control", str(rows[0]["id"]), "--json")
    assert one.exit_code == 0, one.output
    shown = orjson.loads(one.stdout)
    assert shown["body"] == rows[0]["body"].decode()
    assert shown["deadLetter"]["archiveReason"] == "junk from a test"
    table = await _cli("archive", "source_control")
    assert table.exit_code == 0, table.output
    assert "junk from a test" in table.stdout

    ids = {row["id"] for row in rows}
    audits = await bus.capture.wait_for(
        "AuditRecord",
        count=3,
        action="dead-letter-purged",
        where=lambda m: m.payload["details"]["deadLetterId"] in ids,
    )
    assert {m.routing_key for m in audits} == {"source-control.dead-letter-purged"}
    assert {m.envelope["tenantId"] for m in audits} == {ops.UNKNOWN_TENANT}  # undecodable: no tenant
    assert {m.payload["reason"] for m in audits} == {"junk from a test"}

    # One by id, confirmed with --yes.
    (last,) = await scenario.rows("SELECT id FROM dead_letters WHERE tenant_id = $1", scenario.tenant_id)
    by_id = await _cli(
        "purge", "source_control", "--id", str(last["id"]), "--yes", "--reason", "obsolete", "--actor", actor
    )
    assert by_id.exit_code == 0, by_id.output
    (audit,) = await scenario.wait("AuditRecord", action="dead-letter-purged", actor=actor)
    assert audit.envelope["causationId"] == kept.event_id
    assert audit.envelope["correlationId"] == kept.correlation_id


async def test_a_replayed_copy_the_broker_dead_letters_again_is_a_new_dead_letter(
    mover: DeadLetterMover, bus: Bus, empty_store: SourceControlSettings, amqp: Any
) -> None:
    settings = empty_store
    await declare_fleet(amqp, history_retention=settings.history_retention)
    await declare_service(amqp, _topology(settings))
    scenario = Scenario(bus, settings)
    envelope = scenario.envelope(
        c.ChangeRepositorySetting(repository_id=unique("repo"), key="k", value="v", changed_by="a")
    )
    await _send_to_dlq(bus, envelope)
    (row,) = await _stored(scenario, 1)
    async with operator(settings, "ops-probe") as session:
        assert await ops.replay(session, Selection(id=row["id"])) == [row["id"]]
    # The replayed copy now crashes its consumer every time: returned to the inbox
    # until the broker's delivery limit dead-letters it, with the old failure headers.
    channel = await amqp.channel()
    inbox = await channel.declare_queue(INBOX, passive=True)
    returned = 0
    while returned <= settings.delivery_limit:
        message = await inbox.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        assert message.message_id == envelope.event_id
        await message.nack(requeue=True)
        returned += 1
    await channel.close()
    first, again = await _stored(scenario, 2)
    assert (first["id"], first["status"]) == (row["id"], "replayed")
    assert again["status"] == "dead"
    assert again["message_id"] == envelope.event_id
    assert again["exception_type"].startswith("Broker:")  # what happened last, not the old failure


async def test_editing_one_of_two_dead_copies_of_a_message_applies_it_once(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    settings = source_control.settings
    scenario = Scenario(bus, settings)
    await _admin_execute(settings, "DELETE FROM dead_letters WHERE tenant_id = $1", scenario.tenant_id)
    repository_id, _ = await scenario.provision()
    await scenario.branch(repository_id, "feature/x")
    pull_request_id = await scenario.open_pull_request(repository_id, "feature/x")
    good = scenario.envelope(
        c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer="bob", vote="Approved")
    )
    wire = orjson.loads(good.to_json())
    wire["payload"]["vote"] = "Approvd"
    for _ in range(2):  # an at-least-once duplicate of an invalid command: two dead letters
        await bus.publish_raw(
            orjson.dumps(wire),
            "devops.commands",
            "source-control.record-pull-request-review.v1",
            good.amqp_properties(),
        )
    first, second = await _stored(scenario, 2)
    async with operator(settings, "ops-probe") as session:
        edited = await ops.edit_and_retry(session, first["id"], ops.Edit(set={"payload.vote": "Approved"}))
        with pytest.raises(ops.EditRefused):  # superseded by the first edit
            await ops.edit_and_retry(session, second["id"], ops.Edit(set={"payload.vote": "Approved"}))
    await scenario.wait("PullRequestReviewRecorded", pullRequestId=pull_request_id, reviewer="bob")
    await asyncio.sleep(0.5)
    assert len(scenario.seen("PullRequestReviewRecorded", reviewer="bob")) == 1
    (_, resolved) = await _stored(scenario, 2)
    assert resolved["status"] == "resolved"
    assert edited.new_event_id in resolved["resolution"]
