"""Named refusals of the Source Control context.

The family decides what the runtime does: a ``RuleViolation`` is committed as
a rejection, a ``StaleMessage`` is acknowledged and logged, a
``PrerequisiteMissing`` is retried later.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared_kernel.domain import PrerequisiteMissing, RuleViolation, StaleMessage

# Repository


class DuplicateRepositoryName(RuleViolation):
    def __init__(self, project_id: str, name: str) -> None:
        super().__init__(f"project {project_id} already has a repository named {name!r}")


class ProviderImmutable(RuleViolation):
    def __init__(self, repository_id: str, provider: str, requested: str) -> None:
        super().__init__(
            f"repository {repository_id} is provisioned on {provider}; "
            f"its provider cannot change to {requested}"
        )


class RepositoryAlreadyProvisioned(StaleMessage):
    def __init__(self, repository_id: str) -> None:
        super().__init__(f"repository {repository_id} is already provisioned")


class RepositoryNotActive(RuleViolation):
    def __init__(self, repository_id: str, status: str) -> None:
        super().__init__(f"repository {repository_id} is {status}, not Active")


class DefaultBranchMissing(RuleViolation):
    def __init__(self, repository_id: str, branch: str) -> None:
        super().__init__(
            f"repository {repository_id} has no default branch {branch!r} yet; "
            "commits are accepted only once it exists"
        )


class RepositoryNotProvisionedYet(PrerequisiteMissing):
    def __init__(self, repository_id: str) -> None:
        super().__init__(f"repository {repository_id} is not provisioned yet")


# Branch


class DuplicateBranchName(RuleViolation):
    def __init__(self, repository_id: str, name: str) -> None:
        super().__init__(f"repository {repository_id} already has a branch named {name!r}")


class BaseCommitNotFound(RuleViolation):
    def __init__(self, repository_id: str, sha: str) -> None:
        super().__init__(f"commit {sha} does not exist in repository {repository_id}")


class BranchNotActive(RuleViolation):
    def __init__(self, branch: str, status: str) -> None:
        super().__init__(f"branch {branch!r} is {status}, not Active")


class ProtectedBranchRequiresPullRequest(RuleViolation):
    def __init__(self, branch: str, author: str) -> None:
        super().__init__(
            f"branch {branch!r} is protected: {author} may update it only through a "
            "pull request, not by a direct commit"
        )


class ProtectedBranchCannotBeDeleted(RuleViolation):
    def __init__(self, branch: str) -> None:
        super().__init__(f"branch {branch!r} is protected and cannot be deleted")


class BranchNameConflict(RuleViolation):
    """Git refuses the name: a branch nests with it (``a`` and ``a/b`` cannot both be refs)."""

    def __init__(self, repository_id: str, name: str, reason: str) -> None:
        super().__init__(f"repository {repository_id} cannot have a branch named {name!r}: {reason}")


class BranchNotFoundYet(PrerequisiteMissing):
    """Retried rather than refused: the CreateBranch may still be on its way."""

    def __init__(self, repository_id: str, branch: str) -> None:
        super().__init__(f"repository {repository_id} has no branch {branch!r} yet")


# Commit


class EmptyCommitMessage(RuleViolation):
    def __init__(self) -> None:
        super().__init__("a commit needs a non-empty message")


class NoFileChanges(RuleViolation):
    def __init__(self) -> None:
        super().__init__("a commit needs at least one file change")


class DuplicateFilePath(RuleViolation):
    def __init__(self, path: str) -> None:
        super().__init__(f"a commit may change {path!r} only once")


class MissingArtifactReference(RuleViolation):
    def __init__(self) -> None:
        super().__init__("a commit needs the artifactId it was generated from (lineage)")


class CommitShaImmutable(RuleViolation):
    def __init__(self, commit_id: str, sha: str, presented: str) -> None:
        super().__init__(f"commit {commit_id} is {sha}; its sha cannot become {presented}")


# Pull request


class SameSourceAndTarget(RuleViolation):
    def __init__(self, branch: str) -> None:
        super().__init__(f"a pull request cannot merge {branch!r} into itself")


class PullRequestNotOpen(RuleViolation):
    def __init__(self, pull_request_id: str, status: str) -> None:
        super().__init__(f"pull request {pull_request_id} is {status}, not Open")


class RequiredChecksNotPassed(RuleViolation):
    def __init__(
        self,
        pull_request_id: str,
        pending: Sequence[str],
        failed: Sequence[str],
        reasons: Sequence[str] = (),
    ) -> None:
        states = [f"{name} pending" for name in pending] + [f"{name} failed" for name in failed]
        because = f": {'; '.join(reasons)}" if reasons else ""
        super().__init__(
            f"pull request {pull_request_id} cannot merge until its required checks pass "
            f"({', '.join(states)}){because}"
        )


class SourceBranchMissing(RuleViolation):
    """The source branch has no head in Git (it was deleted): there is nothing to merge."""

    def __init__(self, pull_request_id: str, branch: str) -> None:
        super().__init__(f"pull request {pull_request_id} cannot merge: its source branch {branch!r} is gone")


class PolicyNotSatisfied(RuleViolation):
    def __init__(self, pull_request_id: str, reasons: Sequence[str]) -> None:
        super().__init__(f"pull request {pull_request_id} cannot merge: {'; '.join(reasons)}")


class DuplicateComment(RuleViolation):
    def __init__(self, pull_request_id: str, comment_id: str) -> None:
        super().__init__(f"pull request {pull_request_id} already has comment {comment_id}")


class CheckReportedAfterClose(StaleMessage):
    def __init__(self, pull_request_id: str, name: str, status: str) -> None:
        super().__init__(f"check {name!r} reported for pull request {pull_request_id}, already {status}")


class OutdatedCheckReport(StaleMessage):
    def __init__(self, pull_request_id: str, name: str) -> None:
        super().__init__(f"a newer report of check {name!r} on pull request {pull_request_id} is recorded")


class PullRequestNotFoundYet(PrerequisiteMissing):
    def __init__(self, pull_request_id: str) -> None:
        super().__init__(f"pull request {pull_request_id} is not opened yet")


class BranchAlreadyCreated(StaleMessage):
    def __init__(self, branch_id: str) -> None:
        super().__init__(f"branch {branch_id} is already created")


class CommitAlreadyRecorded(StaleMessage):
    def __init__(self, commit_id: str) -> None:
        super().__init__(f"commit {commit_id} is already recorded")


class PullRequestAlreadyOpened(StaleMessage):
    def __init__(self, pull_request_id: str) -> None:
        super().__init__(f"pull request {pull_request_id} is already opened")


class FileChangeRefused(RuleViolation):
    """The repository's content refuses the change (adding a path that exists, …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"file changes refused: {reason}")


class MergeConflict(RuleViolation):
    def __init__(self, pull_request_id: str, paths: Sequence[str]) -> None:
        super().__init__(f"pull request {pull_request_id} conflicts with its target in {', '.join(paths)}")


class NothingToMerge(RuleViolation):
    def __init__(self, pull_request_id: str) -> None:
        super().__init__(f"pull request {pull_request_id}: the target already contains the source")
