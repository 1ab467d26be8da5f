"""BuildResult: recorded from a finished run's outcome, status from its jobs, artifacts immutable."""

from __future__ import annotations

import pytest

from contracts.pipelines import BuildCompleted
from services.pipelines.domain import (
    ArtifactItem,
    BuildResult,
    BuildStatus,
    ItemStatus,
    JobReport,
    JobResult,
    PipelineRun,
    RunResult,
    TestSummary,
)
from services.pipelines.domain.errors import ArtifactsImmutable, DuplicateBuildResult, RunNotFinished
from shared_kernel.domain import RuleViolation
from tests.support.aggregates import refusal, validated
from tests.unit.pipelines.builders import ALL_SUCCEEDED, at, finished_run, job, outcome, record, start

pytestmark = pytest.mark.unit


def test_record_outcome_emits_build_completed_from_the_runs_outcome() -> None:
    result = record()

    [event] = validated(result)
    assert event == {
        "type": "BuildCompleted",
        "buildResultId": "build-1",
        "pipelineRunId": "run-1",
        "pipelineId": "pipe-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "moduleId": "module-1",
        "moduleType": "library",
        "repositoryId": "repo-1",
        "commitSha": "1" * 40,
        "branch": "main",
        "status": "Succeeded",
        "version": "1.2.0",
        "targetFeed": "acme/packages",
        "artifacts": [
            {
                "name": "orders.1.2.0.nupkg",
                "uri": "blob://sha256/" + "b" * 64,
                "sha256": "b" * 64,
                "size": 2048,
            }
        ],
        "testsPassed": 40,
        "testsFailed": 0,
        "coverage": 87.5,
        "logsUri": "blob://logs/cd",
        "completedAt": "2025-03-01T09:41:00Z",
    }


def test_the_build_result_holds_what_the_outcome_reported() -> None:
    reported = outcome(version="v1.3.0-rc.2", tests=TestSummary(passed=7, failed=2), coverage=12)
    result = record(finished_run(reported=reported), target_feed="registry.acme.io/orders")

    assert (result.build_version, result.tests, result.coverage) == ("1.3.0-rc.2", reported.tests, 12.0)
    assert (result.artifacts, result.logs_uri) == (reported.artifacts, reported.logs_uri)
    assert (result.pipeline_id, result.target_feed) == ("pipe-1", "registry.acme.io/orders")
    [event] = result.pull_events()
    completed = BuildCompleted.model_validate(event.payload)
    assert (completed.version, completed.tests_passed, completed.tests_failed) == ("1.3.0-rc.2", 7, 2)
    assert completed.target_feed == "registry.acme.io/orders"


def test_an_outcome_without_tests_coverage_artifacts_or_logs_leaves_them_out_of_build_completed() -> None:
    bare = outcome(tests=None, coverage=None, artifacts=(), logs_uri=None)
    result = record(finished_run(reported=bare))

    assert (result.tests, result.coverage, result.artifacts, result.logs_uri) == (None, None, (), None)
    [event] = result.pull_events()
    completed = BuildCompleted.model_validate(event.payload)
    assert completed.wire() == event.payload
    assert (completed.tests_passed, completed.tests_failed, completed.coverage) == (None, None, None)
    assert (completed.logs_uri, completed.artifacts) == (None, [])


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        (ALL_SUCCEEDED, BuildStatus.SUCCEEDED),
        (
            [*ALL_SUCCEEDED[:2], job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED_WITH_ISSUES)],
            BuildStatus.SUCCEEDED,
        ),
        (
            [*ALL_SUCCEEDED[:2], job("Pack", "push", ItemStatus.COMPLETED, JobResult.SKIPPED)],
            BuildStatus.SUCCEEDED,
        ),
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
        ([*ALL_SUCCEEDED[:2], job("Pack", "push", ItemStatus.COMPLETED)], BuildStatus.CANCELED),  # no result
    ],
    ids=[
        "all-succeeded",
        "with-issues",
        "skipped",
        "one-canceled",
        "failed-beats-canceled",
        "never-finished",
        "completed-without-result",
    ],
)
def test_the_status_is_derived_from_the_jobs_not_the_reported_result(
    jobs: list[JobReport], expected: BuildStatus
) -> None:
    assert record(finished_run(RunResult.SUCCEEDED, jobs)).status is expected


def test_the_status_counts_the_job_reports_that_came_after_the_completion() -> None:
    run = start()
    run.complete(RunResult.SUCCEEDED, outcome=outcome(), at=at(10), by="ci")
    run.record_progress(
        [*ALL_SUCCEEDED[:2], job("Pack", "push", ItemStatus.COMPLETED, JobResult.FAILED)], at=at(12), by="ci"
    )
    assert run.awaits_build_result

    result = record(run, at=at(13))

    assert result.status is BuildStatus.FAILED
    assert validated(result)[0]["status"] == "Failed"


def test_a_canceled_run_records_a_canceled_build_without_waiting_for_its_jobs() -> None:
    run = finished_run(RunResult.CANCELED, ALL_SUCCEEDED[:1])
    assert run.awaits_build_result

    assert record(run).status is BuildStatus.CANCELED


def test_a_build_result_needs_a_finished_run() -> None:
    run = start()
    run.record_progress(ALL_SUCCEEDED, at=at(5), by="ci")

    refused = refusal(run, RunNotFinished, lambda: record(run))
    assert refused.rule == "RunNotFinished"
    assert isinstance(refused, RuleViolation)


def test_a_build_result_needs_the_outcome_of_the_run() -> None:
    stored_without_outcome = PipelineRun.model_validate({**finished_run().wire(), "outcome": None})
    assert not stored_without_outcome.awaits_build_result

    refused = refusal(stored_without_outcome, RunNotFinished, lambda: record(stored_without_outcome))
    assert refused.rule == "RunNotFinished"


def test_one_build_result_per_run() -> None:
    existing = record()

    BuildResult.ensure_first_for_run(None, build_result_id="build-2")
    BuildResult.ensure_first_for_run(existing, build_result_id="build-1")  # the same one again
    second = refusal(
        existing,
        DuplicateBuildResult,
        lambda: BuildResult.ensure_first_for_run(existing, build_result_id="build-2"),
    )
    assert second.rule == "DuplicateBuildResult"


def test_artifacts_are_immutable_once_recorded() -> None:
    result = record()
    other = ArtifactItem(name="other", uri="blob://sha256/" + "c" * 64, sha256="c" * 64, size=1)

    def reassign() -> None:
        result.artifacts = (other,)

    assert refusal(result, ArtifactsImmutable, reassign).rule == "ArtifactsImmutable"
    before = result.wire()
    with pytest.raises(ValueError, match="frozen"):
        result.artifacts[0].size = 1
    assert result.wire() == before
