"""PipelineRun: any delivery order of progress reports and the completion ends in the in-order state.

The broker redelivers and does not order a provider's hooks, so the run must
converge: whatever the order, with duplicates, the stages, status,
finishedAt, outcome and whether the run awaits its build result are those of
in-order delivery. A duplicate or outdated message is refused as stale
(a ``StaleMessage``, acknowledged by the runtime) and changes nothing.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from services.pipelines.domain import (
    BuildStatus,
    ItemStatus,
    JobReport,
    JobResult,
    PipelineRun,
    RunResult,
    derive_build_status,
)
from shared_kernel.domain import StaleMessage
from tests.unit.pipelines.builders import at, job, outcome, start

pytestmark = pytest.mark.unit

SHUFFLES = 400


@dataclass(frozen=True)
class Progress:
    at: datetime
    jobs: tuple[JobReport, ...]


@dataclass(frozen=True)
class Completion:
    at: datetime
    result: RunResult
    jobs: tuple[JobReport, ...] = ()


Message = Progress | Completion


def progress(minutes: int, *jobs: JobReport) -> Progress:
    return Progress(at(minutes), jobs)


def apply(run: PipelineRun, message: Message) -> None:
    if isinstance(message, Completion):
        run.complete(message.result, jobs=message.jobs, outcome=outcome(), at=message.at, by="ci")
    else:
        run.record_progress(message.jobs, at=message.at, by="ci")


def deliver(messages: Sequence[Message]) -> PipelineRun:
    """A run fed ``messages`` in order, each stale refusal checked to have changed nothing."""
    run = start()
    for message in messages:
        run.pull_events()
        before = run.wire()
        try:
            apply(run, message)
        except StaleMessage:
            # Acknowledged by the runtime: it must leave the run exactly as it was.
            assert run.wire() == before
            assert not run.has_pending_events
    return run


def state(run: PipelineRun) -> dict[str, Any]:
    """What delivery order must not change (audit stamps record the last message handled)."""
    wire = run.wire()
    return {
        **{key: wire[key] for key in ("status", "stageRuns", "finishedAt", "outcome")},
        "awaitsBuildResult": run.awaits_build_result,
    }


def shuffled_with_duplicates(messages: Sequence[Message], seed: int) -> Iterator[list[Message]]:
    """``SHUFFLES`` seeded orders of ``messages``, each with one or two of them delivered twice."""
    shuffler = random.Random(seed)
    for _ in range(SHUFFLES):
        order = list(messages)
        shuffler.shuffle(order)
        for duplicate in shuffler.sample(list(messages), k=shuffler.randint(1, 2)):
            order.insert(shuffler.randint(0, len(order)), duplicate)
        yield order


COMPILE_RUNNING = job("Build", "compile", ItemStatus.IN_PROGRESS)
COMPILE_SUCCEEDED = job("Build", "compile", ItemStatus.COMPLETED, JobResult.SUCCEEDED)
TEST_RUNNING = job("Build", "test", ItemStatus.IN_PROGRESS)
TEST_SUCCEEDED = job("Build", "test", ItemStatus.COMPLETED, JobResult.SUCCEEDED)
TEST_FAILED = job("Build", "test", ItemStatus.COMPLETED, JobResult.FAILED)
PUSH_WAITING = job("Pack", "push", ItemStatus.PENDING)
PUSH_RUNNING = job("Pack", "push", ItemStatus.IN_PROGRESS)
PUSH_SUCCEEDED = job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED)
PUSH_SKIPPED = job("Pack", "push", ItemStatus.COMPLETED, JobResult.SKIPPED)

PROGRESS: list[Message] = [
    progress(1, COMPILE_RUNNING),
    progress(2, COMPILE_SUCCEEDED, TEST_RUNNING),
    progress(3, TEST_FAILED),
    progress(4, PUSH_RUNNING),
]

# In chronological order: a completion naming every job (final states), after the job reports.
NAMING_EVERY_JOB: list[Message] = [
    *PROGRESS,
    Completion(at(9), RunResult.FAILED, (COMPILE_SUCCEEDED, TEST_FAILED, PUSH_SKIPPED)),
]

# Azure's build.complete names no job: the jobs settle by their own reports, before or after it,
# two of them in one instant (the further state wins).
NAMING_NO_JOB: list[Message] = [
    progress(1, COMPILE_RUNNING),
    progress(2, COMPILE_SUCCEEDED, TEST_RUNNING),
    progress(3, TEST_SUCCEEDED),
    progress(4, PUSH_WAITING),
    progress(4, PUSH_RUNNING),
    Completion(at(5), RunResult.SUCCEEDED),
    progress(6, PUSH_SUCCEEDED),
]

# The last job never reports its end: the run never awaits its build result, in any order.
NAMING_NO_JOB_UNSETTLED = NAMING_NO_JOB[:-1]

# A completion naming the jobs of one stage; the other stage's job reports before and after it.
NAMING_SOME_JOBS: list[Message] = [
    progress(1, COMPILE_RUNNING, PUSH_WAITING),
    progress(2, COMPILE_SUCCEEDED, TEST_RUNNING),
    progress(4, PUSH_RUNNING),
    Completion(at(5), RunResult.SUCCEEDED, (COMPILE_SUCCEEDED, TEST_SUCCEEDED)),
    progress(7, PUSH_SUCCEEDED),
]

# A canceled run waits for no job.
CANCELED_NAMING_NO_JOB: list[Message] = [
    progress(1, COMPILE_RUNNING),
    progress(2, COMPILE_SUCCEEDED, TEST_RUNNING),
    Completion(at(3), RunResult.CANCELED),
    progress(4, PUSH_RUNNING),
]


def test_any_order_of_progress_reports_with_duplicates_ends_in_the_in_order_state() -> None:
    expected = state(deliver(PROGRESS))

    for order in itertools.permutations(PROGRESS):
        for duplicated in range(len(order)):
            assert state(deliver([*order, order[duplicated]])) == expected


def test_any_order_with_a_completion_naming_every_job_ends_in_the_in_order_state() -> None:
    expected = state(deliver(NAMING_EVERY_JOB))
    assert (expected["status"], expected["finishedAt"]) == ("Failed", "2025-03-01T09:39:00Z")
    assert expected["awaitsBuildResult"]

    for order in itertools.permutations(NAMING_EVERY_JOB):
        assert state(deliver(order)) == expected
        for duplicated in order:
            assert state(deliver([*order, duplicated])) == expected


@pytest.mark.parametrize(
    ("messages", "status", "awaits", "build_status"),
    [
        (NAMING_EVERY_JOB, "Failed", True, BuildStatus.FAILED),
        (NAMING_NO_JOB, "Succeeded", True, BuildStatus.SUCCEEDED),
        (NAMING_NO_JOB_UNSETTLED, "Succeeded", False, BuildStatus.CANCELED),
        (NAMING_SOME_JOBS, "Succeeded", True, BuildStatus.SUCCEEDED),
        (CANCELED_NAMING_NO_JOB, "Canceled", True, BuildStatus.CANCELED),
    ],
    ids=["naming-every-job", "naming-no-job", "naming-no-job-unsettled", "naming-some-jobs", "canceled"],
)
def test_any_shuffled_delivery_with_duplicates_ends_in_the_in_order_state(
    messages: list[Message], status: str, awaits: bool, build_status: BuildStatus
) -> None:
    in_order = deliver(messages)
    expected = state(in_order)
    assert (expected["status"], expected["awaitsBuildResult"]) == (status, awaits)
    assert expected["outcome"] == outcome().wire()
    assert derive_build_status(in_order.jobs) is build_status

    for order in shuffled_with_duplicates(messages, seed=len(messages)):
        assert state(deliver(order)) == expected, order


def test_the_in_order_delivery_without_jobs_awaits_the_build_result_only_once_settled() -> None:
    run = start()
    awaiting = []
    for message in NAMING_NO_JOB:
        apply(run, message)  # in order, no message is stale
        awaiting.append(run.awaits_build_result)

    assert awaiting == [False] * 6 + [True]


def test_a_job_report_newer_than_a_completion_naming_the_job_survives_it_in_any_order() -> None:
    messages: list[Message] = [
        progress(1, COMPILE_SUCCEEDED, TEST_SUCCEEDED, PUSH_RUNNING),
        Completion(at(5), RunResult.CANCELED, (COMPILE_SUCCEEDED, TEST_SUCCEEDED, PUSH_SKIPPED)),
        progress(6, job("Pack", "push", ItemStatus.COMPLETED, JobResult.FAILED)),
    ]
    expected = state(deliver(messages))

    for order in itertools.permutations(messages):
        run = deliver(order)
        # Delivered completion-last, the run shows push Skipped and its build would be Succeeded.
        assert derive_build_status(run.jobs) is BuildStatus.FAILED, order
        assert state(run) == expected, order
