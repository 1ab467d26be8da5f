"""PullRequest: opening, reviews, checks, comments, and the merge gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts import registry
from services.source_control.domain import (
    CheckStatus,
    MergePolicy,
    PullRequest,
    PullRequestStatus,
    RepositoryKind,
    Vote,
)
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
from shared_kernel.domain import RecordedEvent

pytestmark = pytest.mark.unit

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
HEAD = "6" * 40
OLDER = "5" * 40  # a commit the source branch had before HEAD
MERGE_SHA = "7" * 40
AUTHOR = "agent-7"


def at(minutes: int) -> datetime:
    return AT + timedelta(minutes=minutes)


def open_pull_request(**overrides: object) -> PullRequest:
    fields: dict[str, object] = {
        "pull_request_id": "pr-1",
        "repository_id": "repo-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "module_id": "module-1",
        "repository_kind": RepositoryKind.SOURCE,
        "number": 3,
        "source_branch": "feature/orders",
        "target_branch": "main",
        "title": "Generate orders service",
        "description": "First cut",
        "policy": MergePolicy(minimum_reviewers=1, required_checks=("orders-ci",)),
        "at": AT,
        "by": AUTHOR,
    }
    pull_request = PullRequest.open(**{**fields, **overrides})  # type: ignore[arg-type]
    pull_request.pull_events()
    return pull_request


def only_event(pull_request: PullRequest) -> RecordedEvent:
    """The single pending event, checked against its contract."""
    [event] = pull_request.pull_events()
    registry.get(event.event_type, 1).payload.model_validate(event.payload)
    return event


def ready(pull_request: PullRequest) -> PullRequest:
    """Make the policy pass: a green check and one approval by someone else."""
    pull_request.record_check(
        name="orders-ci", status=CheckStatus.SUCCEEDED, commit_sha=HEAD, at=at(1), by="svc-pipelines"
    )
    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, at=at(2))
    pull_request.pull_events()
    return pull_request


SCOPE = {
    "pullRequestId": "pr-1",
    "repositoryId": "repo-1",
    "tenantId": "tenant-1",
    "projectId": "project-1",
    "moduleId": "module-1",
    "number": 3,
    "sourceBranch": "feature/orders",
    "targetBranch": "main",
}
PENDING_EVALUATION = {
    "minimumReviewers": 1,
    "approvals": [],
    "rejections": [],
    "requiredChecks": ["orders-ci"],
    "passedChecks": [],
    "pendingChecks": ["orders-ci"],
    "failedChecks": [],
    "passed": False,
    "reasons": [
        "required check 'orders-ci' is pending",
        "1 approving reviewer(s) other than the author required, 0 given",
    ],
}
PASSED_EVALUATION = {
    **PENDING_EVALUATION,
    "approvals": ["bob"],
    "passedChecks": ["orders-ci"],
    "pendingChecks": [],
    "passed": True,
    "reasons": [],
}


def test_open_records_pull_request_opened_with_the_target_policy() -> None:
    pull_request = PullRequest.open(
        pull_request_id="pr-1",
        repository_id="repo-1",
        tenant_id="tenant-1",
        project_id="project-1",
        module_id="module-1",
        repository_kind=RepositoryKind.SOURCE,
        number=3,
        source_branch="feature/orders",
        target_branch="main",
        title="Generate orders service",
        description="First cut",
        policy=MergePolicy(minimum_reviewers=1, required_checks=("orders-ci",)),
        at=AT,
        by=AUTHOR,
    )

    assert pull_request.status is PullRequestStatus.OPEN
    assert only_event(pull_request).payload == {
        **SCOPE,
        "repositoryKind": "source",
        "title": "Generate orders service",
        "description": "First cut",
        "policy": {"minimumReviewers": 1, "requiredChecks": ["orders-ci"]},
        "policyEvaluation": PENDING_EVALUATION,
        "createdAt": "2025-03-01T09:30:00Z",
        "createdBy": AUTHOR,
    }


@pytest.mark.parametrize("target", ["feature/orders", "refs/heads/feature/orders"])
def test_source_and_target_must_differ(target: str) -> None:
    with pytest.raises(SameSourceAndTarget):
        open_pull_request(target_branch=target)


def test_the_number_is_positive() -> None:
    with pytest.raises(ValidationError):
        open_pull_request(number=0)


def test_record_review_records_the_vote_and_the_new_evaluation() -> None:
    pull_request = open_pull_request()

    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, comment="LGTM", at=at(1))

    assert only_event(pull_request).payload == {
        **SCOPE,
        "reviewer": "bob",
        "vote": "Approved",
        "comment": "LGTM",
        "reviewedAt": "2025-03-01T09:31:00Z",
        "policyEvaluation": {
            **PENDING_EVALUATION,
            "approvals": ["bob"],
            "reasons": ["required check 'orders-ci' is pending"],
        },
    }
    assert pull_request.policy_evaluation.approvals == ("bob",)
    assert pull_request.updated_by == "bob"


def test_record_check_records_the_report_and_the_new_evaluation() -> None:
    pull_request = open_pull_request()

    pull_request.record_check(
        name="orders-ci",
        status=CheckStatus.FAILED,
        commit_sha=HEAD,
        build_result_id="build-9",
        at=at(1),
        by="svc-pipelines",
    )

    assert only_event(pull_request).payload == {
        **SCOPE,
        "name": "orders-ci",
        "status": "Failed",
        "commitSha": HEAD,
        "buildResultId": "build-9",
        "reportedAt": "2025-03-01T09:31:00Z",
        "reportedBy": "svc-pipelines",
        "policyEvaluation": {
            **PENDING_EVALUATION,
            "pendingChecks": [],
            "failedChecks": ["orders-ci"],
            "reasons": [
                "required check 'orders-ci' failed",
                "1 approving reviewer(s) other than the author required, 0 given",
            ],
        },
    }


def test_the_latest_report_of_a_check_wins() -> None:
    pull_request = open_pull_request()
    for minute, status in ((1, CheckStatus.PENDING), (2, CheckStatus.FAILED), (3, CheckStatus.SUCCEEDED)):
        pull_request.record_check(
            name="orders-ci", status=status, commit_sha=HEAD, at=at(minute), by="svc-pipelines"
        )

    assert [(c.name, c.status) for c in pull_request.checks] == [("orders-ci", CheckStatus.SUCCEEDED)]
    assert pull_request.policy_evaluation.passed_checks == ("orders-ci",)


def test_a_report_older_than_the_recorded_one_is_stale() -> None:
    pull_request = open_pull_request()
    pull_request.record_check(
        name="orders-ci", status=CheckStatus.SUCCEEDED, commit_sha=HEAD, at=at(5), by="svc-pipelines"
    )
    pull_request.pull_events()

    with pytest.raises(OutdatedCheckReport):
        pull_request.record_check(
            name="orders-ci", status=CheckStatus.PENDING, commit_sha=HEAD, at=at(4), by="svc-pipelines"
        )
    assert pull_request.checks[0].status is CheckStatus.SUCCEEDED
    assert not pull_request.has_pending_events


def test_a_check_reported_after_the_pull_request_closed_is_stale() -> None:
    pull_request = open_pull_request()
    pull_request.abandon(reason="superseded", at=at(1), by=AUTHOR)
    pull_request.pull_events()

    with pytest.raises(CheckReportedAfterClose):
        pull_request.record_check(
            name="orders-ci", status=CheckStatus.SUCCEEDED, commit_sha=HEAD, at=at(2), by="svc-pipelines"
        )
    assert pull_request.checks == []
    assert not pull_request.has_pending_events


def test_a_reviewer_s_latest_vote_counts() -> None:
    pull_request = open_pull_request()
    pull_request.record_review(reviewer="bob", vote=Vote.REJECTED, at=at(1))
    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, at=at(2))
    # Delivered late, but cast before the approval: it does not override it.
    pull_request.record_review(reviewer="bob", vote=Vote.WAITING_FOR_AUTHOR, at=at(1))

    evaluation = pull_request.evaluate_policy()
    assert (evaluation.approvals, evaluation.rejections) == (("bob",), ())
    assert len(pull_request.reviews) == 3


def test_the_author_s_own_vote_never_counts() -> None:
    pull_request = open_pull_request(policy=MergePolicy(minimum_reviewers=1))
    pull_request.record_review(reviewer=AUTHOR, vote=Vote.APPROVED, at=at(1))

    with pytest.raises(PolicyNotSatisfied, match="1 approving reviewer"):
        pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)

    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, at=at(2))
    pull_request.record_review(reviewer=AUTHOR, vote=Vote.REJECTED, at=at(3))
    pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)


@pytest.mark.parametrize("status", [None, CheckStatus.PENDING, CheckStatus.FAILED])
def test_merge_waits_for_the_required_checks(status: CheckStatus | None) -> None:
    pull_request = open_pull_request()
    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, at=at(1))
    if status is not None:
        pull_request.record_check(
            name="orders-ci", status=status, commit_sha=HEAD, at=at(2), by="svc-pipelines"
        )
    pull_request.pull_events()

    with pytest.raises(RequiredChecksNotPassed, match="orders-ci"):
        pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)
    with pytest.raises(RequiredChecksNotPassed):
        pull_request.merge(
            merge_commit_sha=MERGE_SHA, source_head=HEAD, policy=pull_request.policy, at=at(3), by=AUTHOR
        )
    assert pull_request.status is PullRequestStatus.OPEN
    assert pull_request.merge_commit_sha is None
    assert not pull_request.has_pending_events


@pytest.mark.parametrize("status", [CheckStatus.SUCCEEDED, CheckStatus.FAILED])
def test_a_check_reported_for_another_commit_is_pending_on_the_source_head(status: CheckStatus) -> None:
    pull_request = open_pull_request()
    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, at=at(1))
    pull_request.record_check(name="orders-ci", status=status, commit_sha=OLDER, at=at(2), by="svc-pipelines")
    pull_request.pull_events()

    on_head = pull_request.evaluate_policy(HEAD)

    assert (on_head.passed_checks, on_head.pending_checks, on_head.failed_checks) == ((), ("orders-ci",), ())
    assert on_head.reasons == (
        f"required check 'orders-ci' is pending: its latest report is for {OLDER}, "
        f"not the source head {HEAD}",
    )
    assert not on_head.passed
    # Without a head (what review and check events carry) the report counts as it is.
    assert pull_request.evaluate_policy().passed is (status is CheckStatus.SUCCEEDED)
    assert pull_request.evaluate_policy(OLDER) == pull_request.evaluate_policy()
    with pytest.raises(RequiredChecksNotPassed, match=f"orders-ci pending.*report is for {OLDER}"):
        pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)
    with pytest.raises(RequiredChecksNotPassed):
        pull_request.merge(
            merge_commit_sha=MERGE_SHA, source_head=HEAD, policy=pull_request.policy, at=at(3), by=AUTHOR
        )
    assert pull_request.status is PullRequestStatus.OPEN
    assert not pull_request.has_pending_events


def test_a_check_passed_again_on_the_source_head_lets_it_merge() -> None:
    pull_request = ready(open_pull_request())
    with pytest.raises(RequiredChecksNotPassed):
        pull_request.ensure_mergeable(
            source_head=MERGE_SHA, policy=pull_request.policy
        )  # the head moved on from HEAD

    pull_request.record_check(
        name="orders-ci", status=CheckStatus.SUCCEEDED, commit_sha=MERGE_SHA, at=at(4), by="svc-pipelines"
    )

    assert (
        pull_request.ensure_mergeable(source_head=MERGE_SHA, policy=pull_request.policy) == MERGE_SHA
    )  # the commit to merge
    with pytest.raises(RequiredChecksNotPassed):
        pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)


def test_a_pull_request_whose_source_branch_is_gone_cannot_merge() -> None:
    pull_request = ready(open_pull_request())

    with pytest.raises(SourceBranchMissing, match="feature/orders"):
        pull_request.ensure_mergeable(source_head=None, policy=pull_request.policy)

    pull_request.abandon(reason="branch deleted", at=at(5), by=AUTHOR)
    with pytest.raises(PullRequestNotOpen):  # the status speaks first
        pull_request.ensure_mergeable(source_head=None, policy=pull_request.policy)


def test_a_check_no_policy_requires_does_not_block() -> None:
    pull_request = ready(open_pull_request())
    pull_request.record_check(
        name="lint", status=CheckStatus.FAILED, commit_sha=HEAD, at=at(3), by="svc-pipelines"
    )

    pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)


def test_merge_needs_enough_approvals_and_no_rejection() -> None:
    pull_request = open_pull_request(policy=MergePolicy(minimum_reviewers=2))
    pull_request.record_review(reviewer="bob", vote=Vote.APPROVED, at=at(1))
    with pytest.raises(PolicyNotSatisfied, match="2 approving reviewer"):
        pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)

    pull_request.record_review(reviewer="carol", vote=Vote.APPROVED, at=at(2))
    pull_request.record_review(reviewer="dave", vote=Vote.REJECTED, at=at(3))
    pull_request.pull_events()
    with pytest.raises(PolicyNotSatisfied, match="rejected by dave"):
        pull_request.merge(
            merge_commit_sha=MERGE_SHA, source_head=HEAD, policy=pull_request.policy, at=at(4), by=AUTHOR
        )
    assert pull_request.status is PullRequestStatus.OPEN
    assert not pull_request.has_pending_events


def test_merge_records_pull_request_merged() -> None:
    pull_request = ready(open_pull_request())

    pull_request.merge(
        merge_commit_sha=MERGE_SHA, source_head=HEAD, policy=pull_request.policy, at=at(5), by=AUTHOR
    )

    assert pull_request.status is PullRequestStatus.MERGED
    assert (pull_request.merge_commit_sha, pull_request.merged_at) == (MERGE_SHA, at(5))
    assert only_event(pull_request).payload == {
        **SCOPE,
        "repositoryKind": "source",
        "mergeCommitSha": MERGE_SHA,
        "policyEvaluation": PASSED_EVALUATION,
        "mergedAt": "2025-03-01T09:35:00Z",
        "mergedBy": AUTHOR,
    }


def test_a_merged_pull_request_cannot_merge_abandon_or_take_reviews() -> None:
    pull_request = ready(open_pull_request())
    pull_request.merge(
        merge_commit_sha=MERGE_SHA, source_head=HEAD, policy=pull_request.policy, at=at(5), by=AUTHOR
    )
    pull_request.pull_events()

    with pytest.raises(PullRequestNotOpen):
        pull_request.ensure_mergeable(source_head=HEAD, policy=pull_request.policy)
    with pytest.raises(PullRequestNotOpen):
        pull_request.merge(
            merge_commit_sha="8" * 40, source_head=HEAD, policy=pull_request.policy, at=at(6), by=AUTHOR
        )
    with pytest.raises(PullRequestNotOpen):
        pull_request.abandon(reason="oops", at=at(6), by=AUTHOR)
    with pytest.raises(PullRequestNotOpen):
        pull_request.record_review(reviewer="carol", vote=Vote.REJECTED, at=at(6))
    assert pull_request.status is PullRequestStatus.MERGED
    assert pull_request.merge_commit_sha == MERGE_SHA
    assert len(pull_request.reviews) == 1
    assert not pull_request.has_pending_events


def test_abandon_records_pull_request_abandoned() -> None:
    pull_request = open_pull_request()

    pull_request.abandon(reason="superseded by pr-2", at=at(1), by="bob")

    assert pull_request.status is PullRequestStatus.ABANDONED
    assert (pull_request.abandoned_by, pull_request.abandon_reason) == ("bob", "superseded by pr-2")
    assert only_event(pull_request).payload == {
        **SCOPE,
        "reason": "superseded by pr-2",
        "abandonedAt": "2025-03-01T09:31:00Z",
        "abandonedBy": "bob",
    }


def test_an_abandoned_pull_request_cannot_merge_or_be_abandoned_again() -> None:
    pull_request = ready(open_pull_request())
    pull_request.abandon(reason="superseded", at=at(3), by=AUTHOR)
    pull_request.pull_events()

    with pytest.raises(PullRequestNotOpen):
        pull_request.merge(
            merge_commit_sha=MERGE_SHA, source_head=HEAD, policy=pull_request.policy, at=at(4), by=AUTHOR
        )
    with pytest.raises(PullRequestNotOpen):
        pull_request.abandon(reason="again", at=at(4), by=AUTHOR)
    assert pull_request.status is PullRequestStatus.ABANDONED
    assert pull_request.abandon_reason == "superseded"
    assert not pull_request.has_pending_events


def test_add_comment_records_pull_request_comment_added_even_after_close() -> None:
    pull_request = open_pull_request()
    pull_request.abandon(reason="superseded", at=at(1), by=AUTHOR)
    pull_request.pull_events()

    pull_request.add_comment(comment_id="c-1", author="bob", text="Agreed", at=at(2))

    assert only_event(pull_request).payload == {
        **SCOPE,
        "commentId": "c-1",
        "author": "bob",
        "text": "Agreed",
        "postedAt": "2025-03-01T09:32:00Z",
    }


def test_a_comment_id_is_used_once() -> None:
    pull_request = open_pull_request()
    pull_request.add_comment(comment_id="c-1", author="bob", text="First", at=at(1))
    pull_request.pull_events()

    with pytest.raises(DuplicateComment):
        pull_request.add_comment(comment_id="c-1", author="bob", text="Second", at=at(2))
    assert [c.text for c in pull_request.comments] == ["First"]
    assert not pull_request.has_pending_events
