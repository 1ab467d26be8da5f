"""``devops dlq replay`` as separate processes: killed midway, and two at once.

Source Control runs as its own process; the dead-letter mover runs in the
test. The service is stopped while the replays run, so every copy they
publish is still on its inbox queue to be counted; then it is started again
and processes each dead letter exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from contracts import source_control as c
from services.source_control.settings import SourceControlSettings
from shared_kernel.dead_letters.mover import DeadLetterMover
from shared_kernel.messaging.topology import ServiceTopology
from shared_kernel.persistence.database import Database
from tests.support.bus import Bus
from tests.support.fleet import REPOSITORY_ROOT, ServiceProcess
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.e2e

INBOX = "source_control.inbox"


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.terminate()


@pytest.fixture
async def mover(source_control_queues: SourceControlSettings) -> AsyncIterator[DeadLetterMover]:
    settings = source_control_queues
    database = Database(settings.operator_database_url, size=2, application_name="test-dead-letter-mover")
    await database.open()
    async with database.transaction() as connection:  # a group replay takes every tenant's letters
        await connection.execute("DELETE FROM dead_letters")
    topology = ServiceTopology(settings.service_name, tuple(settings.retry_delays), settings.delivery_limit)
    moving = DeadLetterMover(settings.amqp_url, database, topology)
    await moving.start()
    yield moving
    await moving.stop()
    await database.close()


def _service(processes: list[ServiceProcess], tmp_path: Path) -> ServiceProcess:
    process = ServiceProcess(
        "services.source_control", {}, tmp_path / f"source_control-{len(processes)}.log"
    ).start()
    processes.append(process)
    return process


async def _replay(tmp_path: Path, name: str, *arguments: str, **environment: str) -> int:
    """``python -m fleet dlq replay source_control …`` to completion (or its death); its exit code."""
    log = tmp_path / f"{name}.log"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet",
            "dlq",
            "replay",
            "source_control",
            *arguments,
            "--actor",
            name,
            cwd=REPOSITORY_ROOT,
            env={**os.environ, **environment},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        code = await asyncio.wait_for(process.wait(), 60)
    if code not in (0, -signal.SIGKILL):
        raise AssertionError(f"{name} exited {code}: {log.read_text()[-3000:]}")
    return code


async def test_a_killed_replay_loses_nothing_and_two_replays_at_once_send_each_dead_letter_once(
    source_control_queues: SourceControlSettings,
    mover: DeadLetterMover,
    bus: Bus,
    processes: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    scenario = Scenario(bus, source_control_queues)
    first = _service(processes, tmp_path)
    await first.wait_started()

    # Thirty branches of a repository that does not exist yet: retried, then dead-lettered.
    repository_id = unique("repo")
    branches = [unique("br") for _ in range(30)]
    for index, branch_id in enumerate(branches):
        await scenario.send(
            c.CreateBranch(
                branch_id=branch_id,
                repository_id=repository_id,
                name=f"feature/f{index}",
                from_branch="main",
                created_by="agent-1",
            )
        )
    rows = await _wait_for_rows(scenario, 30)
    (group,) = {row["group_key"] for row in rows}
    # The cause removed; the service then stopped, so what replays publish stays countable.
    await scenario.provision(repository_id=repository_id)
    first.terminate()

    killed = await _replay(tmp_path, "ops-killed", "--group", group, DEVOPS_DLQ_CRASH_AFTER_CONFIRMS="3")
    assert killed == -signal.SIGKILL
    states = await _states(scenario)
    # Two confirmed and marked; the third confirmed but killed before its row committed.
    assert states == ["replayed"] * 2 + ["dead"] * 28
    assert await _depth(bus, INBOX) == 3

    codes = await asyncio.gather(
        _replay(tmp_path, "ops-a", "--group", group), _replay(tmp_path, "ops-b", "--group", group)
    )
    assert codes == [0, 0]
    replayed = await scenario.rows(
        "SELECT status, replay_count, last_replayed_by FROM dead_letters WHERE tenant_id = $1",
        scenario.tenant_id,
    )
    assert {(row["status"], row["replay_count"]) for row in replayed} == {("replayed", 1)}
    by = {row["last_replayed_by"] for row in replayed}
    assert by <= {"ops-killed", "ops-a", "ops-b"}
    # Each dead letter on the inbox once, plus the one copy the killed replay had confirmed.
    assert await _depth(bus, INBOX) == 31
    await scenario.wait("AuditRecord", count=30, action="dead-letter-replayed")
    audited = [m.payload["subjectId"] for m in scenario.seen("AuditRecord", action="dead-letter-replayed")]
    assert sorted(audited) == sorted(row["message_id"] for row in rows)

    second = _service(processes, tmp_path)
    await second.wait_started()
    for branch_id in branches:
        await scenario.wait("BranchCreated", branchId=branch_id, timeout=30)
    await _wait_until_inbox_is_empty(bus)
    await asyncio.sleep(0.5)
    for branch_id in branches:
        assert len(scenario.seen("BranchCreated", branchId=branch_id)) == 1
    inbox = await scenario.rows(
        "SELECT event_id, outcome FROM inbox WHERE tenant_id = $1 AND event_id = ANY($2)",
        scenario.tenant_id,
        [row["message_id"] for row in rows],
    )
    assert sorted(row["outcome"] for row in inbox) == ["done"] * 30


async def _wait_for_rows(scenario: Scenario, count: int, timeout: float = 30.0) -> list[dict[str, object]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await scenario.rows(
            "SELECT id, group_key, message_id FROM dead_letters WHERE tenant_id = $1 ORDER BY id",
            scenario.tenant_id,
        )
        if len(rows) >= count:
            return [dict(row) for row in rows]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(rows)} of {count} dead letters stored in {timeout}s")
        await asyncio.sleep(0.1)


async def _states(scenario: Scenario) -> list[str]:
    rows = await scenario.rows(
        "SELECT status FROM dead_letters WHERE tenant_id = $1 ORDER BY id", scenario.tenant_id
    )
    return [row["status"] for row in rows]


async def _depth(bus: Bus, name: str) -> int:
    """Messages on a queue now (a robust channel hands back its cached passive declaration)."""
    queue = await bus.channel.declare_queue(name, passive=True)
    result = await queue.declare()
    return int(result.message_count or 0)


async def _wait_until_inbox_is_empty(bus: Bus, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await _depth(bus, INBOX):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{INBOX} did not drain")
        await asyncio.sleep(0.1)
