"""PipelineRun: one execution of a pipeline definition, as reported by the CI provider.

Progress reports are last-writer-wins per job (by report time), and a stage's
state is derived from its jobs, so duplicate and out-of-order reports end in
the state in-order delivery gives. The completion settles the run's status
and replaces the jobs it names; a job report that arrives after it still
fills in a job it did not name (the provider's hooks are not ordered), while
an older report of a job is stale. The outcome the completion carries waits
on the run until every job has completed (or the run was canceled), and the
build result is then recorded from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator
from pydantic_core import to_jsonable_python

from services.pipelines.domain.definition import PipelineDefinition
from services.pipelines.domain.errors import (
    DuplicateArtifactName,
    DuplicateJobReport,
    FinishedBeforeStarted,
    IllegalRunTransition,
    OutdatedProgressReport,
    PipelineDefinitionNotFound,
    PipelineDefinitionSuperseded,
    RunAlreadyFinished,
    RunNotFinished,
    UnknownJob,
)
from services.pipelines.domain.outcome import RunOutcome
from services.pipelines.domain.values import ModuleType, RunReason
from shared_kernel.domain import AggregateRoot, DomainModel, StateMachine
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import BranchName, CommitSha, Identifier


class RunStatus(StrEnum):
    STARTED = "Started"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class RunResult(StrEnum):
    """The terminal statuses a completion may report."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


LIFECYCLE = StateMachine(
    {
        RunStatus.STARTED: {RunStatus.IN_PROGRESS},
        RunStatus.IN_PROGRESS: {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED},
    }
)


class ItemStatus(StrEnum):
    """Where a stage or job is: Azure DevOps' waiting, running, completed."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"


_PROGRESS = (ItemStatus.PENDING, ItemStatus.IN_PROGRESS, ItemStatus.COMPLETED)


class JobResult(StrEnum):
    SUCCEEDED = "Succeeded"
    SUCCEEDED_WITH_ISSUES = "SucceededWithIssues"
    FAILED = "Failed"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"


class JobRun(DomainModel):
    """One job of a run, as last reported (``reported_at``: the report it comes from)."""

    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    status: ItemStatus = ItemStatus.PENDING
    result: JobResult | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reported_at: datetime | None = None


class StageRun(DomainModel):
    """One stage of a run; its status and times are derived from its jobs."""

    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    status: ItemStatus = ItemStatus.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    jobs: tuple[JobRun, ...]

    @classmethod
    def of(cls, name: str, jobs: Sequence[JobRun]) -> StageRun:
        if all(job.status is ItemStatus.PENDING for job in jobs):
            status = ItemStatus.PENDING
        elif all(job.status is ItemStatus.COMPLETED for job in jobs):
            status = ItemStatus.COMPLETED
        else:
            status = ItemStatus.IN_PROGRESS
        starts = [job.started_at for job in jobs if job.started_at is not None]
        ends = [job.finished_at for job in jobs if job.finished_at is not None]
        return cls(
            name=name,
            status=status,
            started_at=min(starts, default=None),
            finished_at=max(ends, default=None) if status is ItemStatus.COMPLETED else None,
            jobs=tuple(jobs),
        )


class JobReport(DomainModel):
    """The CI provider's report of one job's state."""

    model_config = DomainModel.model_config | {"frozen": True}

    stage: Identifier
    job: Identifier
    status: ItemStatus
    result: JobResult | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class PipelineRun(AggregateRoot):
    """A run of an active pipeline definition, Started → InProgress → Succeeded | Failed | Canceled."""

    aggregate_type = "PipelineRun"
    id_field = "pipeline_run_id"

    pipeline_run_id: Identifier
    pipeline_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    repository_id: Identifier
    branch: BranchName
    commit_sha: CommitSha
    build_number: str = Field(min_length=1, max_length=255)
    reason: RunReason
    status: RunStatus = RunStatus.STARTED
    started_at: datetime
    finished_at: datetime | None = None
    stage_runs: list[StageRun]
    outcome: RunOutcome | None = None
    # Set when the provider's reports of some jobs never came: the build result was
    # recorded without them, taking the run's result for theirs.
    settled_at: datetime | None = None

    @model_validator(mode="after")
    def _finished_only_when_terminal(self) -> Self:
        if (self.finished_at is not None) != LIFECYCLE.is_terminal(self.status):
            raise ValueError("finishedAt is set exactly when the run is in a terminal status")
        return self

    @classmethod
    def start(
        cls,
        *,
        pipeline_run_id: str,
        definition: PipelineDefinition | None,
        pipeline_id: str,
        branch: str,
        commit_sha: str,
        build_number: str,
        reason: RunReason,
        at: datetime,
        by: str,
    ) -> PipelineRun:
        """Start a run of ``definition`` (None: the definition ``pipeline_id`` is not known yet)."""
        if definition is None or definition.pipeline_id != Identifier(pipeline_id):
            raise PipelineDefinitionNotFound(pipeline_id)
        if not definition.is_active:
            raise PipelineDefinitionSuperseded(definition.pipeline_id)
        run = cls(
            pipeline_run_id=pipeline_run_id,
            pipeline_id=definition.pipeline_id,
            tenant_id=definition.tenant_id,
            project_id=definition.project_id,
            module_id=definition.module_id,
            module_type=definition.module_type,
            repository_id=definition.repository_id,
            branch=branch,
            commit_sha=commit_sha,
            build_number=build_number,
            reason=reason,
            started_at=at,
            stage_runs=[
                StageRun.of(stage.name, [JobRun(name=job) for job in stage.jobs])
                for stage in definition.stages
            ],
            **audit_fields(at=at, by=by),
        )
        run._record("PipelineRunStarted", {"startedAt": at, "startedBy": by}, at=at, by=by)
        return run

    @property
    def is_finished(self) -> bool:
        return LIFECYCLE.is_terminal(self.status)

    @property
    def jobs(self) -> list[JobRun]:
        return [job for stage in self.stage_runs for job in stage.jobs]

    @property
    def unreported_jobs_count_as(self) -> JobResult:
        """What a job without a final report counts as for the build status (see ``settle``)."""
        if self.settled_at is None or self.status is RunStatus.CANCELED:
            return JobResult.CANCELED
        return JobResult.SUCCEEDED if self.status is RunStatus.SUCCEEDED else JobResult.FAILED

    def settle(self, *, at: datetime) -> None:
        """Stop waiting for job reports that have not come: the run's result speaks for those jobs.

        Azure DevOps may send no job event for a stage it skipped, and a hook
        can be lost; a finished run does not wait for ever for its build result.
        """
        if not self.is_finished or self.outcome is None:
            raise RunNotFinished(self.pipeline_run_id, self.status)
        if self.awaits_build_result:
            return
        self.settled_at = at

    @property
    def awaits_build_result(self) -> bool:
        """Finished with its outcome reported, and every job settled (or the run canceled)."""
        if not self.is_finished or self.outcome is None:
            return False
        settled = all(job.status is ItemStatus.COMPLETED for job in self.jobs)
        return settled or self.status is RunStatus.CANCELED or self.settled_at is not None

    def record_progress(self, reports: Sequence[JobReport], *, at: datetime, by: str) -> None:
        """Apply the job states reported at ``at``; a job keeps a more recent report it has.

        After the completion, a report still fills in the jobs it is the newest
        report of; the run's status no longer changes.
        """
        self._ensure_known(reports)
        fresh = [report for report in reports if self._is_newer(report, at)]
        if not fresh:
            raise OutdatedProgressReport(self.pipeline_run_id, at)
        self.stage_runs = self._with(fresh, at)
        if not self.is_finished:
            self._advance(RunStatus.IN_PROGRESS)
        self._record("PipelineRunProgressed", {"reportedAt": at, "reportedBy": by}, at=at, by=by)

    def complete(
        self,
        result: RunResult,
        *,
        jobs: Sequence[JobReport] = (),
        outcome: RunOutcome,
        at: datetime,
        by: str,
    ) -> None:
        """Finish the run with the CI provider's ``result``, the final states of ``jobs`` and its ``outcome``.

        A run still Started passes through the implied InProgress.
        """
        status = RunStatus(result)
        if self.is_finished:
            raise RunAlreadyFinished(self.pipeline_run_id, self.status)
        if at < self.started_at:
            raise FinishedBeforeStarted(self.pipeline_run_id, self.started_at, at)
        self._ensure_known(jobs)
        self._ensure_can_reach(status)
        names = [artifact.name for artifact in outcome.artifacts]
        for name in names:
            if names.count(name) > 1:
                raise DuplicateArtifactName(name)
        # A job report newer than the completion (hooks are not ordered) keeps its word.
        self.stage_runs = self._with([report for report in jobs if self._is_newer(report, at)], at)
        # The terminal status and finishedAt change together; assigned one at a
        # time, the model validator would see a half-done transition.
        self.__dict__.update(status=status, finished_at=at, outcome=outcome)
        self._record(
            "PipelineRunCompleted",
            {"startedAt": self.started_at, "finishedAt": at, "completedBy": by},
            at=at,
            by=by,
        )

    def _ensure_known(self, reports: Sequence[JobReport]) -> None:
        seen: set[tuple[str, str]] = set()
        for report in reports:
            key = (report.stage, report.job)
            if key in seen:
                raise DuplicateJobReport(*key)
            seen.add(key)
            self._job(report)

    def _job(self, report: JobReport) -> JobRun:
        for stage in self.stage_runs:
            if stage.name == report.stage:
                for job in stage.jobs:
                    if job.name == report.job:
                        return job
        raise UnknownJob(self.pipeline_run_id, report.stage, report.job)

    def _is_newer(self, report: JobReport, at: datetime) -> bool:
        job = self._job(report)
        if job.reported_at is None or at > job.reported_at:
            return True
        # Two reports of one instant: the further state wins, whichever came first.
        return at == job.reported_at and _PROGRESS.index(report.status) > _PROGRESS.index(job.status)

    def _with(self, reports: Sequence[JobReport], at: datetime) -> list[StageRun]:
        by_key = {(report.stage, report.job): report for report in reports}
        stages = []
        for stage in self.stage_runs:
            jobs = []
            for job in stage.jobs:
                report = by_key.get((stage.name, job.name))
                if report is None:
                    jobs.append(job)
                    continue
                jobs.append(
                    JobRun(
                        name=job.name,
                        status=report.status,
                        result=report.result,
                        started_at=report.started_at,
                        finished_at=report.finished_at,
                        reported_at=at,
                    )
                )
            stages.append(StageRun.of(stage.name, jobs))
        return stages

    def _ensure_can_reach(self, target: RunStatus) -> None:
        current = self.status
        if current is RunStatus.STARTED and target is not RunStatus.IN_PROGRESS:
            current = RunStatus.IN_PROGRESS  # a terminal report implies InProgress
        if current is not target and not LIFECYCLE.can(current, target):
            raise IllegalRunTransition(self.pipeline_run_id, self.status, target)

    def _advance(self, target: RunStatus) -> None:
        self._ensure_can_reach(target)
        if self.status is not target:
            self.status = target

    def _record(self, event_type: str, fields: dict[str, object], *, at: datetime, by: str) -> None:
        """Record an event carrying the run's identity, status and stages."""
        scope = {
            "pipelineRunId": self.pipeline_run_id,
            "pipelineId": self.pipeline_id,
            "tenantId": self.tenant_id,
            "projectId": self.project_id,
            "moduleId": self.module_id,
            "moduleType": self.module_type,
            "repositoryId": self.repository_id,
            "branch": self.branch,
            "commitSha": self.commit_sha,
            "buildNumber": self.build_number,
            "reason": self.reason,
            "status": self.status,
            "stageRuns": [stage.wire() for stage in self.stage_runs],
        }
        self.record(event_type, to_jsonable_python({**scope, **fields}), at=at, by=by)
