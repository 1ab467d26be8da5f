"""The outcome table of the brief, section 4, against the real broker and database."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest
import structlog

from contracts import source_control as c
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.dead_letters import stored_dead_letters
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration


async def test_the_same_command_twice_changes_state_once_and_emits_once(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _ = await scenario.provision()
    await scenario.branch(repository_id, "feature/x")
    pull_request_id = await scenario.open_pull_request(repository_id, "feature/x")
    # Recording a review is not idempotent in the domain: only the inbox stops a second copy.
    envelope = scenario.envelope(
        c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer="bob", vote="Approved")
    )
    await bus.send(envelope)
    await bus.send(envelope)
    await scenario.wait("PullRequestReviewRecorded", pullRequestId=pull_request_id)
    # A later command on the same queue proves both copies were consumed.
    await scenario.send(
        c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer="carol", vote="Approved")
    )
    await scenario.wait("PullRequestReviewRecorded", pullRequestId=pull_request_id, reviewer="carol")
    assert len(scenario.seen("PullRequestReviewRecorded", reviewer="bob")) == 1
    pull_request = await scenario.state_of("pull_requests", pull_request_id)
    assert pull_request is not None
    assert [review["reviewer"] for review in pull_request["state"]["reviews"]] == ["bob", "carol"]
    assert pull_request["version"] == 3  # opened, bob, carol
    inbox = await scenario.rows(
        "SELECT outcome FROM inbox WHERE tenant_id = $1 AND event_id = $2",
        scenario.tenant_id,
        envelope.event_id,
    )
    assert [row["outcome"] for row in inbox] == ["done"]


@pytest.mark.parametrize(
    ("case", "expected_type", "reason_part"),
    [
        ("undecodable", "InvalidEnvelope", "not JSON"),
        ("missing-fields", "InvalidEnvelope", "tenantId"),
        ("unknown-type", "UnknownMessage", "NoSuchCommand"),
        ("wrong-schema", "InvalidPayload", "provider"),
        ("unsupported-version", "UnknownMessage", "v7"),
        ("unsafe-tenant", "InvalidEnvelope", "tenantId"),
    ],
)
async def test_invalid_input_is_dead_lettered_at_once_with_the_reason(
    source_control: ServiceRuntime, bus: Bus, case: str, expected_type: str, reason_part: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    good = scenario.envelope(
        c.ProvisionRepository(
            repository_id=unique("repo"),
            name=unique("n"),
            kind="source",
            provider="GitHub",
            requested_by="alice",
        )
    )
    wire = orjson.loads(good.to_json())
    if case == "undecodable":
        body = b"{this is not json"
    elif case == "missing-fields":
        del wire["tenantId"], wire["traceId"]
        body = orjson.dumps(wire)
    elif case == "unknown-type":
        wire["eventType"] = "NoSuchCommand"
        body = orjson.dumps(wire)
    elif case == "wrong-schema":
        wire["payload"]["provider"] = "Subversion"
        wire["payload"]["unexpected"] = True
        body = orjson.dumps(wire)
    elif case == "unsafe-tenant":
        wire["tenantId"] = "acme corp/../other"
        body = orjson.dumps(wire)
    else:
        wire["schemaVersion"] = 7
        body = orjson.dumps(wire)
    await bus.publish_raw(
        body, "devops.commands", "source-control.provision-repository.v1", good.amqp_properties()
    )

    (dead,) = await stored_dead_letters(source_control.settings, body=body)
    headers = dead.headers
    assert headers["x-exception-type"] == expected_type
    assert reason_part in headers["x-exception-message"]
    assert headers["x-failure-outcome"] == "invalid"
    assert headers["x-service"] == "source_control"
    assert headers["x-attempts"] == 1
    assert headers["x-original-routing-key"] == "source-control.provision-repository.v1"
    assert headers["x-first-failure-at"]
    assert headers["x-last-failure-at"] >= headers["x-first-failure-at"]
    assert dead.body == body  # the original, untouched
    # The consumer keeps running.
    repository_id, _ = await scenario.provision()
    assert repository_id


async def test_too_early_is_retried_later_and_then_processed(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id = unique("repo")
    branch_id = unique("br")
    early = await scenario.send(
        c.CreateBranch(
            branch_id=branch_id,
            repository_id=repository_id,
            name="feature/early",
            from_branch="main",
            created_by="a",
        )
    )
    await asyncio.sleep(0.3)  # the branch arrives before its repository
    assert await scenario.state_of("branches", branch_id) is None
    await scenario.provision(repository_id=repository_id)
    (created,) = await scenario.wait("BranchCreated", branchId=branch_id, timeout=20)
    assert created.envelope["causationId"] == early.event_id
    assert created.properties.headers["x-causation-id"] == early.event_id


async def test_a_database_connection_terminated_mid_transaction_is_retried_and_the_message_processed(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _ = await scenario.provision()
    settings = source_control.settings
    admin = await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        password=settings.postgres_admin_password or None,
        database=settings.database_name,
    )
    try:
        # Hold the repository's row so the handler's transaction waits inside the database…
        blocker = admin.transaction()
        await blocker.start()
        await admin.execute(
            "SELECT 1 FROM repositories WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            scenario.tenant_id,
            repository_id,
        )
        with structlog.testing.capture_logs() as logs:
            await scenario.send(
                c.ChangeRepositorySetting(repository_id=repository_id, key="k", value="v", changed_by="a")
            )
            waiting = await _backend_waiting_on_a_lock(admin, timeout=10)
            # …then cut its connection, as a failover or an administrator would.
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", waiting)
            await blocker.rollback()
            await scenario.wait("RepositorySettingChanged", repositoryId=repository_id, key="k")
    finally:
        await admin.close()
    assert any(entry["event"] == "transient fault; retrying in place" for entry in logs)
    repository = await scenario.state_of("repositories", repository_id)
    assert repository is not None
    assert repository["state"]["settings"] == [{"key": "k", "value": "v"}]
    assert len(scenario.seen("RepositorySettingChanged")) == 1


async def _backend_waiting_on_a_lock(admin: asyncpg.Connection, timeout: float) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'source_control-consumer' "
            "AND wait_event_type = 'Lock' LIMIT 1"
        )
        if pid:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the handler never waited on the locked row")


async def test_a_message_no_queue_takes_is_kept_in_the_unroutable_queue(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    body = orjson.dumps({"marker": unique("unroutable")})
    await bus.publish_raw(body, "devops.commands", "nobody.listens-here.v1")
    (kept,) = [m for m in await bus.drain_queue("devops.unroutable", expect=1) if m.body == body]
    assert kept.routing_key == "nobody.listens-here.v1"


async def test_a_refusal_that_cannot_be_recorded_is_retried_later_not_left_unacknowledged(
    source_control: ServiceRuntime, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario(bus, source_control.settings)
    refuse = source_control.processor._refuse
    failures = iter([ConnectionError("database went away")])

    async def flaky_refuse(*args: object, **kwargs: object) -> object:
        for error in failures:
            raise error
        return await refuse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(source_control.processor, "_refuse", flaky_refuse)
    repository_id, _ = await scenario.provision()
    duplicate = await scenario.send(
        c.ProvisionRepository(
            repository_id=unique("repo"),
            name=(await scenario.state_of("repositories", repository_id) or {})["state"]["name"],
            kind="source",
            provider="GitHub",
            requested_by="mallory",
        )
    )
    rejection = await scenario.rejected(duplicate, timeout=20)  # after the 1s delayed retry
    assert rejection.payload["rule"] == "DuplicateRepositoryName"
    (audit,) = await scenario.wait("AuditRecord", subjectId=duplicate.event_id)
    assert audit.payload["actor"] == "mallory"  # who asked, not the sending system
    assert await bus.queue_depth("source_control.inbox") == 0
