"""Named refusals of the Pipelines context.

The family decides what the runtime does: a ``RuleViolation`` is committed as
a rejection, a ``StaleMessage`` is acknowledged and logged, a
``PrerequisiteMissing`` is retried later.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from shared_kernel.domain import PrerequisiteMissing, RuleViolation, StaleMessage

# Pipeline definition


class DuplicateDefinitionPath(RuleViolation):
    def __init__(self, repository_id: str, path: str, holder: str) -> None:
        super().__init__(f"repository {repository_id} already has pipeline definition {holder} at {path!r}")


class UnknownTemplateVersion(RuleViolation):
    def __init__(self, version: str, known: Collection[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"template version {version!r} is not a published version of the templates (known: {listed})"
        )


class PipelineHasNoStages(RuleViolation):
    def __init__(self) -> None:
        super().__init__("a pipeline definition needs at least one stage")


class DuplicateStageName(RuleViolation):
    def __init__(self, name: str) -> None:
        super().__init__(f"a pipeline may have only one stage named {name!r}")


class DuplicateVariableName(RuleViolation):
    def __init__(self, name: str) -> None:
        super().__init__(f"a pipeline may define variable {name!r} only once")


class CannotSupersedeItself(RuleViolation):
    def __init__(self, pipeline_id: str) -> None:
        super().__init__(f"pipeline definition {pipeline_id} cannot supersede itself")


class DefinitionAlreadySuperseded(StaleMessage):
    def __init__(self, pipeline_id: str, superseded_by: str) -> None:
        super().__init__(f"pipeline definition {pipeline_id} is already superseded by {superseded_by}")


class PipelineDefinitionSuperseded(RuleViolation):
    def __init__(self, pipeline_id: str) -> None:
        super().__init__(f"pipeline definition {pipeline_id} is superseded; run the current definition")


class PipelineDefinitionNotFound(PrerequisiteMissing):
    def __init__(self, pipeline_id: str) -> None:
        super().__init__(f"pipeline definition {pipeline_id} does not exist (yet)")


# Pipeline run


class UnknownJob(RuleViolation):
    def __init__(self, pipeline_run_id: str, stage: str, job: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} has no job {job!r} in stage {stage!r}")


class DuplicateJobReport(RuleViolation):
    def __init__(self, stage: str, job: str) -> None:
        super().__init__(f"a report may give the state of job {stage}/{job} only once")


class FinishedBeforeStarted(RuleViolation):
    def __init__(self, pipeline_run_id: str, started_at: datetime, finished_at: datetime) -> None:
        super().__init__(
            f"pipeline run {pipeline_run_id} started at {started_at.isoformat()}; "
            f"it cannot finish at {finished_at.isoformat()}"
        )


class OutdatedProgressReport(StaleMessage):
    def __init__(self, pipeline_run_id: str, at: datetime) -> None:
        super().__init__(
            f"pipeline run {pipeline_run_id}: every job in the report of {at.isoformat()} "
            "already has a report as recent or more recent"
        )


class RunAlreadyFinished(StaleMessage):
    def __init__(self, pipeline_run_id: str, status: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} is already {status}")


class IllegalRunTransition(RuleViolation):
    def __init__(self, pipeline_run_id: str, current: str, target: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} cannot go from {current} to {target}")


# Build result


class DuplicateBuildResult(RuleViolation):
    def __init__(self, pipeline_run_id: str, build_result_id: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} already has build result {build_result_id}")


class RunNotFinished(RuleViolation):
    def __init__(self, pipeline_run_id: str, status: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} is {status}; a build result needs a finished run")


class DuplicateArtifactName(RuleViolation):
    def __init__(self, name: str) -> None:
        super().__init__(f"a build may produce only one artifact named {name!r}")


class ArtifactsImmutable(RuleViolation):
    def __init__(self, build_result_id: str) -> None:
        super().__init__(f"the artifacts of build result {build_result_id} are recorded and cannot change")


# What the handlers find missing or already done


class PipelineAlreadyGenerated(StaleMessage):
    def __init__(self, pipeline_id: str) -> None:
        super().__init__(f"pipeline definition {pipeline_id} is already generated")


class PipelineNotRenderable(RuleViolation):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the pipeline definition cannot be rendered: {reason}")


class RepositoryNotKnownYet(PrerequisiteMissing):
    def __init__(self, repository_id: str) -> None:
        super().__init__(f"repository {repository_id} has not been announced by Source Control (yet)")


class RepositoryNotBuilt(RuleViolation):
    def __init__(self, repository_id: str, kind: str) -> None:
        super().__init__(f"repository {repository_id} is a {kind} repository: its commits are not built")


class RunAlreadyStarted(StaleMessage):
    def __init__(self, pipeline_run_id: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} has already started")


class RunNotStartedYet(PrerequisiteMissing):
    def __init__(self, pipeline_run_id: str) -> None:
        super().__init__(f"pipeline run {pipeline_run_id} has not started (yet); the report waits for it")


class BranchHeadUnknown(PrerequisiteMissing):
    def __init__(self, repository_id: str, branch: str) -> None:
        super().__init__(f"no commit of branch {branch!r} of repository {repository_id} is known (yet)")
