"""The pure domain of Source Control: aggregates, policy, named errors."""

from services.source_control.domain.branch import Branch, BranchStatus
from services.source_control.domain.commit import Commit, FileChange, FileOperation, FilePath
from services.source_control.domain.policy import (
    BranchPolicy,
    BranchPolicyBinding,
    MergePolicy,
    PolicyEvaluation,
    PolicySettings,
    PolicyType,
)
from services.source_control.domain.pull_request import (
    CheckStatus,
    PullRequest,
    PullRequestCheck,
    PullRequestComment,
    PullRequestReview,
    PullRequestStatus,
    Vote,
)
from services.source_control.domain.repository import (
    Repository,
    RepositoryKind,
    RepositoryName,
    RepositoryProvider,
    RepositorySetting,
    RepositoryStatus,
    Visibility,
    WebhookRegistration,
)

__all__ = [
    "Branch",
    "BranchPolicy",
    "BranchPolicyBinding",
    "BranchStatus",
    "CheckStatus",
    "Commit",
    "FileChange",
    "FileOperation",
    "FilePath",
    "MergePolicy",
    "PolicyEvaluation",
    "PolicySettings",
    "PolicyType",
    "PullRequest",
    "PullRequestCheck",
    "PullRequestComment",
    "PullRequestReview",
    "PullRequestStatus",
    "Repository",
    "RepositoryKind",
    "RepositoryName",
    "RepositoryProvider",
    "RepositorySetting",
    "RepositoryStatus",
    "Visibility",
    "Vote",
    "WebhookRegistration",
]
