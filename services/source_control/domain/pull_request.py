"""PullRequest: review and merge of a source branch into a target, gated by policy."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field
from pydantic_core import to_jsonable_python

from services.source_control.domain.errors import (
    CheckReportedAfterClose,
    DuplicateComment,
    OutdatedCheckReport,
    PolicyNotSatisfied,
    PullRequestNotOpen,
    RequiredChecksNotPassed,
    SameSourceAndTarget,
    SourceBranchMissing,
)
from services.source_control.domain.policy import MergePolicy, PolicyEvaluation
from services.source_control.domain.repository import RepositoryKind
from shared_kernel.domain import AggregateRoot, DomainModel, StateMachine
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import BranchName, CommitSha, Identifier, Identity


class PullRequestStatus(StrEnum):
    OPEN = "Open"
    MERGED = "Merged"
    ABANDONED = "Abandoned"


LIFECYCLE = StateMachine({PullRequestStatus.OPEN: {PullRequestStatus.MERGED, PullRequestStatus.ABANDONED}})


class Vote(StrEnum):
    APPROVED = "Approved"
    REJECTED = "Rejected"
    WAITING_FOR_AUTHOR = "WaitingForAuthor"


class CheckStatus(StrEnum):
    PENDING = "Pending"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PullRequestCheck(DomainModel):
    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    status: CheckStatus
    commit_sha: CommitSha
    build_result_id: Identifier | None = None
    reported_at: datetime
    reported_by: Identity


class PullRequestReview(DomainModel):
    model_config = DomainModel.model_config | {"frozen": True}

    reviewer: Identity
    vote: Vote
    comment: str = ""
    reviewed_at: datetime


class PullRequestComment(DomainModel):
    model_config = DomainModel.model_config | {"frozen": True}

    comment_id: Identifier
    author: Identity
    text: str = Field(min_length=1)
    posted_at: datetime


class PullRequest(AggregateRoot):
    """A pull request evaluates itself against its target branch's policy (recorded at open,
    applied as it stands at merge).

    Anyone may review, the author included (as in Azure DevOps), but the
    author's own vote never counts towards the policy.
    """

    aggregate_type = "PullRequest"
    id_field = "pull_request_id"

    pull_request_id: Identifier
    repository_id: Identifier
    project_id: Identifier
    module_id: Identifier | None = None
    repository_kind: RepositoryKind
    number: int = Field(ge=1)
    source_branch: BranchName
    target_branch: BranchName
    title: str = Field(min_length=1)
    description: str = ""
    status: PullRequestStatus = PullRequestStatus.OPEN
    policy: MergePolicy
    policy_evaluation: PolicyEvaluation
    merge_commit_sha: CommitSha | None = None
    merged_at: datetime | None = None
    merged_by: Identity | None = None
    abandoned_at: datetime | None = None
    abandoned_by: Identity | None = None
    abandon_reason: str | None = None
    checks: list[PullRequestCheck] = []
    reviews: list[PullRequestReview] = []
    comments: list[PullRequestComment] = []

    @classmethod
    def open(
        cls,
        *,
        pull_request_id: str,
        repository_id: str,
        tenant_id: str,
        project_id: str,
        module_id: str | None,
        repository_kind: RepositoryKind,
        number: int,
        source_branch: str,
        target_branch: str,
        title: str,
        description: str,
        policy: MergePolicy,
        at: datetime,
        by: str,
    ) -> PullRequest:
        """Open a pull request; ``policy`` is the target branch's ``merge_policy()``."""
        if BranchName(source_branch) == BranchName(target_branch):
            raise SameSourceAndTarget(BranchName(source_branch))
        pull_request = cls(
            pull_request_id=pull_request_id,
            repository_id=repository_id,
            tenant_id=tenant_id,
            project_id=project_id,
            module_id=module_id,
            repository_kind=repository_kind,
            number=number,
            source_branch=source_branch,
            target_branch=target_branch,
            title=title,
            description=description,
            policy=policy,
            policy_evaluation=PolicyEvaluation.of(
                policy, approvals=(), rejections=(), succeeded_checks=(), failed_checks=()
            ),
            **audit_fields(at=at, by=by),
        )
        pull_request._record(
            "PullRequestOpened",
            {
                "repositoryKind": pull_request.repository_kind,
                "title": pull_request.title,
                "description": pull_request.description,
                "policy": pull_request.policy,
                "policyEvaluation": pull_request.policy_evaluation,
                "createdAt": at,
                "createdBy": by,
            },
            at=at,
            by=by,
        )
        return pull_request

    def evaluate_policy(
        self, source_head: str | None = None, policy: MergePolicy | None = None
    ) -> PolicyEvaluation:
        """Each reviewer's latest vote and each check's latest report, against the policy
        (``policy``: the target branch's policy now; by default the one last recorded).

        Given the ``source_head`` (the commit a merge would take), a check counts
        only if its latest report is for that commit; otherwise it is pending.
        Without a head (as recorded on each review and check report) the reports
        count as they are.
        """
        latest_votes = {
            review.reviewer: review.vote
            for review in sorted(self.reviews, key=lambda review: review.reviewed_at)
            if review.reviewer != self.created_by
        }
        head = None if source_head is None else CommitSha(source_head)
        stale: dict[str, str] = {
            c.name: c.commit_sha for c in self.checks if head is not None and c.commit_sha != head
        }
        return PolicyEvaluation.of(
            policy or self.policy,
            approvals=(who for who, vote in latest_votes.items() if vote is Vote.APPROVED),
            rejections=(who for who, vote in latest_votes.items() if vote is Vote.REJECTED),
            succeeded_checks=(c.name for c in self.checks if c.status is CheckStatus.SUCCEEDED),
            failed_checks=(c.name for c in self.checks if c.status is CheckStatus.FAILED),
            stale_checks=stale,
            source_head=head,
        )

    def record_review(self, *, reviewer: str, vote: Vote, comment: str = "", at: datetime) -> None:
        self._ensure_open()
        review = PullRequestReview(reviewer=reviewer, vote=vote, comment=comment, reviewed_at=at)
        self.reviews = [*self.reviews, review]
        self.policy_evaluation = self.evaluate_policy()
        self._record(
            "PullRequestReviewRecorded",
            {**review.wire(), "policyEvaluation": self.policy_evaluation},
            at=at,
            by=reviewer,
        )

    def record_check(
        self,
        *,
        name: str,
        status: CheckStatus,
        commit_sha: str,
        build_result_id: str | None = None,
        at: datetime,
        by: str,
    ) -> None:
        """Record a check report; the latest report of each check name wins."""
        if self.status is not PullRequestStatus.OPEN:
            raise CheckReportedAfterClose(self.pull_request_id, name, self.status)
        check = PullRequestCheck(
            name=name,
            status=status,
            commit_sha=commit_sha,
            build_result_id=build_result_id,
            reported_at=at,
            reported_by=by,
        )
        if any(c.name == check.name and c.reported_at > at for c in self.checks):
            raise OutdatedCheckReport(self.pull_request_id, check.name)
        self.checks = [*(c for c in self.checks if c.name != check.name), check]
        self.policy_evaluation = self.evaluate_policy()
        self._record(
            "PullRequestCheckRecorded",
            {**check.wire(), "policyEvaluation": self.policy_evaluation},
            at=at,
            by=by,
        )

    def add_comment(self, *, comment_id: str, author: str, text: str, at: datetime) -> None:
        """Comment on the pull request; discussion may go on after it closes."""
        if any(c.comment_id == comment_id for c in self.comments):
            raise DuplicateComment(self.pull_request_id, comment_id)
        comment = PullRequestComment(comment_id=comment_id, author=author, text=text, posted_at=at)
        self.comments = [*self.comments, comment]
        self._record("PullRequestCommentAdded", comment.wire(), at=at, by=author)

    def abandon(self, *, reason: str, at: datetime, by: str) -> None:
        self._ensure_can_become(PullRequestStatus.ABANDONED)
        self.status = PullRequestStatus.ABANDONED
        self.abandoned_at, self.abandoned_by, self.abandon_reason = at, Identity(by), reason
        self._record(
            "PullRequestAbandoned",
            {"reason": reason, "abandonedAt": at, "abandonedBy": by},
            at=at,
            by=by,
        )

    def ensure_mergeable(self, *, source_head: str | None, policy: MergePolicy) -> CommitSha:
        """Raise unless the pull request may merge ``source_head`` now; call it before Git.

        ``source_head`` is the source branch's head in Git (None: the branch is
        gone); a required check passes only if it passed on that very commit,
        which is returned as the one to merge. ``policy`` is the target
        branch's policy now: one bound after the pull request opened (a build
        validation once a pipeline exists) applies too.
        """
        self._ensure_can_become(PullRequestStatus.MERGED)
        if source_head is None:
            raise SourceBranchMissing(self.pull_request_id, self.source_branch)
        self._ensure_passes(self.evaluate_policy(source_head, policy))
        return CommitSha(source_head)

    def merge(
        self, *, merge_commit_sha: str, source_head: str, policy: MergePolicy, at: datetime, by: str
    ) -> None:
        """Record the merge Git has made of ``source_head``; the policy is checked again."""
        self._ensure_can_become(PullRequestStatus.MERGED)
        evaluation = self.evaluate_policy(source_head, policy)
        self._ensure_passes(evaluation)
        self.policy = policy
        self.status = PullRequestStatus.MERGED
        self.policy_evaluation = evaluation
        self.merge_commit_sha, self.merged_at, self.merged_by = CommitSha(merge_commit_sha), at, Identity(by)
        self._record(
            "PullRequestMerged",
            {
                "repositoryKind": self.repository_kind,
                "mergeCommitSha": self.merge_commit_sha,
                "policyEvaluation": self.policy_evaluation,
                "mergedAt": at,
                "mergedBy": by,
            },
            at=at,
            by=by,
        )

    def _ensure_passes(self, evaluation: PolicyEvaluation) -> None:
        if not evaluation.checks_passed:
            raise RequiredChecksNotPassed(
                self.pull_request_id, evaluation.pending_checks, evaluation.failed_checks, evaluation.reasons
            )
        if not evaluation.passed:
            raise PolicyNotSatisfied(self.pull_request_id, evaluation.reasons)

    def _ensure_open(self) -> None:
        if self.status is not PullRequestStatus.OPEN:
            raise PullRequestNotOpen(self.pull_request_id, self.status)

    def _ensure_can_become(self, status: PullRequestStatus) -> None:
        if not LIFECYCLE.can(self.status, status):
            raise PullRequestNotOpen(self.pull_request_id, self.status)

    def _record(self, event_type: str, fields: dict[str, object], *, at: datetime, by: str) -> None:
        """Record an event carrying the pull request's identity and branches."""
        scope = {
            "pullRequestId": self.pull_request_id,
            "repositoryId": self.repository_id,
            "tenantId": self.tenant_id,
            "projectId": self.project_id,
            "moduleId": self.module_id,
            "number": self.number,
            "sourceBranch": self.source_branch,
            "targetBranch": self.target_branch,
        }
        self.record(event_type, to_jsonable_python({**scope, **fields}), at=at, by=by)
