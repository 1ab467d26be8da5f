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

from datetime import timedelta
from typing import Any

import pytest

from contracts import pipelines as p
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.dead_letters import stored_dead_letters
from tests.support.pipelines_world import (
    SHA,
    START,
    generate_command,
    generated_definition,
    provisioned_repository,
    run_of_a_new_definition,
    started_run,
)
from tests.support.refusals import Rows, inbox_outcome, refuse
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration


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
    repository_id = await provisioned_repository(scenario)
    held = await generated_definition(scenario, repository_id)
    other = generate_command(repository_id, module_id="mod-invoices")
    watch = Rows(
        rows=[("pipeline_definitions", held.payload["pipelineId"])],
        absent=[("pipeline_definitions", other.pipeline_id)],
    )
    await refuse(scenario, other, "DuplicateDefinitionPath", watch)


async def test_the_template_version_must_be_a_known_published_one(scenario: Scenario) -> None:
    repository_id = await provisioned_repository(scenario)
    command = generate_command(repository_id, template_version="v9.9.9")
    await refuse(
        scenario,
        command,
        "UnknownTemplateVersion",
        Rows(absent=[("pipeline_definitions", command.pipeline_id)]),
    )


async def test_a_gitops_repository_gets_no_pipeline(scenario: Scenario) -> None:
    repository_id = await provisioned_repository(scenario, kind="gitops")
    command = generate_command(repository_id)
    await refuse(
        scenario, command, "RepositoryNotBuilt", Rows(absent=[("pipeline_definitions", command.pipeline_id)])
    )


async def test_a_variable_is_defined_once(scenario: Scenario) -> None:
    repository_id = await provisioned_repository(scenario)
    variables = [p.VariableRequest(name="dotnetVersion", value=v) for v in ("8.0.x", "9.0.x")]
    command = generate_command(repository_id, variables=variables)
    await refuse(
        scenario,
        command,
        "DuplicateVariableName",
        Rows(absent=[("pipeline_definitions", command.pipeline_id)]),
    )


async def test_regeneration_supersedes_the_prior_definition(scenario: Scenario) -> None:
    repository_id = await provisioned_repository(scenario)
    first = await generated_definition(scenario, repository_id)
    second = await generated_definition(scenario, repository_id, template_version="v1.4.0")
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


async def test_a_release_run_is_recorded_with_its_reason(scenario: Scenario) -> None:
    repository_id = await provisioned_repository(scenario)
    definition = await generated_definition(scenario, repository_id)
    run_id = unique("run-release")
    await scenario.send(
        p.RunPipeline(
            pipeline_run_id=run_id,
            pipeline_id=definition.payload["pipelineId"],
            branch="main",
            reason="release",
            requested_by="release-manager",
        )
    )
    (started,) = await scenario.wait("PipelineRunStarted", pipelineRunId=run_id)
    # No commit named: the branch head Pipelines knows (the repository's initial commit).
    assert (started.payload["reason"], started.payload["commitSha"]) == ("release", SHA)


async def test_a_report_must_name_jobs_of_the_run_and_each_once(scenario: Scenario) -> None:
    repository_id = await provisioned_repository(scenario)
    definition = await generated_definition(scenario, repository_id)
    started = await started_run(scenario, definition.payload["pipelineId"])
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
    started = await run_of_a_new_definition(scenario)
    run_id = started.payload["pipelineRunId"]
    early = _completion(run_id, finished_at=START - timedelta(minutes=1))
    await refuse(scenario, early, "FinishedBeforeStarted", Rows(rows=[("pipeline_runs", run_id)]))


async def test_artifact_names_are_unique_in_a_build(scenario: Scenario) -> None:
    started = await run_of_a_new_definition(scenario)
    run_id = started.payload["pipelineRunId"]
    artifact = p.ArtifactRecord(name="package", uri=f"blob://sha256/{'b' * 64}", sha256="b" * 64, size=1)
    doubled = _completion(run_id, artifacts=[artifact, artifact])
    await refuse(scenario, doubled, "DuplicateArtifactName", Rows(rows=[("pipeline_runs", run_id)]))


async def test_the_build_status_is_derived_from_the_jobs_and_a_finished_run_stays_finished(
    scenario: Scenario,
) -> None:
    started = await run_of_a_new_definition(scenario)
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
