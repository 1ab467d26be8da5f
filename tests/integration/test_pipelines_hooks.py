"""Azure DevOps service hooks through devops.ingress: normalised into the canonical commands,
deduplicated by their notification id, dead-lettered with a reason when they are not ours."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.registry import INGRESS_EXCHANGE
from services.pipelines.app import DEFINITION as PIPELINES
from services.pipelines.settings import PipelinesSettings
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus, Captured
from tests.support.dead_letters import stored_dead_letters
from tests.support.fleet import start_in_process
from tests.support.pipelines_world import START, run_of_a_new_definition
from tests.support.scenario import Scenario

pytestmark = pytest.mark.integration

HOOKS = Path(__file__).resolve().parents[1] / "unit" / "pipelines_adapters" / "hooks"


def _hook(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((HOOKS / f"{name}.json").read_text())
    return document


def _ours(document: dict[str, Any], parameters: dict[str, Any], scenario: Scenario, run_id: str) -> None:
    parameters.update(
        devopsTenantId=scenario.tenant_id, devopsProjectId=scenario.project_id, devopsPipelineRunId=run_id
    )


def build_complete(
    scenario: Scenario, started: Captured, *, minutes: int, result: str = "succeeded"
) -> dict[str, Any]:
    document = copy.deepcopy(_hook("build-complete"))
    resource = document["resource"]
    _ours(document, resource["templateParameters"], scenario, started.payload["pipelineRunId"])
    at = (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    resource.update(
        result=result, buildNumber=started.payload["buildNumber"], finishTime=at, startTime=START.isoformat()
    )
    document.update(id=str(uuid.uuid4()), notificationId=1, createdDate=at)
    return document


def job_state_changed(scenario: Scenario, started: Captured, stage: str, *, minutes: int) -> dict[str, Any]:
    document = copy.deepcopy(_hook("job-state-changed"))
    resource = document["resource"]
    _ours(document, resource["run"]["templateParameters"], scenario, started.payload["pipelineRunId"])
    at = (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    resource["stage"].update(name=stage, displayName=stage)
    resource["job"].update(
        name=stage, state="completed", result="succeeded", startTime=START.isoformat(), finishTime=at
    )
    document.update(id=str(uuid.uuid4()), notificationId=1, createdDate=at)
    return document


async def deliver(bus: Bus, document: dict[str, Any]) -> bytes:
    body = orjson.dumps(document)
    await bus.publish_raw(body, INGRESS_EXCHANGE, f"azure-devops.{document['eventType']}")
    return body


@pytest.fixture
async def scenario(pipelines: ServiceRuntime, bus: Bus) -> Scenario:
    return Scenario(bus, pipelines.settings)


async def test_build_complete_before_the_job_hooks_completes_the_run_and_a_redelivery_counts_once(
    scenario: Scenario, bus: Bus
) -> None:
    started = await run_of_a_new_definition(scenario)
    run_id = started.payload["pipelineRunId"]
    stages = [stage["name"] for stage in started.payload["stageRuns"]]
    # build.complete first (it names no job), then the job hooks, one delivered twice.
    completed = build_complete(scenario, started, minutes=30)
    await deliver(bus, completed)
    (run_completed,) = await scenario.wait("PipelineRunCompleted", pipelineRunId=run_id)
    assert run_completed.payload["status"] == "Succeeded"
    assert run_completed.payload["completedBy"] == "azure-devops"
    assert scenario.seen("BuildCompleted", pipelineRunId=run_id) == []  # its jobs have not settled
    for minute, stage in enumerate(stages, start=10):
        await deliver(bus, job_state_changed(scenario, started, stage, minutes=minute))
    (built,) = await scenario.wait("BuildCompleted", pipelineRunId=run_id)
    assert built.payload["status"] == "Succeeded"
    assert built.payload["version"] == started.payload["buildNumber"]
    assert built.payload["testsPassed"] is None  # build.complete does not carry tests
    assert built.payload["logsUri"] == completed["resource"]["logs"]["url"]

    # Azure retries a notification with the same id: the inbox recognises it.
    await deliver(bus, {**completed, "notificationId": 2})
    await bus.settled("pipelines")
    assert len(scenario.seen("PipelineRunCompleted", pipelineRunId=run_id)) == 1
    rows = await scenario.rows(
        "SELECT count(*) AS n FROM inbox WHERE tenant_id = $1 AND event_type = 'CompletePipelineRun'",
        scenario.tenant_id,
    )
    assert rows[0]["n"] == 1


async def test_a_hook_for_a_run_the_platform_did_not_queue_is_dead_lettered_with_the_reason(
    scenario: Scenario, bus: Bus
) -> None:
    started = await run_of_a_new_definition(scenario)
    foreign = build_complete(scenario, started, minutes=5)
    foreign["resource"]["templateParameters"] = {}
    body = await deliver(bus, foreign)
    (letter,) = await stored_dead_letters(scenario.settings, body=body)
    assert letter.headers["x-exception-type"] == "InvalidIngressMessage"
    assert "devopsTenantId" in letter.headers["x-exception-message"]
    assert scenario.seen("PipelineRunCompleted", pipelineRunId=started.payload["pipelineRunId"]) == []


async def test_a_run_whose_job_hooks_never_come_gets_its_build_result_after_the_settle_timeout(
    pipelines_queues: PipelinesSettings, bus: Bus
) -> None:
    runtime = await start_in_process(PIPELINES, PipelinesSettings(build_result_settle_timeout="1s"))
    try:
        scenario = Scenario(bus, runtime.settings)
        started = await run_of_a_new_definition(scenario)
        run_id = started.payload["pipelineRunId"]
        stages = [stage["name"] for stage in started.payload["stageRuns"]]
        # One job reports; the others never do (skipped stages, lost hooks).
        await deliver(bus, job_state_changed(scenario, started, stages[0], minutes=3))
        await deliver(bus, build_complete(scenario, started, minutes=30, result="failed"))
        await scenario.wait("PipelineRunCompleted", pipelineRunId=run_id)
        assert scenario.seen("BuildCompleted", pipelineRunId=run_id) == []
        (built,) = await scenario.wait("BuildCompleted", pipelineRunId=run_id, timeout=20)
        assert built.payload["status"] == "Failed"  # the run's result speaks for the silent jobs
        state = await scenario.state_of("pipeline_runs", run_id)
        assert state is not None
        assert state["state"]["settledAt"] is not None
    finally:
        await runtime.stop()
