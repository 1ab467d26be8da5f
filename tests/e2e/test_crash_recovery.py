"""Source Control as a separate process, killed at the worst moments."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import source_control as c
from services.source_control.settings import SourceControlSettings
from tests.support.bus import Bus
from tests.support.fleet import ServiceProcess
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.e2e

MODULE = "services.source_control"


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.terminate()


def _spawn(processes: list[ServiceProcess], tmp_path: Path, **environment: str) -> ServiceProcess:
    process = ServiceProcess(MODULE, environment, tmp_path / f"source_control-{len(processes)}.log").start()
    processes.append(process)
    return process


def _provision(scenario: Scenario) -> c.ProvisionRepository:
    return c.ProvisionRepository(
        repository_id=unique("repo"),
        name=unique("orders"),
        kind="source",
        provider="AzureDevOps",
        requested_by="alice",
    )


async def test_killed_between_commit_and_publish_publishes_once_after_restart(
    source_control_queues: SourceControlSettings, bus: Bus, processes: list[ServiceProcess], tmp_path: Path
) -> None:
    scenario = Scenario(bus, source_control_queues)
    crashing = _spawn(processes, tmp_path, SOURCE_CONTROL_CRASH_AT="after_commit")
    await crashing.wait_started()
    command = _provision(scenario)
    envelope = await scenario.send(command)
    assert await crashing.wait_exit() == -signal.SIGKILL

    # Committed but not published: the events wait in the outbox.
    outbox = await scenario.rows("SELECT routing_key FROM outbox WHERE tenant_id = $1", scenario.tenant_id)
    assert sorted(r["routing_key"] for r in outbox) == [
        "source-control.branch-created.v1",
        "source-control.repository-provisioned.v1",
    ]
    assert scenario.seen("RepositoryProvisioned") == []

    restarted = _spawn(processes, tmp_path)
    await restarted.wait_started()
    await scenario.wait("RepositoryProvisioned", repositoryId=command.repository_id)
    await scenario.wait("BranchCreated", repositoryId=command.repository_id)
    # The unacknowledged command came back and was recognised as a duplicate.
    await _wait_until_inbox_queue_is_empty(bus)
    await asyncio.sleep(0.5)
    assert len(scenario.seen("RepositoryProvisioned")) == 1
    assert len(scenario.seen("BranchCreated")) == 1
    assert await scenario.rows("SELECT 1 FROM outbox WHERE tenant_id = $1", scenario.tenant_id) == []
    inbox = await scenario.rows(
        "SELECT event_id, outcome FROM inbox WHERE tenant_id = $1", scenario.tenant_id
    )
    # Recognised as a duplicate by the inbox, not merely found stale by the domain.
    assert [(r["event_id"], r["outcome"]) for r in inbox] == [(envelope.event_id, "done")]


async def test_killed_before_commit_the_message_is_redelivered_and_processed_once(
    source_control_queues: SourceControlSettings, bus: Bus, processes: list[ServiceProcess], tmp_path: Path
) -> None:
    scenario = Scenario(bus, source_control_queues)
    crashing = _spawn(processes, tmp_path, SOURCE_CONTROL_CRASH_AT="before_commit")
    await crashing.wait_started()
    command = _provision(scenario)
    await scenario.send(command)
    assert await crashing.wait_exit() == -signal.SIGKILL
    # Nothing was committed (the Git repository may exist: the adapter is idempotent).
    assert await scenario.rows("SELECT 1 FROM inbox WHERE tenant_id = $1", scenario.tenant_id) == []
    assert await scenario.state_of("repositories", command.repository_id) is None

    restarted = _spawn(processes, tmp_path)
    await restarted.wait_started()
    (provisioned,) = await scenario.wait("RepositoryProvisioned", repositoryId=command.repository_id)
    await _wait_until_inbox_queue_is_empty(bus)
    await asyncio.sleep(0.5)
    assert len(scenario.seen("RepositoryProvisioned")) == 1
    inbox = await scenario.rows("SELECT outcome FROM inbox WHERE tenant_id = $1", scenario.tenant_id)
    assert [r["outcome"] for r in inbox] == ["done"]
    repository = await scenario.state_of("repositories", command.repository_id)
    assert repository is not None
    assert repository["state"]["initialCommitSha"] == provisioned.payload["initialCommitSha"]


async def test_graceful_shutdown_under_load_loses_nothing_and_does_nothing_twice(
    source_control_queues: SourceControlSettings, bus: Bus, processes: list[ServiceProcess], tmp_path: Path
) -> None:
    scenario = Scenario(bus, source_control_queues)
    repository_id = unique("repo")
    first = _spawn(processes, tmp_path)
    await first.wait_started()
    await scenario.send(
        c.ProvisionRepository(
            repository_id=repository_id,
            name=unique("orders"),
            kind="source",
            provider="GitHub",
            requested_by="alice",
        )
    )
    await scenario.wait("RepositoryProvisioned", repositoryId=repository_id)
    total = 300
    for index in range(total):
        await scenario.send(
            c.ChangeRepositorySetting(repository_id=repository_id, key=f"k{index}", value="v", changed_by="a")
        )
    await asyncio.sleep(0.3)
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    assert await first.wait_exit() == 0
    second = _spawn(processes, tmp_path)
    await second.wait_started()
    await scenario.wait("RepositorySettingChanged", count=total, timeout=60)
    await _wait_until_inbox_queue_is_empty(bus)
    assert len(scenario.seen("RepositorySettingChanged")) == total
    repository = await scenario.state_of("repositories", repository_id)
    assert repository is not None
    assert repository["version"] == total + 1
    assert len(repository["state"]["settings"]) == total


async def _wait_until_inbox_queue_is_empty(bus: Bus, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await bus.queue_depth("source_control.inbox"):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("source_control.inbox did not drain")
        await asyncio.sleep(0.1)
