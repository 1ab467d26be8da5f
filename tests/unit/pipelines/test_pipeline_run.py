"""PipelineRun: start, progress, completion with its outcome, late job reports, awaiting the build result."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from pydantic import ValidationError

from services.pipelines.domain import (
    ArtifactItem,
    ItemStatus,
    JobReport,
    JobResult,
    PipelineRun,
    RunOutcome,
    RunReason,
    RunResult,
    RunStatus,
    TestSummary,
)
from services.pipelines.domain.errors import (
    DuplicateArtifactName,
    DuplicateJobReport,
    FinishedBeforeStarted,
    OutdatedProgressReport,
    PipelineDefinitionNotFound,
    PipelineDefinitionSuperseded,
    RunAlreadyFinished,
    UnknownJob,
)
from shared_kernel.domain import PrerequisiteMissing, RuleViolation, StaleMessage
from tests.support.aggregates import refusal, validated
from tests.unit.pipelines.builders import (
    ALL_SUCCEEDED,
    ARTIFACT,
    AT,
    at,
    finished_run,
    generate,
    job,
    outcome,
    start,
)

pytestmark = pytest.mark.unit


def job_states(run: PipelineRun) -> list[tuple[str, ItemStatus, JobResult | None]]:
    return [(job.name, job.status, job.result) for job in run.jobs]


# Start


def test_start_records_pipeline_run_started_with_pending_stages() -> None:
    run = start()

    assert run.status is RunStatus.STARTED
    assert (run.finished_at, run.outcome) == (None, None)
    [event] = validated(run)
    assert event["type"] == "PipelineRunStarted"
    assert [s["status"] for s in event["stageRuns"]] == ["Pending", "Pending"]
    assert (event["reason"], event["moduleType"], event["repositoryId"]) == ("ci", "library", "repo-1")


def test_start_needs_an_existing_definition() -> None:
    with pytest.raises(PipelineDefinitionNotFound) as missing:
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
    assert missing.value.rule == "PipelineDefinitionNotFound"
    assert isinstance(missing.value, PrerequisiteMissing)  # retried: the definition may arrive later


def test_start_needs_the_active_definition() -> None:
    superseded = generate()
    superseded.supersede(superseded_by="pipe-2", at=AT, by="svc")

    with pytest.raises(PipelineDefinitionSuperseded) as refused:
        start(superseded)
    assert refused.value.rule == "PipelineDefinitionSuperseded"


# Progress


def test_progress_moves_the_run_in_progress_and_derives_stage_states() -> None:
    run = start()
    run.pull_events()

    run.record_progress([job("Build", "compile", ItemStatus.IN_PROGRESS)], at=at(1), by="ci")

    assert run.status is RunStatus.IN_PROGRESS
    assert [s.status for s in run.stage_runs] == [ItemStatus.IN_PROGRESS, ItemStatus.PENDING]
    [event] = validated(run)
    assert (event["type"], event["status"]) == ("PipelineRunProgressed", "InProgress")


@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
@pytest.mark.parametrize(
    ("reports", "error", "rule"),
    [
        ([job("Deploy", "x", ItemStatus.PENDING)], UnknownJob, "UnknownJob"),
        ([job("Build", "test", ItemStatus.COMPLETED)] * 2, DuplicateJobReport, "DuplicateJobReport"),
    ],
)
def test_a_malformed_report_is_refused_and_changes_nothing(
    reports: list[JobReport], error: type[RuleViolation], rule: str, finished: bool
) -> None:
    run = start()
    if finished:
        run.complete(RunResult.SUCCEEDED, outcome=outcome(), at=at(10), by="ci")

    refused = refusal(run, error, lambda: run.record_progress(reports, at=at(11), by="ci"))
    assert refused.rule == rule
    assert isinstance(refused, RuleViolation)


@pytest.mark.parametrize("moment", [at(1), at(2)], ids=["older", "same-instant"])
def test_an_older_or_equal_report_is_stale(moment: datetime) -> None:
    run = start()
    run.record_progress([job("Build", "test", ItemStatus.IN_PROGRESS)], at=at(2), by="ci")

    stale = refusal(
        run,
        OutdatedProgressReport,
        lambda: run.record_progress([job("Build", "test", ItemStatus.PENDING)], at=moment, by="ci"),
    )
    assert stale.rule == "OutdatedProgressReport"
    assert isinstance(stale, StaleMessage)


def test_a_report_applies_only_to_the_jobs_it_is_newest_for() -> None:
    run = start()
    run.record_progress([job("Build", "test", ItemStatus.COMPLETED, JobResult.SUCCEEDED)], at=at(5), by="ci")

    run.record_progress(
        [job("Build", "compile", ItemStatus.IN_PROGRESS), job("Build", "test", ItemStatus.IN_PROGRESS)],
        at=at(3),
        by="ci",
    )

    assert job_states(run) == [
        ("compile", ItemStatus.IN_PROGRESS, None),
        ("test", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
        ("push", ItemStatus.PENDING, None),
    ]
    assert [job.reported_at for job in run.jobs] == [at(3), at(5), None]


@pytest.mark.parametrize("further_first", [False, True], ids=["in-order", "further-first"])
def test_of_two_reports_of_one_instant_the_further_state_wins(further_first: bool) -> None:
    nearer = [job("Build", "test", ItemStatus.IN_PROGRESS)]
    further = [job("Build", "test", ItemStatus.COMPLETED, JobResult.SUCCEEDED)]
    run = start()
    run.record_progress(further if further_first else nearer, at=at(2), by="ci")

    if further_first:
        stale = refusal(run, OutdatedProgressReport, lambda: run.record_progress(nearer, at=at(2), by="ci"))
        assert stale.rule == "OutdatedProgressReport"
    else:
        run.record_progress(further, at=at(2), by="ci")

    assert job_states(run)[1] == ("test", ItemStatus.COMPLETED, JobResult.SUCCEEDED)
    assert run.jobs[1].reported_at == at(2)


def test_the_same_report_of_one_instant_twice_is_stale() -> None:
    report = [job("Build", "test", ItemStatus.IN_PROGRESS)]
    run = start()
    run.record_progress(report, at=at(2), by="ci")

    stale = refusal(run, OutdatedProgressReport, lambda: run.record_progress(report, at=at(2), by="ci"))
    assert stale.rule == "OutdatedProgressReport"


# Completion


def test_complete_from_started_passes_through_the_implied_in_progress_and_keeps_the_outcome() -> None:
    run = start()
    run.pull_events()
    reported = outcome()

    run.complete(RunResult.FAILED, jobs=ALL_SUCCEEDED, outcome=reported, at=at(10), by="ci")

    assert (run.status, run.finished_at, run.outcome) == (RunStatus.FAILED, at(10), reported)
    assert all(job.reported_at == at(10) for job in run.jobs)
    [event] = validated(run)
    assert (event["type"], event["status"], event["finishedAt"]) == (
        "PipelineRunCompleted",
        "Failed",
        "2025-03-01T09:40:00Z",
    )


def test_the_outcome_survives_storage() -> None:
    run = finished_run(reported=outcome(tests=None, coverage=None, logs_uri=None, artifacts=()))

    assert PipelineRun.model_validate(run.wire()) == run
    assert PipelineRun.model_validate(run.wire()).outcome == run.outcome


def test_a_completion_naming_no_jobs_leaves_them_as_reported() -> None:
    run = start()
    run.record_progress([job("Build", "compile", ItemStatus.IN_PROGRESS)], at=at(1), by="ci")
    jobs_before = run.jobs

    run.complete(RunResult.SUCCEEDED, outcome=outcome(), at=at(10), by="ci")

    assert run.jobs == jobs_before
    assert (run.status, run.finished_at) == (RunStatus.SUCCEEDED, at(10))


def test_duplicate_artifact_names_are_refused_at_completion() -> None:
    run = start()
    run.record_progress([job("Build", "compile", ItemStatus.IN_PROGRESS)], at=at(1), by="ci")
    renamed = ArtifactItem(name=ARTIFACT.name, uri="blob://sha256/" + "c" * 64, sha256="c" * 64, size=1)

    refused = refusal(
        run,
        DuplicateArtifactName,
        lambda: run.complete(
            RunResult.SUCCEEDED,
            jobs=ALL_SUCCEEDED,
            outcome=outcome(artifacts=(ARTIFACT, renamed)),
            at=at(10),
            by="ci",
        ),
    )
    assert refused.rule == "DuplicateArtifactName"
    assert isinstance(refused, RuleViolation)
    assert (run.status, run.finished_at, run.outcome) == (RunStatus.IN_PROGRESS, None, None)


def test_a_run_cannot_finish_before_it_started() -> None:
    run = start()

    refused = refusal(
        run,
        FinishedBeforeStarted,
        lambda: run.complete(RunResult.SUCCEEDED, outcome=outcome(), at=at(-1), by="ci"),
    )
    assert refused.rule == "FinishedBeforeStarted"
    assert (run.status, run.finished_at, run.outcome) == (RunStatus.STARTED, None, None)


@pytest.mark.parametrize("result", list(RunResult))
def test_a_second_completion_is_stale(result: RunResult) -> None:
    run = finished_run()

    stale = refusal(
        run,
        RunAlreadyFinished,
        lambda: run.complete(
            result, jobs=ALL_SUCCEEDED, outcome=outcome(version="9.9.9"), at=at(12), by="ci"
        ),
    )
    assert stale.rule == "RunAlreadyFinished"
    assert isinstance(stale, StaleMessage)
    assert run.outcome == outcome()


def test_finished_at_is_only_set_in_a_terminal_status() -> None:
    run = start()
    with pytest.raises(ValueError, match="finishedAt"):
        PipelineRun.model_validate({**run.wire(), "finishedAt": at(1).isoformat()})


# Job reports after the completion


def test_a_late_report_fills_in_a_job_the_completion_did_not_name() -> None:
    run = start()
    run.complete(RunResult.SUCCEEDED, jobs=ALL_SUCCEEDED[:2], outcome=outcome(), at=at(10), by="ci")
    run.pull_events()

    run.record_progress([job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED)], at=at(12), by="ci")

    assert (run.status, run.finished_at, run.outcome) == (RunStatus.SUCCEEDED, at(10), outcome())
    assert job_states(run)[2] == ("push", ItemStatus.COMPLETED, JobResult.SUCCEEDED)
    assert run.stage_runs[1].status is ItemStatus.COMPLETED
    [event] = validated(run)
    assert (event["type"], event["status"], event["reportedAt"]) == (
        "PipelineRunProgressed",
        "Succeeded",
        "2025-03-01T09:42:00Z",
    )


def test_a_late_report_older_than_the_completion_still_fills_in_an_unreported_job() -> None:
    run = start()
    run.complete(RunResult.SUCCEEDED, outcome=outcome(), at=at(10), by="ci")

    run.record_progress([job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED)], at=at(8), by="ci")

    assert job_states(run)[2] == ("push", ItemStatus.COMPLETED, JobResult.SUCCEEDED)
    assert run.jobs[2].reported_at == at(8)
    assert run.status is RunStatus.SUCCEEDED


@pytest.mark.parametrize("moment", [at(9), at(10)], ids=["older", "same-instant"])
def test_a_late_report_not_newer_than_the_completion_of_a_job_is_stale(moment: datetime) -> None:
    run = finished_run()

    stale = refusal(
        run,
        OutdatedProgressReport,
        lambda: run.record_progress([job("Pack", "push", ItemStatus.IN_PROGRESS)], at=moment, by="ci"),
    )
    assert stale.rule == "OutdatedProgressReport"
    assert isinstance(stale, StaleMessage)


def test_a_late_report_older_than_a_late_job_report_is_stale() -> None:
    run = start()
    run.complete(RunResult.SUCCEEDED, outcome=outcome(), at=at(10), by="ci")
    run.record_progress([job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED)], at=at(12), by="ci")

    stale = refusal(
        run,
        OutdatedProgressReport,
        lambda: run.record_progress([job("Pack", "push", ItemStatus.IN_PROGRESS)], at=at(11), by="ci"),
    )
    assert stale.rule == "OutdatedProgressReport"


# Awaiting the build result


def completed_without_jobs(result: RunResult = RunResult.SUCCEEDED) -> PipelineRun:
    run = start()
    run.complete(result, outcome=outcome(), at=at(10), by="ci")
    return run


def settle_all(run: PipelineRun) -> None:
    run.record_progress(ALL_SUCCEEDED, at=at(12), by="ci")


def in_progress_with_every_job_completed() -> PipelineRun:
    run = start()
    settle_all(run)
    return run


def completed_then_settled() -> PipelineRun:
    run = completed_without_jobs()
    settle_all(run)
    return run


def failed_with_a_job_never_finished() -> PipelineRun:
    return finished_run(RunResult.FAILED, [job("Build", "compile", ItemStatus.COMPLETED, JobResult.FAILED)])


@pytest.mark.parametrize(
    ("make", "awaits"),
    [
        (start, False),
        (in_progress_with_every_job_completed, False),  # no completion, no outcome yet
        (finished_run, True),  # the completion named every job, completed
        (completed_without_jobs, False),  # Azure's build.complete: the jobs are still to report
        (completed_then_settled, True),
        (failed_with_a_job_never_finished, False),
        (lambda: completed_without_jobs(RunResult.CANCELED), True),  # a canceled run waits for nothing
        (lambda: finished_run(RunResult.CANCELED, ALL_SUCCEEDED[:1]), True),
    ],
    ids=[
        "started",
        "in-progress-all-jobs-completed",
        "completed-naming-every-job",
        "completed-naming-no-job",
        "completed-then-jobs-settled",
        "failed-with-an-unfinished-job",
        "canceled-naming-no-job",
        "canceled-with-unfinished-jobs",
    ],
)
def test_a_run_awaits_its_build_result_once_finished_and_settled(
    make: Callable[[], PipelineRun], awaits: bool
) -> None:
    assert make().awaits_build_result is awaits


def test_a_run_awaits_its_build_result_from_the_report_that_settles_its_last_job() -> None:
    run = completed_without_jobs()
    run.record_progress(ALL_SUCCEEDED[:2], at=at(11), by="ci")
    assert not run.awaits_build_result

    run.record_progress(ALL_SUCCEEDED[2:], at=at(12), by="ci")
    assert run.awaits_build_result


# The outcome


def test_an_outcome_may_lack_tests_coverage_artifacts_and_logs() -> None:
    reported = RunOutcome(version="v2.0.0-rc.1", reported_at=at(10), reported_by="ci")

    assert (reported.version, reported.tests, reported.coverage) == ("2.0.0-rc.1", None, None)
    assert (reported.artifacts, reported.logs_uri) == ((), None)


@pytest.mark.parametrize("coverage", [-0.1, 100.5, float("nan")])
def test_coverage_is_a_percentage(coverage: float) -> None:
    with pytest.raises(ValidationError, match="CoveragePercentage"):
        outcome(coverage=coverage)


def test_test_counts_are_not_negative() -> None:
    with pytest.raises(ValidationError):
        TestSummary(passed=-1, failed=0)


def test_an_outcome_is_frozen() -> None:
    reported = outcome()
    with pytest.raises(ValidationError, match="frozen"):
        reported.version = "9.9.9"  # type: ignore[assignment]
