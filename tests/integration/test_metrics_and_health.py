"""Metrics and health endpoints of a running service, scraped over HTTP.

The counters must say exactly what happened to a known mix of deliveries,
the outbox and inbox figures must follow the database, and readiness must
name what is down.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message as Headers

import asyncpg
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import source_control as c
from services.source_control.app import DEFINITION as SOURCE_CONTROL
from services.source_control.settings import SourceControlSettings
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.dead_letters import stored_dead_letters
from tests.support.fleet import start_in_process
from tests.support.scenario import Scenario, unique
from tests.support.timers import schedule

pytestmark = pytest.mark.integration

SERVICE = "source_control"


@pytest.fixture(autouse=True)
def _ephemeral_health_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every runtime these tests start binds a port the OS chooses, on loopback only."""
    monkeypatch.setenv("SOURCE_CONTROL_HEALTH_PORT", "0")
    monkeypatch.setenv("SOURCE_CONTROL_HEALTH_HOST", "127.0.0.1")


@pytest.fixture
async def second_runtime(source_control: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    """Another Source Control runtime in this process, beside the ``source_control`` one."""
    runtime = await start_in_process(SOURCE_CONTROL, SourceControlSettings())
    yield runtime
    await runtime.stop()


# -- HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Headers
    body: bytes

    def json(self) -> dict[str, object]:
        decoded: dict[str, object] = orjson.loads(self.body)
        return decoded


async def http(port: int, path: str, method: str = "GET") -> Answer:
    """One request with the standard library's client, off the event loop the service runs on."""

    def fetch() -> Answer:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    return await asyncio.to_thread(fetch)


class Scrape:
    """The samples of one /metrics answer."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset({"service": SERVICE, **labels}.items()))
        assert key in self.samples, f"no sample {name}{labels}"
        return self.samples[key]

    def total(self, name: str) -> float:
        """The sum of a family's samples over every label set."""
        return sum(value for (sample, _), value in self.samples.items() if sample == name)


async def scrape(runtime: ServiceRuntime) -> Scrape:
    answer = await http(runtime.health_port, "/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(answer.body.decode())


async def scrape_until(
    runtime: ServiceRuntime, condition: Callable[[Scrape], bool], timeout: float = 20.0
) -> Scrape:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        scraped = await scrape(runtime)
        if condition(scraped):
            return scraped
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the scrape never met the condition in {timeout}s")
        await asyncio.sleep(0.1)


# -- counters -------------------------------------------------------------------------------


async def test_the_counters_say_exactly_what_happened_to_each_delivery(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    started = datetime.now(UTC)
    before = await scrape_until(source_control, lambda s: s.value("devops_outbox_backlog_rows") == 0)
    assert before.total("devops_messages_consumed_total") == 0
    published_before = before.value("devops_relay_published_total")
    captured_before = len(bus.capture.messages)

    # Three commands that apply.
    repository_id, provisioned = await scenario.provision()
    await scenario.branch(repository_id, "feature/metrics")
    commit = scenario.envelope(scenario.commit_command(repository_id, "feature/metrics"))
    await bus.send(commit)
    await scenario.wait("CommitCreated", commitId=commit.payload["commitId"])
    # The same command again: a duplicate.
    await bus.send(commit)
    # A rule says no: a second repository of the same name.
    refused = await scenario.send(
        c.ProvisionRepository(
            repository_id=unique("repo"),
            name=provisioned.payload["name"],
            kind="source",
            provider="AzureDevOps",
            requested_by="bob",
        )
    )
    await scenario.rejected(refused)
    # Invalid, dead-lettered at once: a payload without a required field, and a body that is not JSON.
    wire = orjson.loads(
        scenario.envelope(
            c.CreateBranch(
                branch_id=unique("br"),
                repository_id=repository_id,
                name="feature/invalid",
                from_branch="main",
                created_by="agent-1",
            )
        ).to_json()
    )
    del wire["payload"]["createdBy"]
    await bus.publish_raw(orjson.dumps(wire), "devops.commands", "source-control.create-branch.v1")
    await bus.publish_raw(b"{not json", "devops.commands", "source-control.create-branch.v1")
    # Too early, for ever: a branch of a repository never provisioned is retried after
    # each delay (1s, 2s in the tests), then dead-lettered as exhausted.
    await scenario.send(
        c.CreateBranch(
            branch_id=unique("br"),
            repository_id=unique("repo"),
            name="feature/orphan",
            from_branch="main",
            created_by="agent-1",
        )
    )
    dead = await stored_dead_letters(source_control.settings, since=started, expect=3, timeout=30)
    assert sorted(str(m.headers["x-failure-outcome"]) for m in dead) == ["exhausted", "invalid", "invalid"]

    consumed = {"ProvisionRepository": 2, "CreateBranch": 5, "CreateCommit": 2, "unknown": 1}
    scraped = await scrape_until(
        source_control,
        lambda s: (
            s.total("devops_messages_consumed_total") == sum(consumed.values())
            and s.total("devops_messages_dead_lettered_total") == 3
            and s.value("devops_dead_letters_stored_total") == 3  # the mover took all three
            and s.value("devops_outbox_backlog_rows") == 0
        ),
    )
    assert scraped.value("devops_dead_letters_duplicates_total") == 0
    for message_type, count in consumed.items():
        assert scraped.value("devops_messages_consumed_total", message_type=message_type) == count

    succeeded = {
        ("ProvisionRepository", "done"): 1,
        ("ProvisionRepository", "refused"): 1,
        ("CreateBranch", "done"): 1,
        ("CreateCommit", "done"): 1,
        ("CreateCommit", "duplicate"): 1,
    }
    for message_type in consumed:
        for outcome in ("done", "duplicate", "stale", "refused"):
            assert scraped.value(
                "devops_messages_succeeded_total", message_type=message_type, outcome=outcome
            ) == succeeded.get((message_type, outcome), 0), (message_type, outcome)
    assert scraped.total("devops_messages_succeeded_total") == sum(succeeded.values())

    assert scraped.value("devops_messages_retried_total", message_type="CreateBranch") == 2
    assert scraped.total("devops_messages_retried_total") == 2
    dead_lettered = {
        ("CreateBranch", "invalid"): 1,
        ("CreateBranch", "exhausted"): 1,
        ("unknown", "invalid"): 1,
    }
    for (message_type, reason), count in dead_lettered.items():
        assert (
            scraped.value("devops_messages_dead_lettered_total", message_type=message_type, reason=reason)
            == count
        )
    assert scraped.total("devops_messages_dead_lettered_total") == 3
    assert scraped.total("devops_messages_returned_total") == 0
    assert scraped.total("devops_messages_retried_in_place_total") == 0
    assert scraped.value("devops_messages_in_flight") == 0
    # A handled type that never came is there, at zero.
    assert scraped.value("devops_messages_consumed_total", message_type="MergePullRequest") == 0

    # One latency observation per delivery decided, in buckets that only grow.
    for message_type, count in consumed.items():
        labels = {"message_type": message_type}
        assert scraped.value("devops_handler_duration_seconds_count", **labels) == count
        assert scraped.value("devops_handler_duration_seconds_bucket", le="+Inf", **labels) == count
        assert scraped.value("devops_handler_duration_seconds_sum", **labels) > 0
        buckets = [
            value
            for (name, label_set), value in scraped.samples.items()
            if name == "devops_handler_duration_seconds_bucket"
            and ("message_type", message_type) in label_set
        ]
        assert buckets == sorted(buckets)

    # Everything the relay published reached the subscribers, and the outbox is empty again.
    assert scraped.value("devops_outbox_oldest_due_age_seconds") == 0
    assert scraped.value("devops_database_scrape_success") == 1
    ours = [m.event_type for m in bus.capture.messages if m.envelope.get("tenantId") == scenario.tenant_id]
    for event_type in ("RepositoryProvisioned", "BranchCreated", "CommitCreated", "CommandRejected"):
        assert event_type in ours
    for _ in range(50):
        published = scraped.value("devops_relay_published_total") - published_before
        if published == len(bus.capture.messages) - captured_before:
            break
        await asyncio.sleep(0.1)
        scraped = await scrape(source_control)
    assert published == len(bus.capture.messages) - captured_before
    assert published >= len(ours)
    assert scraped.value("devops_relay_failures_total") == 0


# -- outbox and inbox figures -------------------------------------------------------------


async def test_the_outbox_backlog_and_its_age_follow_a_row_the_relay_cannot_take(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    await scrape_until(source_control, lambda s: s.value("devops_outbox_backlog_rows") == 0)
    cause, timer = await schedule(
        source_control, scenario.tenant_id, datetime.now(UTC) + timedelta(seconds=1.5)
    )
    admin = await _admin(source_control)
    try:
        holder = admin.transaction()
        await holder.start()
        # Held before it falls due, so the relay (FOR UPDATE SKIP LOCKED) cannot take it.
        assert await admin.fetchval("SELECT id FROM outbox WHERE message_id = $1 FOR UPDATE", timer.event_id)
        scraped = await scrape(source_control)
        assert scraped.value("devops_outbox_scheduled_rows") == 1
        assert scraped.value("devops_outbox_backlog_rows") == 0
        assert scraped.value("devops_outbox_oldest_due_age_seconds") == 0

        await asyncio.sleep(2.5)  # due one second ago, and still held
        scraped = await scrape(source_control)
        assert scraped.value("devops_outbox_scheduled_rows") == 0
        assert scraped.value("devops_outbox_backlog_rows") == 1
        assert 0.5 < scraped.value("devops_outbox_oldest_due_age_seconds") < 30
        assert scenario.seen("CommandRejected") == []

        await holder.rollback()  # released: the relay publishes it at its next pass
        await scenario.wait("CommandRejected", commandId=cause.event_id, timeout=10)
        scraped = await scrape_until(source_control, lambda s: s.value("devops_outbox_backlog_rows") == 0)
        assert scraped.value("devops_outbox_oldest_due_age_seconds") == 0

        # The inbox figure is PostgreSQL's estimate: right after ANALYZE it is the count.
        await admin.execute("ANALYZE inbox")
        counted = await admin.fetchval("SELECT count(*) FROM inbox")
    finally:
        await admin.close()
    assert counted > 0
    scraped = await scrape(source_control)
    assert scraped.value("devops_inbox_rows") == counted
    assert scraped.value("devops_database_scrape_success") == 1


async def _admin(runtime: ServiceRuntime) -> asyncpg.Connection:
    settings = runtime.settings
    return await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        password=settings.postgres_admin_password or None,
        database=settings.database_name,
    )


# -- liveness and readiness -----------------------------------------------------------------


async def test_liveness_and_readiness_answer_and_readiness_names_the_database_when_it_is_gone(
    source_control: ServiceRuntime,
) -> None:
    port = source_control.health_port
    alive = await http(port, "/healthz")
    assert (alive.status, alive.body) == (200, b"ok\n")
    ready = await http(port, "/readyz")
    assert ready.status == 200
    assert ready.headers["Content-Type"] == "application/json"
    assert ready.json() == {
        "status": "ready",
        "failed": [],
        "checks": {
            "runtime": "ok",
            "consumer": "ok",
            "publisher": "ok",
            "dead-letters": "ok",
            "database": "ok",
        },
    }
    assert (await http(port, "/readyz?verbose=1")).status == 200  # the query string is ignored
    head = await http(port, "/healthz", method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "3")
    assert (await http(port, "/nothing-here")).status == 404
    refused = await http(port, "/metrics", method="POST")
    assert (refused.status, refused.headers["Allow"]) == (405, "GET, HEAD")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"not http at all\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 400 ")
    writer.close()

    await source_control.database.close()  # the consumer's pool: nothing can be committed
    try:
        not_ready = await http(port, "/readyz")
        assert not_ready.status == 503
        report = not_ready.json()
        assert report["status"] == "not ready"
        assert report["failed"] == ["database"]
        assert "not open" in str(report["checks"]["database"])  # type: ignore[index]
        assert (await http(port, "/healthz")).status == 200  # alive all the same: a restart would not help
    finally:
        await source_control.database.open()
    assert (await http(port, "/readyz")).status == 200


async def test_two_runtimes_in_one_process_keep_their_own_metrics_and_readiness(
    source_control: ServiceRuntime, second_runtime: ServiceRuntime, bus: Bus
) -> None:
    first, second = source_control, second_runtime
    assert first.health_port != second.health_port
    assert (await http(second.health_port, "/readyz")).status == 200

    # Both consume the one inbox queue: each counts only the deliveries it took.
    scenario = Scenario(bus, first.settings)
    repository_id, _ = await scenario.provision()
    for index in range(6):
        await scenario.send(
            c.ChangeRepositorySetting(repository_id=repository_id, key=f"k{index}", value="v", changed_by="a")
        )
    await scenario.wait("RepositorySettingChanged", count=6)

    def changes(scraped: Scrape) -> float:
        return scraped.value("devops_messages_consumed_total", message_type="ChangeRepositorySetting")

    counts = [changes(await scrape(runtime)) for runtime in (first, second)]
    assert sum(counts) == 6
    assert first.metrics.registry is not second.metrics.registry

    # The second runtime's publisher connection closes: it is not ready, and says why.
    await second.publisher.close()
    report = (await http(second.health_port, "/readyz")).json()
    assert report["failed"] == ["publisher"]
    assert (await http(first.health_port, "/readyz")).status == 200
    # Then its consumer connection too.
    await second.broker.stop()
    not_ready = await http(second.health_port, "/readyz")
    assert not_ready.status == 503
    assert not_ready.json()["failed"] == ["consumer", "publisher"]
    assert (await http(first.health_port, "/readyz")).status == 200
