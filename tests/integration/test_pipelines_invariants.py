"""Every invariant of PipelineDefinition, PipelineRun and BuildResult a message can break,
broken through the broker against Pipelines alone.

Source Control's part is played by the test: it publishes RepositoryProvisioned
as Source Control would. Each refusal names its rule (CommandRejected, audit
record, inbox outcome) and leaves the watched rows as they were. Invariants no
message can reach (a build result recorded twice for a run — its id derives
from the run — or artifacts changed after recording) are held by the domain
and its unit tests, and by the unique constraint behind them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import pipelines as p
from contracts import source_control as sc
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus, Captured
from tests.support.dead_letters import stored_dead_letters
from tests.support.refusals import Rows, inbox_outcome, refuse
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration

SHA = "a" * 40
START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def _repository(scenario: Scenario) -> str:
    repository_id = unique("repo")
    await scenario.send(
        sc.RepositoryProvisioned(
            repository_id=repository_id,
            tenant_id=scenario.tenant_id,
            project_id=scenario.project_id,
            module_id="mod-orders",
            name=unique("orders"),
            kind="source",
            provider="AzureDevOps",
            remote_url="file:///var/git/orders.git",
            default_branch="main",
            visibility="Private",
            initial_commit_sha=SHA,
            default_branch_policy=sc.BranchPolicyTerms(),
            created_at=START,
            provisioned_by="alice",
        )
    )
    return repository_id


def _generate(repository_id: str, **overrides: Any) -> p.GeneratePipeline:
    fields: dict[str, Any] = {
        "pipeline_id": unique("pl"),
        "repository_id": repository_id,
        "module_id": "mod-orders",
        "module_type": "library",
        "definition_path": "azure-pipelines.yml",
        "template_version": "v1.5.0",
        "target_feed": "connectsoft/packages",
        "requested_by": "alice",
        **overrides,
    }
    return p.GeneratePipeline(**fields)


async def _definition(scenario: Scenario, repository_id: str, **overrides: Any) -> Captured:
    command = _generate(repository_id, **overrides)
    await scenario.send(command)
    (generated,) = await scenario.wait("PipelineGenerated", pipelineId=command.pipeline_id)
    return generated


async def _run(scenario: Scenario, pipeline_id: str) -> Captured:
    run_id = unique("run")
    await scenario.send(
        p.RunPipeline(
            pipeline_run_id=run_id,
            pipeline_id=pipeline_id,
            branch="main",
            commit_sha=SHA,
            requested_by="alice",
        ),
        occurred_at=START,
    )
    (started,) = await scenario.wait("PipelineRunStarted", pipelineRunId=run_id)
    return started


def _job(stage: str, status: str = "Completed", result: str | None = "Succeeded") -> p.JobStateReport:
    return p.JobStateReport(stage=stage, job=stage, status=status, result=result)


def _completion(run_id: str, **overrides: Any) -> p.CompletePipelineRun:
    fields: dict[str, Any] = {
        "pipeline_run_id": run_id,
        "result": "Succeeded",
        "jobs": [_job(stage) for stage in ("Build", "Test", "Pack", "Push")],
        "version": "1.0.1",
        "finished_at": START + timedelta(minutes=5),
        "reported_by": "azure-pipelines",
        **overrides,
    }
    return p.CompletePipelineRun(**fields)


@pytest.fixture
async def scenario(pipelines: ServiceRuntime, bus: Bus) -> Scenario:
    return Scenario(bus, pipelines.settings)


async def test_the_definition_path_is_unique_per_repository(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    held = await _definition(scenario, repository_id)
    other = _generate(repository_id, module_id="mod-invoices")
    watch = Rows(
        rows=[("pipeline_definitions", held.payload["pipelineId"])],
        absent=[("pipeline_definitions", other.pipeline_id)],
    )
    await refuse(scenario, other, "DuplicateDefinitionPath", watch)


async def test_the_template_version_must_be_a_known_published_one(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    command = _generate(repository_id, template_version="v9.9.9")
    await refuse(
        scenario,
        command,
        "UnknownTemplateVersion",
        Rows(absent=[("pipeline_definitions", command.pipeline_id)]),
    )


async def test_a_variable_is_defined_once(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    variables = [p.VariableRequest(name="dotnetVersion", value=v) for v in ("8.0.x", "9.0.x")]
    command = _generate(repository_id, variables=variables)
    await refuse(
        scenario,
        command,
        "DuplicateVariableName",
        Rows(absent=[("pipeline_definitions", command.pipeline_id)]),
    )


async def test_regeneration_supersedes_the_prior_definition(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    first = await _definition(scenario, repository_id)
    second = await _definition(scenario, repository_id, template_version="v1.4.0")
    assert second.payload["supersedes"] == first.payload["pipelineId"]
    (superseded,) = await scenario.wait("PipelineSuperseded", pipelineId=first.payload["pipelineId"])
    assert superseded.payload["supersededByPipelineId"] == second.payload["pipelineId"]
    state = await scenario.state_of("pipeline_definitions", first.payload["pipelineId"])
    assert state is not None
    assert state["state"]["status"] == "Superseded"
    # A run of the superseded definition is refused.
    run = p.RunPipeline(
        pipeline_run_id=unique("run"),
        pipeline_id=first.payload["pipelineId"],
        branch="main",
        commit_sha=SHA,
        requested_by="alice",
    )
    await refuse(
        scenario, run, "PipelineDefinitionSuperseded", Rows(absent=[("pipeline_runs", run.pipeline_run_id)])
    )


async def test_a_run_must_reference_an_existing_definition(scenario: Scenario) -> None:
    run = p.RunPipeline(
        pipeline_run_id=unique("run"),
        pipeline_id=unique("pl-missing"),
        branch="main",
        commit_sha=SHA,
        requested_by="a",
    )
    command = await scenario.send(run)
    # Not refused: the definition may be on its way. Retried, then dead-lettered with the reason.
    (letter,) = await stored_dead_letters(scenario.settings, message_id=command.event_id, timeout=30)
    assert letter.headers["x-exception-type"] == "PipelineDefinitionNotFound"
    assert "does not exist (yet)" in letter.headers["x-exception-message"]
    assert await scenario.state_of("pipeline_runs", run.pipeline_run_id) is None


async def test_a_report_must_name_jobs_of_the_run_and_each_once(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    definition = await _definition(scenario, repository_id)
    started = await _run(scenario, definition.payload["pipelineId"])
    run_id = started.payload["pipelineRunId"]
    watch = Rows(rows=[("pipeline_runs", run_id)])
    unknown = p.RecordPipelineRunProgress(
        pipeline_run_id=run_id, jobs=[_job("Deploy", "InProgress", None)], reported_at=START, reported_by="ci"
    )
    await refuse(scenario, unknown, "UnknownJob", watch)
    twice = p.RecordPipelineRunProgress(
        pipeline_run_id=run_id,
        jobs=[_job("Build", "InProgress", None), _job("Build", "Completed")],
        reported_at=START + timedelta(minutes=1),
        reported_by="ci",
    )
    await refuse(scenario, twice, "DuplicateJobReport", watch)


async def test_a_run_cannot_finish_before_it_started(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    started = await _run(scenario, (await _definition(scenario, repository_id)).payload["pipelineId"])
    run_id = started.payload["pipelineRunId"]
    early = _completion(run_id, finished_at=START - timedelta(minutes=1))
    await refuse(scenario, early, "FinishedBeforeStarted", Rows(rows=[("pipeline_runs", run_id)]))


async def test_artifact_names_are_unique_in_a_build(scenario: Scenario) -> None:
    repository_id = await _repository(scenario)
    started = await _run(scenario, (await _definition(scenario, repository_id)).payload["pipelineId"])
    run_id = started.payload["pipelineRunId"]
    artifact = p.ArtifactRecord(name="package", uri=f"blob://sha256/{'b' * 64}", sha256="b" * 64, size=1)
    doubled = _completion(run_id, artifacts=[artifact, artifact])
    await refuse(scenario, doubled, "DuplicateArtifactName", Rows(rows=[("pipeline_runs", run_id)]))


async def test_the_build_status_is_derived_from_the_jobs_and_a_finished_run_stays_finished(
    scenario: Scenario,
) -> None:
    repository_id = await _repository(scenario)
    started = await _run(scenario, (await _definition(scenario, repository_id)).payload["pipelineId"])
    run_id = started.payload["pipelineRunId"]
    jobs = [
        _job("Build"),
        _job("Test", result="Failed"),
        _job("Pack", result="Skipped"),
        _job("Push", result="Skipped"),
    ]
    # The provider says Succeeded; a failed job says otherwise, and the jobs decide.
    await scenario.send(_completion(run_id, jobs=jobs))
    (built,) = await scenario.wait("BuildCompleted", pipelineRunId=run_id)
    assert built.payload["status"] == "Failed"
    before = await scenario.state_of("pipeline_runs", run_id)
    again = await scenario.send(_completion(run_id, result="Canceled"))
    # Stale, not refused: the inbox says so and nothing changed.
    assert await inbox_outcome(scenario, again) == "stale"
    assert await scenario.state_of("pipeline_runs", run_id) == before
    assert len(scenario.seen("BuildCompleted", pipelineRunId=run_id)) == 1
