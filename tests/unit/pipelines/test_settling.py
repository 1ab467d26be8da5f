"""A finished run whose jobs never all report gets its build result once settled: the run's
result speaks for the unreported jobs, a reported failure still fails the build."""

from __future__ import annotations

import pytest

from services.pipelines.domain import (
    BuildResult,
    BuildStatus,
    ItemStatus,
    JobReport,
    JobResult,
    PipelineRun,
    RunResult,
)
from services.pipelines.domain.errors import RunNotFinished
from tests.unit.pipelines.builders import at, job, outcome, start

pytestmark = pytest.mark.unit


def _finished_without_job_reports(result: RunResult, *reports: JobReport) -> PipelineRun:
    run = start()
    if reports:
        run.record_progress(list(reports), at=at(2), by="ci")
    run.complete(result, outcome=outcome(), at=at(10), by="ci")
    return run


@pytest.mark.parametrize(
    ("result", "expected"),
    [(RunResult.SUCCEEDED, BuildStatus.SUCCEEDED), (RunResult.FAILED, BuildStatus.FAILED)],
)
def test_unreported_jobs_take_the_run_result_once_settled(result: RunResult, expected: BuildStatus) -> None:
    run = _finished_without_job_reports(result)
    assert not run.awaits_build_result
    run.settle(at=at(20))
    assert run.awaits_build_result
    built = BuildResult.record_outcome(build_result_id="b-1", run=run, target_feed="feed", at=at(10), by="ci")
    assert built.status is expected


def test_a_reported_failure_still_fails_a_settled_build() -> None:
    failed = job("Build", "test", ItemStatus.COMPLETED, JobResult.FAILED)
    run = _finished_without_job_reports(RunResult.SUCCEEDED, failed)
    run.settle(at=at(20))
    built = BuildResult.record_outcome(build_result_id="b-1", run=run, target_feed="feed", at=at(10), by="ci")
    assert built.status is BuildStatus.FAILED


def test_a_run_still_running_cannot_be_settled() -> None:
    run = start()
    with pytest.raises(RunNotFinished):
        run.settle(at=at(20))
    assert run.settled_at is None
