"""Pipelines handlers: definitions from merges and commands, runs from commits, results from reports.

Source Control tells Pipelines about repositories (RepositoryProvisioned),
commits (CommitCreated) and merges (PullRequestMerged); Pipelines keeps what
it needs of them as its own read model. A merge into a module without a
definition generates one and commits its YAML through Source Control
(CreateCommit, the definition's id as the commit's artifactId). A commit on a
repository with an active definition starts a CI run. The CI provider's
reports (canonical, or Azure DevOps service hooks normalised by the ingress
adapter) move the run, and once it has finished and its jobs have settled the
build result is recorded (BuildCompleted). Ids the platform derives itself
(a run of a commit, the build result of a run, the commit of a definition) are
deterministic, so a redelivered message finds its own work instead of
repeating it.
"""

from __future__ import annotations

import re
from datetime import timedelta

import contracts
from contracts import pipelines as c
from contracts import source_control as sc
from services.pipelines.domain import errors
from services.pipelines.domain.build_result import BuildResult
from services.pipelines.domain.definition import (
    DefinitionStatus,
    PipelineDefinition,
    PipelineStage,
    PipelineVariable,
)
from services.pipelines.domain.outcome import ArtifactItem, RunOutcome, TestSummary
from services.pipelines.domain.run import ItemStatus, JobReport, JobResult, PipelineRun, RunResult
from services.pipelines.domain.source_repository import RepositoryKind, SourceRepository
from services.pipelines.domain.values import ModuleType, RunReason
from services.pipelines.ports import InvalidPipelineSpec, PipelineRenderer, PipelineSpec
from services.pipelines.settings import PipelinesSettings
from shared_kernel.blobs import BlobStore
from shared_kernel.durations import parse_duration
from shared_kernel.envelope import Envelope
from shared_kernel.ids import deterministic_id
from shared_kernel.logging import get_logger
from shared_kernel.messaging.handlers import HandlerRegistry, Message
from shared_kernel.persistence.unit_of_work import UnitOfWork

log = get_logger(__name__)


def image_repository(module_id: str) -> str:
    """A module's image repository name: OCI repositories are lower-case."""
    return re.sub(r"[^a-z0-9._-]+", "-", module_id.lower()).strip("._-") or "module"


def _job_reports(reports: list[c.JobStateReport]) -> list[JobReport]:
    return [
        JobReport(
            stage=report.stage,
            job=report.job,
            status=ItemStatus(report.status),
            result=JobResult(report.result) if report.result is not None else None,
            started_at=report.started_at,
            finished_at=report.finished_at,
        )
        for report in reports
    ]


def _definition_changes(
    current: PipelineDefinition | None, path: str, content: str
) -> list[sc.FileChangeRequest]:
    """The file changes of a (re)generated definition: its YAML written, a superseded one's moved."""
    if current is None:
        return [sc.FileChangeRequest(path=path, operation="Add", content=content)]
    if current.definition_path == path:
        return [sc.FileChangeRequest(path=path, operation="Edit", content=content)]
    return [
        sc.FileChangeRequest(path=current.definition_path, operation="Delete"),
        sc.FileChangeRequest(path=path, operation="Add", content=content),
    ]


async def _repository(uow: UnitOfWork, repository_id: str) -> SourceRepository:
    repository = await uow.get(SourceRepository, repository_id)
    if repository is None:
        raise errors.RepositoryNotKnownYet(repository_id)
    return repository


async def _run(uow: UnitOfWork, pipeline_run_id: str) -> PipelineRun:
    run = await uow.get(PipelineRun, pipeline_run_id)
    if run is None:
        # A report before its run: retried later, dead-lettered (not dropped) if the run never comes.
        raise errors.RunNotStartedYet(pipeline_run_id)
    return run


class PipelinesHandlers:
    def __init__(self, settings: PipelinesSettings, renderer: PipelineRenderer, blobs: BlobStore) -> None:
        self._settings = settings
        self._renderer = renderer
        self._blobs = blobs

    def registry(self) -> HandlerRegistry:
        registry = HandlerRegistry(contracts.registry)
        registry.add(c.GeneratePipeline, self.generate_pipeline)
        registry.add(c.RunPipeline, self.run_pipeline)
        registry.add(c.RecordPipelineRunProgress, self.record_progress)
        registry.add(c.CompletePipelineRun, self.complete_run)
        registry.add(c.SettleBuildResult, self.settle_build_result)
        registry.add(sc.RepositoryProvisioned, self.on_repository_provisioned)
        registry.add(sc.CommitCreated, self.on_commit_created)
        registry.add(sc.PullRequestMerged, self.on_pull_request_merged)
        return registry

    # -- what Source Control tells ----------------------------------------------------

    async def on_repository_provisioned(self, message: Message[sc.RepositoryProvisioned]) -> None:
        event, uow = message.payload, message.uow
        if await uow.get(SourceRepository, event.repository_id) is not None:
            return  # already known: announced again by a replay
        repository = SourceRepository(
            repository_id=event.repository_id,
            tenant_id=event.tenant_id,
            project_id=event.project_id,
            name=event.name,
            module_id=event.module_id,
            kind=RepositoryKind(event.kind),
            default_branch=event.default_branch,
            heads={str(event.default_branch): event.initial_commit_sha},
            created_at=event.created_at,
            created_by=event.provisioned_by,
            updated_at=event.created_at,
            updated_by=event.provisioned_by,
        )
        uow.add(repository)

    async def on_commit_created(self, message: Message[sc.CommitCreated]) -> None:
        event, uow = message.payload, message.uow
        repository = await _repository(uow, event.repository_id)
        repository.learn_from_commit(
            event.branch,
            event.sha,
            [change.path for change in event.file_changes if change.operation != "Delete"],
        )
        uow.changed(repository)
        if not repository.builds:
            return
        definitions = await uow.find_all(
            PipelineDefinition, repository_id=event.repository_id, status=DefinitionStatus.ACTIVE
        )
        for definition in definitions:
            await self._start_run(
                uow,
                message.envelope,
                pipeline_run_id=deterministic_id("run", definition.pipeline_id, event.commit_id),
                definition=definition,
                branch=event.branch,
                commit_sha=event.sha,
                reason=RunReason.CI,
                by=self._settings.identity,
            )

    async def on_pull_request_merged(self, message: Message[sc.PullRequestMerged]) -> None:
        event, uow = message.payload, message.uow
        repository = await _repository(uow, event.repository_id)
        repository.learn_from_merge(event.source_branch, event.target_branch, event.merge_commit_sha)
        uow.changed(repository)
        module_id = event.module_id or repository.module_id
        if event.target_branch != repository.default_branch or not repository.builds or module_id is None:
            log.info(
                "merge needs no pipeline",
                target_branch=str(event.target_branch),
                repository_kind=str(repository.kind),
                module_id=module_id,
            )
            return
        existing = await uow.find(
            PipelineDefinition,
            repository_id=event.repository_id,
            module_id=module_id,
            status=DefinitionStatus.ACTIVE,
        )
        if existing is not None:
            return  # the module has its definition: the merge is built by the CI trigger
        await self._generate(
            uow,
            message.envelope,
            pipeline_id=deterministic_id("pl", event.repository_id, module_id, event.pull_request_id),
            repository=repository,
            module_id=module_id,
            module_type=repository.module_type,
            definition_path=self._settings.definition_path,
            template_version=self._settings.template_version,
            target_feed=None,
            variables=[],
            by=self._settings.identity,
        )

    # -- commands ---------------------------------------------------------------------

    async def generate_pipeline(self, message: Message[c.GeneratePipeline]) -> None:
        command, uow = message.payload, message.uow
        repository = await _repository(uow, command.repository_id)
        if not repository.builds:
            raise errors.RepositoryNotBuilt(repository.repository_id, repository.kind)
        await self._generate(
            uow,
            message.envelope,
            pipeline_id=command.pipeline_id,
            repository=repository,
            module_id=command.module_id,
            module_type=ModuleType(command.module_type),
            definition_path=command.definition_path,
            template_version=command.template_version,
            target_feed=command.target_feed,
            variables=[
                PipelineVariable(name=v.name, value=v.value, is_secret=v.is_secret) for v in command.variables
            ],
            by=command.requested_by,
        )

    async def run_pipeline(self, message: Message[c.RunPipeline]) -> None:
        command, uow = message.payload, message.uow
        definition = await uow.get(PipelineDefinition, command.pipeline_id)
        commit_sha = command.commit_sha
        if commit_sha is None and definition is not None:
            repository = await _repository(uow, definition.repository_id)
            commit_sha = repository.head_of(command.branch)
            if commit_sha is None:
                raise errors.BranchHeadUnknown(definition.repository_id, command.branch)
        await self._start_run(
            uow,
            message.envelope,
            pipeline_run_id=command.pipeline_run_id,
            definition=definition,
            pipeline_id=command.pipeline_id,
            branch=command.branch,
            commit_sha=commit_sha or "",
            reason=RunReason(command.reason),
            by=command.requested_by,
        )

    async def record_progress(self, message: Message[c.RecordPipelineRunProgress]) -> None:
        command, uow = message.payload, message.uow
        run = await _run(uow, command.pipeline_run_id)
        run.record_progress(_job_reports(command.jobs), at=command.reported_at, by=command.reported_by)
        await self._record_build_result_when_settled(uow, run, by=command.reported_by)

    async def complete_run(self, message: Message[c.CompletePipelineRun]) -> None:
        command, uow = message.payload, message.uow
        run = await _run(uow, command.pipeline_run_id)
        if run.is_finished:
            raise errors.RunAlreadyFinished(run.pipeline_run_id, run.status)
        logs_uri: str | None = command.logs_uri
        if command.logs is not None:
            # Content-addressed: a redelivered report stores the same blob, not a second one.
            logs_uri = (await self._blobs.put(command.logs.encode(), "text/plain; charset=utf-8")).uri
        tests = (
            TestSummary(passed=command.tests_passed or 0, failed=command.tests_failed or 0)
            if command.tests_passed is not None or command.tests_failed is not None
            else None
        )
        outcome = RunOutcome(
            version=command.version,
            tests=tests,
            coverage=command.coverage,
            artifacts=tuple(
                ArtifactItem(name=a.name, uri=a.uri, sha256=a.sha256, size=a.size) for a in command.artifacts
            ),
            logs_uri=logs_uri,
            reported_at=command.finished_at,
            reported_by=command.reported_by,
        )
        run.complete(
            RunResult(command.result),
            jobs=_job_reports(command.jobs),
            outcome=outcome,
            at=command.finished_at,
            by=command.reported_by,
        )
        await self._record_build_result_when_settled(uow, run, by=command.reported_by)
        if not run.awaits_build_result:
            # Some jobs have not reported: wait for them, but not for ever.
            timeout = timedelta(seconds=parse_duration(self._settings.build_result_settle_timeout))
            settle = c.SettleBuildResult(pipeline_run_id=run.pipeline_run_id)
            uow.send(settle, due_at=message.received_at + timeout)

    async def settle_build_result(self, message: Message[c.SettleBuildResult]) -> None:
        uow = message.uow
        run = await _run(uow, message.payload.pipeline_run_id)
        if run.awaits_build_result:
            return  # every job reported in time: the build result is recorded already
        run.settle(at=message.envelope.occurred_at)
        uow.changed(run)
        await self._record_build_result_when_settled(uow, run, by=self._settings.identity)

    # -- the work ---------------------------------------------------------------------

    async def _generate(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        *,
        pipeline_id: str,
        repository: SourceRepository,
        module_id: str,
        module_type: ModuleType,
        definition_path: str,
        template_version: str,
        target_feed: str | None,
        variables: list[PipelineVariable],
        by: str,
    ) -> None:
        if await uow.get(PipelineDefinition, pipeline_id) is not None:
            raise errors.PipelineAlreadyGenerated(pipeline_id)
        settings = self._settings
        current = await uow.find(
            PipelineDefinition,
            repository_id=repository.repository_id,
            module_id=module_id,
            status=DefinitionStatus.ACTIVE,
        )
        PipelineDefinition.ensure_path_free(
            await uow.find(
                PipelineDefinition,
                repository_id=repository.repository_id,
                definition_path=definition_path,
                status=DefinitionStatus.ACTIVE,
            ),
            module_id=module_id,
        )
        is_library = module_type is ModuleType.LIBRARY
        repository_name = image_repository(module_id)
        feed = (
            (target_feed or settings.package_feed)
            if is_library
            else (target_feed or f"{settings.container_registry}/{repository_name}")
        )
        try:
            rendered = self._renderer.render(
                PipelineSpec(
                    module_id=module_id,
                    module_type=module_type.value,
                    repository_name=repository.name,
                    default_branch=repository.default_branch,
                    template_version=template_version,
                    solution_path=f"{repository.name}.sln",
                    target_feed=feed if is_library else None,
                    container_registry=None if is_library else settings.registry_service_connection,
                    image_repository=None if is_library else feed.split("/", 1)[-1],
                    version_prefix=settings.version_prefix,
                )
            )
        except InvalidPipelineSpec as invalid:
            raise errors.PipelineNotRenderable(str(invalid)) from invalid
        commit_id = deterministic_id("commit", pipeline_id)
        at = envelope.occurred_at
        definition = PipelineDefinition.generate(
            pipeline_id=pipeline_id,
            repository_id=repository.repository_id,
            tenant_id=envelope.tenant_id,
            project_id=repository.project_id or envelope.project_id or "",
            module_id=module_id,
            module_type=module_type,
            definition_path=definition_path,
            template_version=template_version,
            known_versions=settings.known_template_versions,
            target_feed=feed,
            stages=[PipelineStage(name=name, jobs=jobs) for name, jobs in rendered.stages],
            variables=variables,
            yaml_sha256=rendered.sha256,
            commit_id=commit_id,
            supersedes=current.pipeline_id if current is not None else None,
            at=at,
            by=by,
        )
        if current is not None:
            # Saved first (it was loaded first), so the path is free when the new one takes it.
            current.supersede(superseded_by=pipeline_id, at=at, by=by)
        uow.add(definition)
        uow.send(
            sc.CreateCommit(
                commit_id=commit_id,
                repository_id=repository.repository_id,
                branch=repository.default_branch,
                message=f"Generate the pipeline definition of {module_id} (templates {template_version})",
                artifact_id=pipeline_id,
                authored_by=settings.identity,
                file_changes=_definition_changes(current, definition_path, rendered.content),
            )
        )

    async def _start_run(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        *,
        pipeline_run_id: str,
        definition: PipelineDefinition | None,
        branch: str,
        commit_sha: str,
        reason: RunReason,
        by: str,
        pipeline_id: str | None = None,
    ) -> None:
        if await uow.get(PipelineRun, pipeline_run_id) is not None:
            raise errors.RunAlreadyStarted(pipeline_run_id)
        wanted = pipeline_id or (definition.pipeline_id if definition else "")
        number = await uow.next_number(PipelineRun, "run_number", pipeline_id=wanted)
        uow.add(
            PipelineRun.start(
                pipeline_run_id=pipeline_run_id,
                definition=definition,
                pipeline_id=wanted,
                branch=branch,
                commit_sha=commit_sha,
                build_number=f"{self._settings.version_prefix}.{number}",
                reason=reason,
                at=envelope.occurred_at,
                by=by,
            )
        )

    async def _record_build_result_when_settled(self, uow: UnitOfWork, run: PipelineRun, *, by: str) -> None:
        if not run.awaits_build_result:
            return
        build_result_id = deterministic_id("build", run.pipeline_run_id)
        recorded = await uow.find(BuildResult, pipeline_run_id=run.pipeline_run_id)
        if recorded is not None and recorded.build_result_id == build_result_id:
            return  # recorded by an earlier report; a later one only fills in job details
        BuildResult.ensure_first_for_run(recorded, build_result_id=build_result_id)
        definition = await uow.get(PipelineDefinition, run.pipeline_id)
        if definition is None:
            raise errors.PipelineDefinitionNotFound(run.pipeline_id)
        assert run.finished_at is not None  # a finished run has its finishing time
        uow.add(
            BuildResult.record_outcome(
                build_result_id=build_result_id,
                run=run,
                target_feed=definition.target_feed,
                at=run.finished_at,
                by=by,
            )
        )
