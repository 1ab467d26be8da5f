"""Pipelines domain: definitions, runs (convergent progress), build results."""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import contracts.pipelines  # noqa: F401  (registration)
from contracts import registry
from services.pipelines.domain import (
    ArtifactItem,
    BuildResult,
    BuildStatus,
    DefinitionStatus,
    ItemStatus,
    JobReport,
    JobResult,
    ModuleType,
    PipelineDefinition,
    PipelineRun,
    PipelineStage,
    PipelineVariable,
    RunReason,
    RunResult,
    RunStatus,
    TestSummary,
)
from services.pipelines.domain.errors import (
    ArtifactsImmutable,
    CannotSupersedeItself,
    DefinitionAlreadySuperseded,
    DuplicateArtifactName,
    DuplicateBuildResult,
    DuplicateDefinitionPath,
    DuplicateJobReport,
    DuplicateStageName,
    DuplicateVariableName,
    FinishedBeforeStarted,
    OutdatedProgressReport,
    PipelineDefinitionNotFound,
    PipelineDefinitionSuperseded,
    PipelineHasNoStages,
    RunAlreadyFinished,
    RunNotFinished,
    UnknownJob,
    UnknownTemplateVersion,
)
from shared_kernel.domain import AggregateRoot, StaleMessage

pytestmark = pytest.mark.unit

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
KNOWN = ("v1.3.0", "v1.4.0")
STAGES = [PipelineStage(name="Build", jobs=("compile", "test")), PipelineStage(name="Pack", jobs=("push",))]


def at(minutes: int) -> datetime:
    return AT + timedelta(minutes=minutes)


def validated(aggregate: AggregateRoot) -> list[dict[str, Any]]:
    """The pending events' payloads, each checked against its contract."""
    payloads = []
    for event in aggregate.pull_events():
        contract = registry.get(event.event_type, 1)
        assert contract.payload.model_validate(event.payload).wire() == event.payload
        payloads.append({"type": event.event_type, **event.payload})
    return payloads


def generate(**overrides: Any) -> PipelineDefinition:
    fields: dict[str, Any] = {
        "pipeline_id": "pipe-1",
        "repository_id": "repo-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "module_id": "module-1",
        "module_type": ModuleType.LIBRARY,
        "definition_path": "azure-pipelines.yml",
        "template_version": "v1.4.0",
        "known_versions": KNOWN,
        "target_feed": "acme/packages",
        "stages": STAGES,
        "variables": [PipelineVariable(name="NUGET_KEY", value="kv:nuget", is_secret=True)],
        "yaml_sha256": "a" * 64,
        "commit_id": "commit-pipe-1",
        "at": AT,
        "by": "svc-pipelines",
    }
    return PipelineDefinition.generate(**{**fields, **overrides})


def start(definition: PipelineDefinition | None = None, **overrides: Any) -> PipelineRun:
    fields: dict[str, Any] = {
        "pipeline_run_id": "run-1",
        "definition": definition if definition is not None else generate(),
        "pipeline_id": "pipe-1",
        "branch": "main",
        "commit_sha": "1" * 40,
        "build_number": "20250301.1",
        "reason": RunReason.CI,
        "at": AT,
        "by": "svc-pipelines",
    }
    return PipelineRun.start(**{**fields, **overrides})


def job(stage: str, name: str, status: ItemStatus, result: JobResult | None = None) -> JobReport:
    return JobReport(stage=stage, job=name, status=status, result=result)


ALL_SUCCEEDED = [
    job("Build", "compile", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
    job("Build", "test", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
    job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
]


# Pipeline definition


def test_generate_records_pipeline_generated_with_the_definition_shape() -> None:
    definition = generate()

    assert definition.status is DefinitionStatus.ACTIVE
    [event] = validated(definition)
    assert event["type"] == "PipelineGenerated"
    assert event["moduleType"] == "library"
    assert event["templateVersion"] == "v1.4.0"
    assert event["targetFeed"] == "acme/packages"
    assert event["stages"] == [
        {"name": "Build", "jobs": ["compile", "test"]},
        {"name": "Pack", "jobs": ["push"]},
    ]
    assert "variables" not in event  # secret references stay inside the context


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"template_version": "v9.9.9"}, UnknownTemplateVersion),
        ({"stages": []}, PipelineHasNoStages),
        ({"stages": [*STAGES, PipelineStage(name="Build", jobs=("x",))]}, DuplicateStageName),
        (
            {"variables": [PipelineVariable(name="A", value="1"), PipelineVariable(name="A", value="2")]},
            DuplicateVariableName,
        ),
        ({"supersedes": "pipe-1"}, CannotSupersedeItself),
    ],
)
def test_generate_refuses_a_broken_definition(overrides: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        generate(**overrides)


def test_the_definition_path_is_free_only_for_the_same_module() -> None:
    existing = generate()

    PipelineDefinition.ensure_path_free(None, module_id="module-2")
    PipelineDefinition.ensure_path_free(existing, module_id="module-1")  # a regeneration
    with pytest.raises(DuplicateDefinitionPath):
        PipelineDefinition.ensure_path_free(existing, module_id="module-2")


def test_regeneration_supersedes_the_prior_definition() -> None:
    old = generate()
    old.pull_events()
    new = generate(pipeline_id="pipe-2", supersedes="pipe-1", yaml_sha256="b" * 64, at=at(5))
    old.supersede(superseded_by="pipe-2", at=at(5), by="svc-pipelines")

    assert (old.status, old.superseded_by) == (DefinitionStatus.SUPERSEDED, "pipe-2")
    [event] = validated(old)
    assert (event["type"], event["supersededByPipelineId"]) == ("PipelineSuperseded", "pipe-2")
    assert validated(new)[0]["supersedes"] == "pipe-1"
    PipelineDefinition.ensure_path_free(old, module_id="module-2")  # a superseded one holds nothing


def test_superseding_twice_or_by_itself_changes_nothing() -> None:
    definition = generate()
    definition.supersede(superseded_by="pipe-2", at=at(1), by="svc")
    definition.pull_events()
    before = definition.wire()

    with pytest.raises(DefinitionAlreadySuperseded):
        definition.supersede(superseded_by="pipe-3", at=at(2), by="svc")
    with pytest.raises(CannotSupersedeItself):
        definition.supersede(superseded_by="pipe-1", at=at(2), by="svc")
    assert definition.wire() == before
    assert not definition.has_pending_events


# Pipeline run


def test_start_records_pipeline_run_started_with_pending_stages() -> None:
    run = start()

    assert run.status is RunStatus.STARTED
    assert run.finished_at is None
    [event] = validated(run)
    assert event["type"] == "PipelineRunStarted"
    assert [s["status"] for s in event["stageRuns"]] == ["Pending", "Pending"]
    assert (event["reason"], event["moduleType"], event["repositoryId"]) == ("ci", "library", "repo-1")


def test_start_needs_an_existing_active_definition() -> None:
    with pytest.raises(PipelineDefinitionNotFound):
        PipelineRun.start(
            pipeline_run_id="run-1",
            definition=None,
            pipeline_id="pipe-1",
            branch="main",
            commit_sha="1" * 40,
            build_number="1",
            reason=RunReason.MANUAL,
            at=AT,
            by="alice",
        )
    superseded = generate()
    superseded.supersede(superseded_by="pipe-2", at=AT, by="svc")
    with pytest.raises(PipelineDefinitionSuperseded):
        start(superseded)


def test_progress_moves_the_run_in_progress_and_derives_stage_states() -> None:
    run = start()
    run.pull_events()

    run.record_progress([job("Build", "compile", ItemStatus.IN_PROGRESS)], at=at(1), by="ci")

    assert run.status is RunStatus.IN_PROGRESS
    assert [s.status for s in run.stage_runs] == [ItemStatus.IN_PROGRESS, ItemStatus.PENDING]
    [event] = validated(run)
    assert (event["type"], event["status"]) == ("PipelineRunProgressed", "InProgress")


@pytest.mark.parametrize(
    ("reports", "error"),
    [
        ([job("Deploy", "x", ItemStatus.PENDING)], UnknownJob),
        ([job("Build", "test", ItemStatus.PENDING)] * 2, DuplicateJobReport),
    ],
)
def test_a_malformed_report_changes_nothing(reports: list[JobReport], error: type[Exception]) -> None:
    run = start()
    run.pull_events()
    before = run.wire()

    with pytest.raises(error):
        run.record_progress(reports, at=at(1), by="ci")
    assert run.wire() == before
    assert not run.has_pending_events


def test_an_older_or_equal_report_is_stale() -> None:
    run = start()
    run.record_progress([job("Build", "test", ItemStatus.IN_PROGRESS)], at=at(2), by="ci")
    run.pull_events()
    before = run.wire()

    for moment in (at(1), at(2)):
        with pytest.raises(OutdatedProgressReport):
            run.record_progress([job("Build", "test", ItemStatus.PENDING)], at=moment, by="ci")
    assert run.wire() == before
    assert not run.has_pending_events


def test_complete_from_started_passes_through_the_implied_in_progress() -> None:
    run = start()
    run.pull_events()

    run.complete(RunResult.FAILED, jobs=ALL_SUCCEEDED, at=at(10), by="ci")

    assert (run.status, run.finished_at) == (RunStatus.FAILED, at(10))
    [event] = validated(run)
    assert (event["type"], event["status"], event["finishedAt"]) == (
        "PipelineRunCompleted",
        "Failed",
        "2025-03-01T09:40:00Z",
    )


def test_nothing_is_accepted_after_the_terminal_status() -> None:
    run = start()
    run.complete(RunResult.SUCCEEDED, jobs=ALL_SUCCEEDED, at=at(10), by="ci")
    run.pull_events()
    before = run.wire()

    with pytest.raises(RunAlreadyFinished):
        run.record_progress([job("Build", "test", ItemStatus.IN_PROGRESS)], at=at(11), by="ci")
    with pytest.raises(RunAlreadyFinished):
        run.complete(RunResult.CANCELED, at=at(12), by="ci")
    assert isinstance(RunAlreadyFinished("r", "Succeeded"), StaleMessage)
    assert run.wire() == before
    assert not run.has_pending_events


def test_a_run_cannot_finish_before_it_started() -> None:
    run = start()
    run.pull_events()

    with pytest.raises(FinishedBeforeStarted):
        run.complete(RunResult.SUCCEEDED, at=at(-1), by="ci")
    assert (run.status, run.finished_at) == (RunStatus.STARTED, None)


def test_finished_at_is_only_set_in_a_terminal_status() -> None:
    run = start()
    with pytest.raises(ValueError, match="finishedAt"):
        PipelineRun.model_validate({**run.wire(), "finishedAt": at(1).isoformat()})


REPORTS = [
    ([job("Build", "compile", ItemStatus.IN_PROGRESS)], at(1)),
    (
        [
            job("Build", "compile", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
            job("Build", "test", ItemStatus.IN_PROGRESS),
        ],
        at(2),
    ),
    ([job("Build", "test", ItemStatus.COMPLETED, JobResult.FAILED)], at(3)),
    ([job("Pack", "push", ItemStatus.IN_PROGRESS)], at(4)),
]


def state(run: PipelineRun) -> dict[str, Any]:
    """What delivery order must not change (audit stamps record the last message handled)."""
    wire = run.wire()
    return {key: wire[key] for key in ("status", "stageRuns", "finishedAt")}


def deliver(order: list[tuple[list[JobReport], datetime]]) -> PipelineRun:
    run = start()
    for reports, moment in order:
        with contextlib.suppress(StaleMessage):
            run.record_progress(reports, at=moment, by="ci")
    return run


def test_any_order_of_progress_reports_with_duplicates_ends_in_the_in_order_state() -> None:
    expected = state(deliver(REPORTS))

    for order in itertools.permutations(REPORTS):
        for duplicated in range(len(order)):
            assert state(deliver([*order, order[duplicated]])) == expected


def test_any_order_including_the_completion_ends_in_the_in_order_state() -> None:
    def outcome(order: list[Any]) -> dict[str, Any]:
        run = start()
        for item in order:
            # A stale report is acknowledged and changes nothing, as the runtime does.
            with contextlib.suppress(StaleMessage):
                if item == "complete":
                    run.complete(RunResult.SUCCEEDED, jobs=ALL_SUCCEEDED, at=at(9), by="ci")
                else:
                    run.record_progress(item[0], at=item[1], by="ci")
        return state(run)

    messages: list[Any] = [*REPORTS[:3], "complete"]
    expected = outcome(messages)
    assert expected["status"] == "Succeeded"
    for order in itertools.permutations(messages):
        assert outcome([*order, "complete"]) == expected


# Build result


def finished_run(
    result: RunResult = RunResult.SUCCEEDED, jobs: list[JobReport] = ALL_SUCCEEDED
) -> PipelineRun:
    run = start()
    run.complete(result, jobs=jobs, at=at(10), by="ci")
    run.pull_events()
    return run


ARTIFACT = ArtifactItem(name="orders.1.2.0.nupkg", uri="blob://artifacts/ab", sha256="b" * 64, size=2048)


def record(run: PipelineRun | None = None, **overrides: Any) -> BuildResult:
    fields: dict[str, Any] = {
        "build_result_id": "build-1",
        "run": run or finished_run(),
        "version": "1.2.0",
        "tests": TestSummary(passed=40, failed=0),
        "coverage": 87.5,
        "artifacts": [ARTIFACT],
        "logs_uri": "blob://logs/cd",
        "at": at(11),
        "by": "svc-pipelines",
    }
    return BuildResult.record_outcome(**{**fields, **overrides})


def test_record_outcome_emits_build_completed_with_the_brief_payload() -> None:
    result = record()

    [event] = validated(result)
    assert event == {
        "type": "BuildCompleted",
        "buildResultId": "build-1",
        "pipelineRunId": "run-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "moduleId": "module-1",
        "moduleType": "library",
        "repositoryId": "repo-1",
        "commitSha": "1" * 40,
        "branch": "main",
        "status": "Succeeded",
        "version": "1.2.0",
        "artifacts": [
            {"name": "orders.1.2.0.nupkg", "uri": "blob://artifacts/ab", "sha256": "b" * 64, "size": 2048}
        ],
        "testsPassed": 40,
        "testsFailed": 0,
        "coverage": 87.5,
        "logsUri": "blob://logs/cd",
        "completedAt": "2025-03-01T09:41:00Z",
    }


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        (ALL_SUCCEEDED, BuildStatus.SUCCEEDED),
        (
            [*ALL_SUCCEEDED[:2], job("Pack", "push", ItemStatus.COMPLETED, JobResult.CANCELED)],
            BuildStatus.CANCELED,
        ),
        (
            [
                job("Build", "compile", ItemStatus.COMPLETED, JobResult.FAILED),
                ALL_SUCCEEDED[1],
                job("Pack", "push", ItemStatus.COMPLETED, JobResult.CANCELED),
            ],
            BuildStatus.FAILED,
        ),
        (ALL_SUCCEEDED[:2], BuildStatus.CANCELED),  # a job that never finished
    ],
)
def test_the_status_is_derived_from_the_jobs_not_the_reported_result(
    jobs: list[JobReport], expected: BuildStatus
) -> None:
    assert record(finished_run(RunResult.SUCCEEDED, jobs)).status is expected


def test_a_build_result_needs_a_finished_run() -> None:
    with pytest.raises(RunNotFinished):
        record(start())


def test_artifact_names_are_unique() -> None:
    with pytest.raises(DuplicateArtifactName):
        record(artifacts=[ARTIFACT, ARTIFACT])


def test_one_build_result_per_run() -> None:
    existing = record()

    BuildResult.ensure_first_for_run(None, build_result_id="build-2")
    BuildResult.ensure_first_for_run(existing, build_result_id="build-1")  # the same one again
    with pytest.raises(DuplicateBuildResult):
        BuildResult.ensure_first_for_run(existing, build_result_id="build-2")


def test_artifacts_are_immutable_once_recorded() -> None:
    result = record()
    result.pull_events()
    before = result.wire()
    other = ArtifactItem(name="other", uri="blob://artifacts/ef", sha256="c" * 64, size=1)

    result.record_artifacts([ARTIFACT])  # the same artifacts again: nothing to change
    with pytest.raises(ArtifactsImmutable):
        result.record_artifacts([ARTIFACT, other])
    with pytest.raises(ArtifactsImmutable):
        result.artifacts = (other,)
    with pytest.raises(ValueError, match="frozen"):
        result.artifacts[0].size = 1  # type: ignore[misc]
    assert result.wire() == before
    assert not result.has_pending_events


@pytest.mark.parametrize("coverage", [-0.1, 100.5, float("nan")])
def test_coverage_is_a_percentage(coverage: float) -> None:
    with pytest.raises(ValueError, match="CoveragePercentage"):
        record(coverage=coverage)
