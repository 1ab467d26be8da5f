"""BuildResult: the normalised outcome of a finished pipeline run."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic_core import to_jsonable_python

from services.pipelines.domain.errors import (
    ArtifactsImmutable,
    DuplicateBuildResult,
    RunNotFinished,
)
from services.pipelines.domain.outcome import ArtifactItem, TestSummary
from services.pipelines.domain.run import ItemStatus, JobResult, JobRun, PipelineRun
from services.pipelines.domain.values import CoveragePercentage, FeedReference, ModuleType
from shared_kernel.domain import AggregateRoot
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import (
    BlobReference,
    BranchName,
    CommitSha,
    Identifier,
    SemanticVersion,
)


class BuildStatus(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


def derive_build_status(jobs: Iterable[JobRun], unreported: JobResult = JobResult.CANCELED) -> BuildStatus:
    """Any failed job fails the build; else any canceled job cancels it.

    A job with no final report counts as ``unreported``: canceled while the
    run waits for it; the run's own result once the provider's word is all
    there will be (see ``PipelineRun.settle``).
    """
    results = [job.result if job.status is ItemStatus.COMPLETED else unreported for job in jobs]
    if JobResult.FAILED in results:
        return BuildStatus.FAILED
    if JobResult.CANCELED in results or None in results:
        return BuildStatus.CANCELED
    return BuildStatus.SUCCEEDED


class BuildResult(AggregateRoot):
    """The one build result of a pipeline run; its artifacts never change once recorded."""

    aggregate_type = "BuildResult"
    id_field = "build_result_id"

    build_result_id: Identifier
    pipeline_run_id: Identifier
    pipeline_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    repository_id: Identifier
    commit_sha: CommitSha
    branch: BranchName
    status: BuildStatus
    # ``version`` is the aggregate's concurrency token: the built version is ``build_version``
    # here and ``version`` in BuildCompleted.
    build_version: SemanticVersion
    target_feed: FeedReference
    tests: TestSummary | None
    coverage: CoveragePercentage | None
    artifacts: tuple[ArtifactItem, ...]
    logs_uri: BlobReference | None
    completed_at: datetime

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "artifacts":
            raise ArtifactsImmutable(self.build_result_id)
        super().__setattr__(name, value)

    @staticmethod
    def ensure_first_for_run(existing: BuildResult | None, *, build_result_id: str) -> None:
        """Refuse a second build result of a run (``existing``: the one found by pipelineRunId)."""
        if existing is not None and existing.build_result_id != Identifier(build_result_id):
            raise DuplicateBuildResult(existing.pipeline_run_id, existing.build_result_id)

    @classmethod
    def record_outcome(
        cls, *, build_result_id: str, run: PipelineRun, target_feed: str, at: datetime, by: str
    ) -> BuildResult:
        """Record the outcome of the finished ``run``; the status comes from its jobs."""
        outcome = run.outcome
        if not run.is_finished or outcome is None:
            raise RunNotFinished(run.pipeline_run_id, run.status)
        artifacts = outcome.artifacts
        result = cls(
            build_result_id=build_result_id,
            pipeline_run_id=run.pipeline_run_id,
            pipeline_id=run.pipeline_id,
            tenant_id=run.tenant_id,
            project_id=run.project_id,
            module_id=run.module_id,
            module_type=run.module_type,
            repository_id=run.repository_id,
            commit_sha=run.commit_sha,
            branch=run.branch,
            status=derive_build_status(run.jobs, unreported=run.unreported_jobs_count_as),
            build_version=outcome.version,
            target_feed=target_feed,
            tests=outcome.tests,
            coverage=outcome.coverage,
            artifacts=tuple(artifacts),
            logs_uri=outcome.logs_uri,
            completed_at=at,
            **audit_fields(at=at, by=by),
        )
        result.record(
            "BuildCompleted",
            to_jsonable_python(
                {
                    "buildResultId": result.build_result_id,
                    "pipelineRunId": result.pipeline_run_id,
                    "pipelineId": result.pipeline_id,
                    "tenantId": result.tenant_id,
                    "projectId": result.project_id,
                    "moduleId": result.module_id,
                    "moduleType": result.module_type,
                    "repositoryId": result.repository_id,
                    "commitSha": result.commit_sha,
                    "branch": result.branch,
                    "status": result.status,
                    "version": result.build_version,
                    "targetFeed": result.target_feed,
                    "artifacts": [artifact.wire() for artifact in result.artifacts],
                    "testsPassed": result.tests.passed if result.tests else None,
                    "testsFailed": result.tests.failed if result.tests else None,
                    "coverage": result.coverage,
                    "logsUri": result.logs_uri,
                    "completedAt": at,
                }
            ),
            at=at,
            by=by,
        )
        return result
