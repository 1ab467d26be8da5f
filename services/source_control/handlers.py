"""Source Control handlers: one command, one aggregate method, through the Git port.

Each handler loads what it needs through the unit of work, lets the domain
guard its invariants *before* anything is written to Git, performs the Git
operation (idempotent by the command's eventId) and records the result.
A prerequisite that has not arrived yet (a repository, branch or pull
request) is "too early": the runtime retries the message later.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import contracts
from contracts import pipelines as pipelines_events
from contracts import source_control as c
from services.source_control.domain import errors
from services.source_control.domain.branch import Branch, BranchStatus
from services.source_control.domain.commit import Commit, FileChange
from services.source_control.domain.policy import (
    BranchPolicy,
    BranchPolicyBinding,
    PolicySettings,
    PolicyType,
)
from services.source_control.domain.pull_request import CheckStatus, PullRequest, PullRequestStatus
from services.source_control.domain.repository import Repository, RepositoryName, WebhookRegistration
from services.source_control.ports import BranchExists as GitBranchExists
from services.source_control.ports import (
    CommitIdentity,
    DefaultBranchNotDeletable,
    FileWrite,
    GitProvider,
    InvalidChange,
)
from services.source_control.ports import MergeConflict as GitMergeConflict
from services.source_control.ports import NothingToMerge as GitNothingToMerge
from shared_kernel.domain import InvalidValue, StaleMessage
from shared_kernel.ids import deterministic_id
from shared_kernel.logging import get_logger
from shared_kernel.messaging.handlers import HandlerRegistry, Message
from shared_kernel.persistence.unit_of_work import UnitOfWork

log = get_logger(__name__)


def identity(actor: str) -> CommitIdentity:
    """A Git author for a platform identity (a UPN keeps its address)."""
    email = actor if "@" in actor else f"{actor}@devops.local"
    return CommitIdentity(name=actor, email=email)


def default_branch_id(repository_id: str, branch: str) -> str:
    return deterministic_id("br", repository_id, branch)


async def _repository(uow: UnitOfWork, repository_id: str) -> Repository:
    repository = await uow.get(Repository, repository_id)
    if repository is None:
        raise errors.RepositoryNotProvisionedYet(repository_id)
    return repository


async def _active_branch(uow: UnitOfWork, repository_id: str, name: str) -> Branch | None:
    return await uow.find(Branch, repository_id=repository_id, name=name, status=BranchStatus.ACTIVE)


async def _pull_request(uow: UnitOfWork, pull_request_id: str) -> PullRequest:
    pull_request = await uow.get(PullRequest, pull_request_id)
    if pull_request is None:
        raise errors.PullRequestNotFoundYet(pull_request_id)
    return pull_request


def _writes(requests: Sequence[c.FileChangeRequest]) -> list[FileWrite]:
    writes = []
    for request in requests:
        content: bytes | None = None
        if request.content is not None:
            content = request.content.encode()
        elif request.content_base64 is not None:
            content = base64.b64decode(request.content_base64)
        writes.append(FileWrite(path=request.path, operation=request.operation, content=content))
    return writes


def _file_changes(writes: Sequence[FileWrite]) -> list[FileChange]:
    return [
        FileChange(
            path=write.path,
            operation=write.operation,
            content_sha256=hashlib.sha256(write.content).hexdigest() if write.content is not None else None,
        )
        for write in writes
    ]


class SourceControlHandlers:
    def __init__(
        self, git: GitProvider, bypass_identities: Sequence[str], build_check: str = "build"
    ) -> None:
        self._git = git
        self._bypass = list(bypass_identities)
        self._build_check = build_check

    def registry(self) -> HandlerRegistry:
        registry = HandlerRegistry(contracts.registry)
        registry.add(c.ProvisionRepository, self.provision_repository)
        registry.add(c.ChangeRepositorySetting, self.change_repository_setting)
        registry.add(c.RegisterWebhook, self.register_webhook)
        registry.add(c.ArchiveRepository, self.archive_repository)
        registry.add(c.CreateBranch, self.create_branch)
        registry.add(c.BindBranchPolicy, self.bind_branch_policy)
        registry.add(c.DeleteBranch, self.delete_branch)
        registry.add(c.CreateCommit, self.create_commit)
        registry.add(c.OpenPullRequest, self.open_pull_request)
        registry.add(c.RecordPullRequestReview, self.record_review)
        registry.add(c.RecordPullRequestCheck, self.record_check)
        registry.add(c.AddPullRequestComment, self.add_comment)
        registry.add(c.AbandonPullRequest, self.abandon_pull_request)
        registry.add(c.MergePullRequest, self.merge_pull_request)
        registry.add(pipelines_events.PipelineGenerated, self.on_pipeline_generated)
        registry.add(pipelines_events.BuildCompleted, self.on_build_completed)
        return registry

    # -- repositories -----------------------------------------------------------------

    async def provision_repository(self, message: Message[c.ProvisionRepository]) -> None:
        command, envelope, uow = message.payload, message.envelope, message.uow
        project_id = command.project_id or envelope.project_id
        if project_id is None:
            raise InvalidValue("ProvisionRepository needs a projectId (payload or envelope)")
        existing = await uow.get(Repository, command.repository_id)
        if existing is not None:
            existing.reprovision(provider=command.provider)  # type: ignore[arg-type]
        # Providers compare repository names case-insensitively: look the name up by its key.
        name = RepositoryName(command.name)
        Repository.ensure_name_free(
            await uow.find(Repository, project_id=project_id, name_key=name.key),
            repository_id=command.repository_id,
        )
        terms = command.default_branch_policy or c.BranchPolicyTerms()
        policy = BranchPolicy(
            minimum_reviewers=terms.minimum_reviewers,
            required_checks=tuple(terms.required_checks),
            bypass_identities=tuple(dict.fromkeys([*terms.bypass_identities, *self._bypass])),
        )
        created = await self._git.create_repository(
            tenant_id=envelope.tenant_id,
            repository_id=command.repository_id,
            default_branch=command.default_branch,
            message=command.initial_commit_message or f"Initialise {command.name}",
            author=identity(command.requested_by),
            committed_at=envelope.occurred_at,
            command_id=envelope.event_id,
        )
        at, by = envelope.occurred_at, command.requested_by
        repository = Repository.provision(
            repository_id=command.repository_id,
            tenant_id=envelope.tenant_id,
            project_id=project_id,
            module_id=command.module_id or envelope.module_id,
            name=name,
            kind=command.kind,  # type: ignore[arg-type]
            provider=command.provider,  # type: ignore[arg-type]
            remote_url=created.remote_url,
            default_branch=created.default_branch,
            visibility=command.visibility,  # type: ignore[arg-type]
            initial_commit_sha=created.initial_commit_sha,
            default_branch_policy=policy,
            at=at,
            by=by,
        )
        branch_id = default_branch_id(command.repository_id, created.default_branch)
        branch = Branch.create(
            branch_id=branch_id,
            repository_id=command.repository_id,
            tenant_id=envelope.tenant_id,
            project_id=project_id,
            name=created.default_branch,
            from_commit_sha=created.initial_commit_sha,
            base_commit_exists=True,
            is_protected=True,
            policy_bindings=policy.bindings(branch_id),
            at=at,
            by=by,
        )
        uow.add(repository)
        uow.add(branch)

    async def change_repository_setting(self, message: Message[c.ChangeRepositorySetting]) -> None:
        command = message.payload
        repository = await _repository(message.uow, command.repository_id)
        repository.change_setting(
            command.key, command.value, at=message.envelope.occurred_at, by=command.changed_by
        )

    async def register_webhook(self, message: Message[c.RegisterWebhook]) -> None:
        command = message.payload
        repository = await _repository(message.uow, command.repository_id)
        webhook = WebhookRegistration(
            webhook_id=command.webhook_id, url=command.url, events=tuple(command.events)
        )
        repository.register_webhook(webhook, at=message.envelope.occurred_at, by=command.registered_by)

    async def archive_repository(self, message: Message[c.ArchiveRepository]) -> None:
        command = message.payload
        repository = await _repository(message.uow, command.repository_id)
        repository.archive(command.reason, at=message.envelope.occurred_at, by=command.archived_by)

    # -- branches ---------------------------------------------------------------------

    async def create_branch(self, message: Message[c.CreateBranch]) -> None:
        command, envelope, uow = message.payload, message.envelope, message.uow
        repository = await _repository(uow, command.repository_id)
        repository.ensure_active()
        if await uow.get(Branch, command.branch_id) is not None:
            raise errors.BranchAlreadyCreated(command.branch_id)
        Branch.ensure_name_free(
            await _active_branch(uow, command.repository_id, command.name), branch_id=command.branch_id
        )
        where = {"tenant_id": envelope.tenant_id, "repository_id": command.repository_id}
        from_sha = command.from_commit_sha
        if from_sha is None:
            assert command.from_branch is not None  # the contract requires one of the two
            if await _active_branch(uow, command.repository_id, command.from_branch) is None:
                raise errors.BranchNotFoundYet(command.repository_id, command.from_branch)
            from_sha = await self._git.branch_head(**where, branch=command.from_branch)
            if from_sha is None:
                raise errors.BranchNotFoundYet(command.repository_id, command.from_branch)
        branch = Branch.create(
            branch_id=command.branch_id,
            repository_id=command.repository_id,
            tenant_id=envelope.tenant_id,
            project_id=repository.project_id,
            name=command.name,
            from_commit_sha=from_sha,
            base_commit_exists=await self._git.commit_exists(**where, sha=from_sha),
            is_protected=command.is_protected,
            policy_bindings=(
                repository.default_branch_policy.bindings(command.branch_id) if command.is_protected else None
            ),
            at=envelope.occurred_at,
            by=command.created_by,
        )
        try:
            await self._git.create_branch(**where, branch=command.name, from_sha=from_sha)
        except GitBranchExists as refused:
            # Git holds the name (or one nesting with it, ``a`` vs ``a/b``): a rule, not a fault.
            raise errors.BranchNameConflict(command.repository_id, command.name, str(refused)) from refused
        uow.add(branch)

    async def bind_branch_policy(self, message: Message[c.BindBranchPolicy]) -> None:
        command = message.payload
        branch = await _active_branch(message.uow, command.repository_id, command.branch)
        if branch is None:
            raise errors.BranchNotFoundYet(command.repository_id, command.branch)
        binding = BranchPolicyBinding.model_validate(command.binding.wire())
        branch.bind_policy(binding, at=message.envelope.occurred_at, by=command.bound_by)

    async def delete_branch(self, message: Message[c.DeleteBranch]) -> None:
        command, envelope = message.payload, message.envelope
        branch = await message.uow.get(Branch, command.branch_id)
        if branch is None:
            raise errors.BranchNotFoundYet("?", command.branch_id)
        branch.delete(at=envelope.occurred_at, by=command.deleted_by)
        # The ref goes too, so the name (or one nesting with it) can be created again.
        try:
            await self._git.delete_branch(
                tenant_id=envelope.tenant_id, repository_id=branch.repository_id, branch=branch.name
            )
        except DefaultBranchNotDeletable as refused:
            raise errors.ProtectedBranchCannotBeDeleted(branch.name) from refused

    # -- commits ----------------------------------------------------------------------

    async def create_commit(self, message: Message[c.CreateCommit]) -> None:
        command, envelope, uow = message.payload, message.envelope, message.uow
        repository = await _repository(uow, command.repository_id)
        existing = await uow.get(Commit, command.commit_id)
        if existing is not None:
            if existing.command_id == envelope.event_id:
                raise errors.CommitAlreadyRecorded(command.commit_id)
            # Another command reusing the id would rebind the commit to a new sha.
            raise errors.CommitShaImmutable(
                command.commit_id, str(existing.sha), f"a new commit by {envelope.event_id}"
            )
        writes = _writes(command.file_changes)
        changes = _file_changes(writes)
        Commit.check_request(command.message, changes, command.artifact_id)
        where = {"tenant_id": envelope.tenant_id, "repository_id": command.repository_id}
        default_head = await self._git.branch_head(**where, branch=repository.default_branch)
        repository.ensure_accepts_commits(default_branch_exists=default_head is not None)
        branch = await _active_branch(uow, command.repository_id, command.branch)
        if branch is None:
            raise errors.BranchNotFoundYet(command.repository_id, command.branch)
        bypassed = branch.authorize_direct_update(command.authored_by)
        try:
            written = await self._git.commit(
                **where,
                branch=command.branch,
                changes=writes,
                message=command.message,
                author=identity(command.authored_by),
                committed_at=envelope.occurred_at,
                command_id=envelope.event_id,
            )
        except InvalidChange as refused:
            raise errors.FileChangeRefused(str(refused)) from refused
        uow.add(
            Commit.record_created(
                commit_id=command.commit_id,
                command_id=envelope.event_id,
                repository_id=command.repository_id,
                tenant_id=envelope.tenant_id,
                project_id=repository.project_id,
                module_id=repository.module_id,
                repository_kind=repository.kind,
                branch=command.branch,
                sha=written.sha,
                parent_shas=list(written.parent_shas),
                tree_hash=written.tree_hash,
                message=command.message,
                artifact_id=command.artifact_id,
                authored_by=command.authored_by,
                bypassed_policy_by=command.authored_by if bypassed else None,
                file_changes=changes,
                at=envelope.occurred_at,
            )
        )

    # -- pull requests ----------------------------------------------------------------

    async def open_pull_request(self, message: Message[c.OpenPullRequest]) -> None:
        command, envelope, uow = message.payload, message.envelope, message.uow
        if await uow.get(PullRequest, command.pull_request_id) is not None:
            raise errors.PullRequestAlreadyOpened(command.pull_request_id)
        repository = await _repository(uow, command.repository_id)
        repository.ensure_active()
        branches: dict[str, Branch] = {}
        for name in (command.source_branch, command.target_branch):
            found = await _active_branch(uow, command.repository_id, name)
            if found is None:
                raise errors.BranchNotFoundYet(command.repository_id, name)
            branches[name] = found
        uow.add(
            PullRequest.open(
                pull_request_id=command.pull_request_id,
                repository_id=command.repository_id,
                tenant_id=envelope.tenant_id,
                project_id=repository.project_id,
                module_id=repository.module_id,
                repository_kind=repository.kind,
                number=await uow.next_number(PullRequest, "number", repository_id=command.repository_id),
                source_branch=command.source_branch,
                target_branch=command.target_branch,
                title=command.title,
                description=command.description,
                policy=branches[command.target_branch].merge_policy(),
                at=envelope.occurred_at,
                by=command.created_by,
            )
        )

    async def record_review(self, message: Message[c.RecordPullRequestReview]) -> None:
        command = message.payload
        pull_request = await _pull_request(message.uow, command.pull_request_id)
        pull_request.record_review(
            reviewer=command.reviewer,
            vote=command.vote,  # type: ignore[arg-type]
            comment=command.comment,
            at=message.envelope.occurred_at,
        )

    async def record_check(self, message: Message[c.RecordPullRequestCheck]) -> None:
        command = message.payload
        pull_request = await _pull_request(message.uow, command.pull_request_id)
        pull_request.record_check(
            name=command.name,
            status=command.status,  # type: ignore[arg-type]
            commit_sha=command.commit_sha,
            build_result_id=command.build_result_id,
            at=message.envelope.occurred_at,
            by=command.reported_by,
        )

    async def add_comment(self, message: Message[c.AddPullRequestComment]) -> None:
        command = message.payload
        pull_request = await _pull_request(message.uow, command.pull_request_id)
        pull_request.add_comment(
            comment_id=command.comment_id,
            author=command.author,
            text=command.text,
            at=message.envelope.occurred_at,
        )

    async def abandon_pull_request(self, message: Message[c.AbandonPullRequest]) -> None:
        command = message.payload
        pull_request = await _pull_request(message.uow, command.pull_request_id)
        pull_request.abandon(reason=command.reason, at=message.envelope.occurred_at, by=command.abandoned_by)

    async def merge_pull_request(self, message: Message[c.MergePullRequest]) -> None:
        command, envelope = message.payload, message.envelope
        pull_request = await _pull_request(message.uow, command.pull_request_id)
        (await _repository(message.uow, pull_request.repository_id)).ensure_active()
        target = await _active_branch(message.uow, pull_request.repository_id, pull_request.target_branch)
        if target is None:
            raise errors.BranchNotFoundYet(pull_request.repository_id, pull_request.target_branch)
        policy = target.merge_policy()  # as it stands now, not as it was at open
        where = {"tenant_id": envelope.tenant_id, "repository_id": pull_request.repository_id}
        # The checks must have passed on the commit Git will merge: the source head.
        source_head = pull_request.ensure_mergeable(
            source_head=await self._git.branch_head(**where, branch=pull_request.source_branch), policy=policy
        )
        try:
            written = await self._git.merge(
                **where,
                source_branch=pull_request.source_branch,
                source_sha=source_head,
                target_branch=pull_request.target_branch,
                message=command.message or f"Merge pull request {pull_request.number}: {pull_request.title}",
                author=identity(command.merged_by),
                committed_at=envelope.occurred_at,
                command_id=envelope.event_id,
            )
        except GitMergeConflict as conflict:
            raise errors.MergeConflict(pull_request.pull_request_id, conflict.paths) from conflict
        except GitNothingToMerge as nothing:
            raise errors.NothingToMerge(pull_request.pull_request_id) from nothing
        pull_request.merge(
            merge_commit_sha=written.sha,
            source_head=source_head,
            policy=policy,
            at=envelope.occurred_at,
            by=command.merged_by,
        )

    # -- what Pipelines tells ---------------------------------------------------------

    async def on_pipeline_generated(self, message: Message[pipelines_events.PipelineGenerated]) -> None:
        """Bind build validation to the default branch: merges into it now need a passed build."""
        event, uow = message.payload, message.uow
        repository = await _repository(uow, event.repository_id)
        branch = await _active_branch(uow, event.repository_id, repository.default_branch)
        if branch is None:
            raise errors.BranchNotFoundYet(event.repository_id, repository.default_branch)
        binding = BranchPolicyBinding(
            # One binding per module: a regenerated definition replaces its predecessor's.
            binding_id=deterministic_id("policy", event.repository_id, "build-validation", event.module_id),
            policy_type=PolicyType.BUILD_VALIDATION,
            settings=PolicySettings(pipeline_id=event.pipeline_id, check_name=self._build_check),
            bypass_identities=repository.default_branch_policy.bypass_identities,
        )
        branch.bind_policy(binding, at=event.generated_at, by=event.generated_by)

    async def on_build_completed(self, message: Message[pipelines_events.BuildCompleted]) -> None:
        """A build of a pull request's source branch becomes the pull request's build check."""
        event, uow = message.payload, message.uow
        pull_requests = await uow.find_all(
            PullRequest,
            repository_id=event.repository_id,
            source_branch=event.branch,
            status=PullRequestStatus.OPEN,
        )
        if not pull_requests:
            return
        head = await self._git.branch_head(
            tenant_id=message.envelope.tenant_id, repository_id=event.repository_id, branch=event.branch
        )
        if head != event.commit_sha:
            # A build of an older commit of the branch says nothing about what would be merged now.
            log.info("build of a commit that is not the branch head", commit_sha=event.commit_sha, head=head)
            return
        status = CheckStatus.SUCCEEDED if event.status == "Succeeded" else CheckStatus.FAILED
        for pull_request in pull_requests:
            try:
                pull_request.record_check(
                    name=self._build_check,
                    status=status,
                    commit_sha=event.commit_sha,
                    build_result_id=event.build_result_id,
                    at=event.completed_at,
                    by=message.envelope.source,
                )
            except StaleMessage as stale:
                # A newer build of this branch is already the check: this one changes nothing here.
                log.info("build check unchanged", pull_request=pull_request.aggregate_id, reason=str(stale))
