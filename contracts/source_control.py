"""Source Control contracts: the commands it takes and the events it emits.

Commands carry the ids their sender chooses (repositoryId, branchId, …) so a
resent command addresses the same aggregate; tenantId and projectId travel in
the envelope. Events also carry tenantId and projectId in the payload, for
subscribers that keep them. CreateCommit deliberately lets a blank message, no
file changes and a missing artifactId through: those are domain rules, refused
with a named rule rather than dead-lettered as malformed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal, Self

from pydantic import AwareDatetime, Field, HttpUrl, model_validator

from contracts.base import Event, Payload
from contracts.registry import registry
from shared_kernel.domain.value_objects import (
    ArtifactReference,
    BranchName,
    CommitSha,
    Identifier,
    Identity,
    RemoteUrl,
    TreeHash,
)

CONTEXT = "source-control"

RepositoryKind = Literal["source", "gitops"]
RepositoryProvider = Literal["AzureDevOps", "GitHub"]
Visibility = Literal["Private", "Public"]
FileOperation = Literal["Add", "Edit", "Delete"]
PolicyType = Literal["MinimumReviewers", "BuildValidation", "RequiredCheck"]
Vote = Literal["Approved", "Rejected", "WaitingForAuthor"]
CheckStatus = Literal["Pending", "Succeeded", "Failed"]

_SETTINGS_OF: dict[str, set[str]] = {
    "MinimumReviewers": {"minimum_reviewers"},
    "BuildValidation": {"pipeline_id", "check_name"},
    "RequiredCheck": {"check_name"},
}


# Parts shared by several messages


class BranchPolicyTerms(Payload):
    """A branch policy: approving reviewers, required checks, identities that may bypass it."""

    minimum_reviewers: int = Field(default=1, ge=0)
    required_checks: list[Identifier] = []
    bypass_identities: list[Identity] = []


class PolicyBindingSettings(Payload):
    """The settings of one policy binding; only those of its policy type are set."""

    minimum_reviewers: int | None = Field(default=None, ge=0)
    check_name: Identifier | None = None
    pipeline_id: Identifier | None = None


class PolicyBinding(Payload):
    """One policy bound to a branch."""

    binding_id: Identifier
    policy_type: PolicyType
    settings: PolicyBindingSettings
    bypass_identities: list[Identity] = []

    @model_validator(mode="after")
    def _settings_fit_policy_type(self) -> Self:
        given = {name for name, value in self.settings if value is not None}
        if given != _SETTINGS_OF[self.policy_type]:
            raise ValueError(
                f"a {self.policy_type} binding takes settings {sorted(_SETTINGS_OF[self.policy_type])}"
            )
        return self


class FileChangeRequest(Payload):
    """A file to add, edit (with its new content, as text or base64) or delete."""

    path: str = Field(min_length=1, max_length=1024)
    operation: FileOperation
    content: str | None = None
    content_base64: str | None = None

    @model_validator(mode="after")
    def _content_fits_operation(self) -> Self:
        given = (self.content is not None) + (self.content_base64 is not None)
        if self.operation == "Delete" and given:
            raise ValueError(f"Delete of {self.path} takes no content")
        if self.operation != "Delete" and given != 1:
            raise ValueError(f"{self.operation} of {self.path} takes exactly one of content, contentBase64")
        if self.content_base64 is not None:
            try:
                base64.b64decode(self.content_base64, validate=True)
            except binascii.Error as error:
                raise ValueError(f"contentBase64 of {self.path} is not base64: {error}") from error
        return self


class FileChangeRecord(Event):
    """A file a commit changed, with the sha256 of its new content unless deleted."""

    path: str
    operation: FileOperation
    content_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class MergePolicyTerms(Payload):
    """What a pull request must satisfy, taken from its target branch when opened."""

    minimum_reviewers: int = Field(ge=0)
    required_checks: list[Identifier]


class PolicyEvaluationRecord(Event):
    """Where a pull request stands against its merge policy."""

    minimum_reviewers: int
    approvals: list[Identity]
    rejections: list[Identity]
    required_checks: list[Identifier]
    passed_checks: list[Identifier]
    pending_checks: list[Identifier]
    failed_checks: list[Identifier]
    passed: bool
    reasons: list[str]


# Commands


class ProvisionRepository(Payload):
    """Create a repository with an initial commit on its default branch."""

    repository_id: Identifier
    project_id: Identifier | None = None
    module_id: Identifier | None = None
    name: Identifier
    kind: RepositoryKind
    provider: RepositoryProvider
    visibility: Visibility = "Private"
    default_branch: BranchName = BranchName("main")
    default_branch_policy: BranchPolicyTerms | None = None
    initial_commit_message: str | None = Field(default=None, min_length=1)
    requested_by: Identity


class ChangeRepositorySetting(Payload):
    """Set one configuration entry of a repository."""

    repository_id: Identifier
    key: Identifier
    value: str
    changed_by: Identity


class RegisterWebhook(Payload):
    """Add or replace a webhook of a repository."""

    repository_id: Identifier
    webhook_id: Identifier
    url: HttpUrl
    events: list[Identifier] = Field(min_length=1)
    registered_by: Identity


class ArchiveRepository(Payload):
    """Archive a repository: it accepts no more branches, commits or settings."""

    repository_id: Identifier
    reason: str = ""
    archived_by: Identity


class CreateBranch(Payload):
    """Create a branch from a commit or from the head of another branch."""

    branch_id: Identifier
    repository_id: Identifier
    name: BranchName
    from_commit_sha: CommitSha | None = None
    from_branch: BranchName | None = None
    is_protected: bool = False
    created_by: Identity

    @model_validator(mode="after")
    def _one_base(self) -> Self:
        if (self.from_commit_sha is None) == (self.from_branch is None):
            raise ValueError("give exactly one of fromCommitSha, fromBranch")
        return self


class BindBranchPolicy(Payload):
    """Bind (or replace, by bindingId) a policy on a repository's branch."""

    repository_id: Identifier
    branch: BranchName
    binding: PolicyBinding
    bound_by: Identity


class DeleteBranch(Payload):
    """Delete an unprotected branch."""

    branch_id: Identifier
    deleted_by: Identity


class CreateCommit(Payload):
    """Commit file changes generated from an artifact to a branch."""

    commit_id: Identifier
    repository_id: Identifier
    branch: BranchName
    message: str
    artifact_id: ArtifactReference | None = None
    authored_by: Identity
    file_changes: list[FileChangeRequest]


class OpenPullRequest(Payload):
    """Open a pull request from a source branch into a target branch."""

    pull_request_id: Identifier
    repository_id: Identifier
    source_branch: BranchName
    target_branch: BranchName
    title: str = Field(min_length=1)
    description: str = ""
    created_by: Identity


class RecordPullRequestReview(Payload):
    """Record a reviewer's vote; a reviewer's latest vote is the one that counts."""

    pull_request_id: Identifier
    reviewer: Identity
    vote: Vote
    comment: str = ""


class RecordPullRequestCheck(Payload):
    """Record a check's status (e.g. build validation) on a pull request."""

    pull_request_id: Identifier
    name: Identifier
    status: CheckStatus
    commit_sha: CommitSha
    build_result_id: Identifier | None = None
    reported_by: Identity


class AddPullRequestComment(Payload):
    """Comment on a pull request."""

    pull_request_id: Identifier
    comment_id: Identifier
    author: Identity
    text: str = Field(min_length=1)


class AbandonPullRequest(Payload):
    """Close a pull request without merging it."""

    pull_request_id: Identifier
    abandoned_by: Identity
    reason: str = ""


class MergePullRequest(Payload):
    """Merge a pull request whose policy passes."""

    pull_request_id: Identifier
    merged_by: Identity
    message: str | None = Field(default=None, min_length=1)


# Events


class _RepositoryEvent(Event):
    repository_id: Identifier
    tenant_id: Identifier
    project_id: Identifier


class RepositoryProvisioned(_RepositoryEvent):
    """A repository was created with an initial commit on its default branch."""

    module_id: Identifier | None
    name: str
    kind: RepositoryKind
    provider: RepositoryProvider
    remote_url: RemoteUrl
    default_branch: BranchName
    visibility: Visibility
    initial_commit_sha: CommitSha
    default_branch_policy: BranchPolicyTerms
    created_at: AwareDatetime
    provisioned_by: Identity


class RepositorySettingChanged(_RepositoryEvent):
    """A configuration entry of a repository was set."""

    key: Identifier
    value: str
    previous_value: str | None
    changed_at: AwareDatetime
    changed_by: Identity


class WebhookRegistered(_RepositoryEvent):
    """A webhook of a repository was added or replaced."""

    webhook_id: Identifier
    url: HttpUrl
    events: list[Identifier]
    registered_at: AwareDatetime
    registered_by: Identity


class RepositoryArchived(_RepositoryEvent):
    """A repository was archived."""

    module_id: Identifier | None
    reason: str
    archived_at: AwareDatetime
    archived_by: Identity


class _BranchEvent(Event):
    branch_id: Identifier
    repository_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    name: BranchName


class BranchCreated(_BranchEvent):
    """A branch was created from a base commit, with its policy bindings."""

    from_commit_sha: CommitSha
    is_protected: bool
    policies: list[PolicyBinding]
    created_at: AwareDatetime
    created_by: Identity


class BranchPolicyBound(_BranchEvent):
    """A policy was bound to a branch (or its binding replaced)."""

    binding: PolicyBinding
    bound_at: AwareDatetime
    bound_by: Identity


class BranchDeleted(_BranchEvent):
    """A branch was deleted."""

    deleted_at: AwareDatetime
    deleted_by: Identity


class CommitCreated(Event):
    """A commit generated from an artifact was written to a branch."""

    commit_id: Identifier
    repository_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    module_id: Identifier | None
    repository_kind: RepositoryKind
    branch: BranchName
    sha: CommitSha
    parent_shas: list[CommitSha]
    tree_hash: TreeHash
    message: str
    artifact_id: ArtifactReference
    authored_by: Identity
    bypassed_policy_by: Identity | None
    file_changes: list[FileChangeRecord] = Field(min_length=1)
    created_at: AwareDatetime


class _PullRequestEvent(Event):
    pull_request_id: Identifier
    repository_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    module_id: Identifier | None
    number: int = Field(ge=1)
    source_branch: BranchName
    target_branch: BranchName


class PullRequestOpened(_PullRequestEvent):
    """A pull request was opened, with the merge policy of its target branch."""

    repository_kind: RepositoryKind
    title: str
    description: str
    policy: MergePolicyTerms
    policy_evaluation: PolicyEvaluationRecord
    created_at: AwareDatetime
    created_by: Identity


class PullRequestReviewRecorded(_PullRequestEvent):
    """A reviewer voted on a pull request."""

    reviewer: Identity
    vote: Vote
    comment: str
    reviewed_at: AwareDatetime
    policy_evaluation: PolicyEvaluationRecord


class PullRequestCheckRecorded(_PullRequestEvent):
    """A check on a pull request reported its status."""

    name: Identifier
    status: CheckStatus
    commit_sha: CommitSha
    build_result_id: Identifier | None
    reported_at: AwareDatetime
    reported_by: Identity
    policy_evaluation: PolicyEvaluationRecord


class PullRequestCommentAdded(_PullRequestEvent):
    """Someone commented on a pull request."""

    comment_id: Identifier
    author: Identity
    text: str
    posted_at: AwareDatetime


class PullRequestAbandoned(_PullRequestEvent):
    """A pull request was closed without merging."""

    reason: str
    abandoned_at: AwareDatetime
    abandoned_by: Identity


class PullRequestMerged(_PullRequestEvent):
    """A pull request was merged into its target branch."""

    repository_kind: RepositoryKind
    merge_commit_sha: CommitSha
    policy_evaluation: PolicyEvaluationRecord
    merged_at: AwareDatetime
    merged_by: Identity


for _command in (
    ProvisionRepository,
    ChangeRepositorySetting,
    RegisterWebhook,
    ArchiveRepository,
    CreateBranch,
    BindBranchPolicy,
    DeleteBranch,
    CreateCommit,
    OpenPullRequest,
    RecordPullRequestReview,
    RecordPullRequestCheck,
    AddPullRequestComment,
    AbandonPullRequest,
    MergePullRequest,
):
    registry.command(CONTEXT, _command)

for _event in (
    RepositoryProvisioned,
    RepositorySettingChanged,
    WebhookRegistered,
    RepositoryArchived,
    BranchCreated,
    BranchPolicyBound,
    BranchDeleted,
    CommitCreated,
    PullRequestOpened,
    PullRequestReviewRecorded,
    PullRequestCheckRecorded,
    PullRequestCommentAdded,
    PullRequestAbandoned,
    PullRequestMerged,
):
    registry.event(CONTEXT, _event)
