"""Branch: a named line of commits in a repository, guarded by its policy bindings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic_core import to_jsonable_python

from services.source_control.domain.errors import (
    BaseCommitNotFound,
    BranchNotActive,
    DuplicateBranchName,
    ProtectedBranchCannotBeDeleted,
    ProtectedBranchRequiresPullRequest,
)
from services.source_control.domain.policy import BranchPolicyBinding, MergePolicy, PolicyType
from shared_kernel.domain import AggregateRoot, StateMachine
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import BranchName, CommitSha, Identifier


class BranchStatus(StrEnum):
    ACTIVE = "Active"
    DELETED = "Deleted"


LIFECYCLE = StateMachine({BranchStatus.ACTIVE: {BranchStatus.DELETED}})

_CHECK_POLICIES = (PolicyType.BUILD_VALIDATION, PolicyType.REQUIRED_CHECK)


class Branch(AggregateRoot):
    aggregate_type = "Branch"
    id_field = "branch_id"

    branch_id: Identifier
    repository_id: Identifier
    project_id: Identifier
    name: BranchName
    from_commit_sha: CommitSha
    is_protected: bool
    status: BranchStatus = BranchStatus.ACTIVE
    policy_bindings: list[BranchPolicyBinding] = []

    @staticmethod
    def ensure_name_free(existing: Branch | None, *, branch_id: str) -> None:
        """Refuse a name an active branch of the repository (``existing``, found by name) holds."""
        if (
            existing is not None
            and existing.branch_id != branch_id
            and existing.status is BranchStatus.ACTIVE
        ):
            raise DuplicateBranchName(existing.repository_id, existing.name)

    @classmethod
    def create(
        cls,
        *,
        branch_id: str,
        repository_id: str,
        tenant_id: str,
        project_id: str,
        name: str,
        from_commit_sha: str,
        base_commit_exists: bool,
        is_protected: bool,
        policy_bindings: list[BranchPolicyBinding] | None = None,
        at: datetime,
        by: str,
    ) -> Branch:
        """Record a branch; the handler tells whether its base commit exists in Git."""
        if not base_commit_exists:
            raise BaseCommitNotFound(repository_id, from_commit_sha)
        branch = cls(
            branch_id=branch_id,
            repository_id=repository_id,
            tenant_id=tenant_id,
            project_id=project_id,
            name=name,
            from_commit_sha=from_commit_sha,
            is_protected=is_protected,
            policy_bindings=policy_bindings or [],
            **audit_fields(at=at, by=by),
        )
        branch.record(
            "BranchCreated",
            to_jsonable_python(
                {
                    **branch._scope(),
                    "fromCommitSha": branch.from_commit_sha,
                    "isProtected": branch.is_protected,
                    "policies": branch.policy_bindings,
                    "createdAt": at,
                    "createdBy": by,
                }
            ),
            at=at,
            by=by,
        )
        return branch

    def authorize_direct_update(self, author: str) -> bool:
        """May ``author`` commit to this branch without a pull request?

        Returns whether doing so bypasses policy, so the commit can record who
        bypassed; a protected branch refuses anyone no binding lets bypass.
        """
        self._ensure_active()
        if not self.is_protected:
            return False
        if any(author in binding.bypass_identities for binding in self.policy_bindings):
            return True
        raise ProtectedBranchRequiresPullRequest(self.name, author)

    def bind_policy(self, binding: BranchPolicyBinding, *, at: datetime, by: str) -> None:
        """Add or replace the binding with this id; binding it unchanged records nothing."""
        self._ensure_active()
        if binding in self.policy_bindings:
            return
        others = (b for b in self.policy_bindings if b.binding_id != binding.binding_id)
        self.policy_bindings = [*others, binding]
        self.record(
            "BranchPolicyBound",
            to_jsonable_python({**self._scope(), "binding": binding, "boundAt": at, "boundBy": by}),
            at=at,
            by=by,
        )

    def delete(self, *, at: datetime, by: str) -> None:
        if not LIFECYCLE.can(self.status, BranchStatus.DELETED):
            raise BranchNotActive(self.name, self.status)
        if self.is_protected:
            raise ProtectedBranchCannotBeDeleted(self.name)
        self.status = BranchStatus.DELETED
        self.record(
            "BranchDeleted",
            to_jsonable_python({**self._scope(), "deletedAt": at, "deletedBy": by}),
            at=at,
            by=by,
        )

    def required_checks(self) -> list[str]:
        names = (b.settings.check_name for b in self.policy_bindings if b.policy_type in _CHECK_POLICIES)
        return sorted({name for name in names if name is not None})

    def minimum_reviewers(self) -> int:
        counts = (b.settings.minimum_reviewers or 0 for b in self.policy_bindings)
        return max(counts, default=0)

    def merge_policy(self) -> MergePolicy:
        """What a pull request into this branch must satisfy."""
        return MergePolicy(
            minimum_reviewers=self.minimum_reviewers(), required_checks=tuple(self.required_checks())
        )

    def _ensure_active(self) -> None:
        if self.status is not BranchStatus.ACTIVE:
            raise BranchNotActive(self.name, self.status)

    def _scope(self) -> dict[str, str]:
        return {
            "branchId": self.branch_id,
            "repositoryId": self.repository_id,
            "tenantId": self.tenant_id,
            "projectId": self.project_id,
            "name": self.name,
        }
