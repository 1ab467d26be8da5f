"""Branch: creation, protection and bypass, policy bindings, deletion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import registry
from services.source_control.domain import (
    Branch,
    BranchPolicy,
    BranchPolicyBinding,
    BranchStatus,
    MergePolicy,
    PolicySettings,
    PolicyType,
)
from services.source_control.domain.errors import (
    BaseCommitNotFound,
    BranchNotActive,
    DuplicateBranchName,
    ProtectedBranchCannotBeDeleted,
    ProtectedBranchRequiresPullRequest,
)
from shared_kernel.domain import RecordedEvent

pytestmark = pytest.mark.unit

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
BASE_SHA = "2" * 40
BUILD_VALIDATION = BranchPolicyBinding(
    binding_id="bv-orders-ci",
    policy_type=PolicyType.BUILD_VALIDATION,
    settings=PolicySettings(pipeline_id="pipeline-7", check_name="orders-ci"),
)


def create(**overrides: object) -> Branch:
    fields: dict[str, object] = {
        "branch_id": "branch-1",
        "repository_id": "repo-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "name": "main",
        "from_commit_sha": BASE_SHA,
        "base_commit_exists": True,
        "is_protected": True,
        "policy_bindings": BranchPolicy(
            minimum_reviewers=1, required_checks=("lint",), bypass_identities=("svc-release",)
        ).bindings("branch-1"),
        "at": AT,
        "by": "svc-provisioner",
    }
    return Branch.create(**{**fields, **overrides})  # type: ignore[arg-type]


def only_event(branch: Branch) -> RecordedEvent:
    """The single pending event, checked against its contract."""
    [event] = branch.pull_events()
    registry.get(event.event_type, 1).payload.model_validate(event.payload)
    return event


def test_create_records_branch_created_with_its_policies() -> None:
    branch = create()

    assert branch.status is BranchStatus.ACTIVE
    event = only_event(branch)
    assert event.event_type == "BranchCreated"
    assert event.payload == {
        "branchId": "branch-1",
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "name": "main",
        "fromCommitSha": BASE_SHA,
        "isProtected": True,
        "policies": [
            {
                "bindingId": "branch-1:minimum-reviewers",
                "policyType": "MinimumReviewers",
                "settings": {"minimumReviewers": 1, "checkName": None, "pipelineId": None},
                "bypassIdentities": ["svc-release"],
            },
            {
                "bindingId": "branch-1:check:lint",
                "policyType": "RequiredCheck",
                "settings": {"minimumReviewers": None, "checkName": "lint", "pipelineId": None},
                "bypassIdentities": ["svc-release"],
            },
        ],
        "createdAt": "2025-03-01T09:30:00Z",
        "createdBy": "svc-provisioner",
    }


def test_create_normalises_a_full_ref_name() -> None:
    assert create(name="refs/heads/feature/orders").name == "feature/orders"


def test_the_base_commit_must_exist() -> None:
    with pytest.raises(BaseCommitNotFound, match=BASE_SHA):
        create(base_commit_exists=False)


def test_a_name_held_by_another_active_branch_is_refused() -> None:
    with pytest.raises(DuplicateBranchName, match="'main'"):
        Branch.ensure_name_free(create(), branch_id="branch-2")


def test_a_free_name_the_branch_s_own_or_a_deleted_branch_s_name_is_accepted() -> None:
    deleted = create(is_protected=False)
    deleted.delete(at=AT, by="alice")

    Branch.ensure_name_free(None, branch_id="branch-2")
    Branch.ensure_name_free(create(), branch_id="branch-1")
    Branch.ensure_name_free(deleted, branch_id="branch-2")


def test_an_unprotected_branch_takes_direct_commits_without_bypass() -> None:
    assert create(is_protected=False).authorize_direct_update("agent-7") is False


def test_a_protected_branch_requires_a_pull_request() -> None:
    with pytest.raises(ProtectedBranchRequiresPullRequest, match="agent-7"):
        create().authorize_direct_update("agent-7")


def test_a_protected_branch_without_bindings_lets_nobody_bypass() -> None:
    with pytest.raises(ProtectedBranchRequiresPullRequest):
        create(policy_bindings=[]).authorize_direct_update("svc-release")


def test_a_bypass_identity_may_commit_directly_and_is_told_it_bypassed() -> None:
    assert create().authorize_direct_update("svc-release") is True


def test_the_merge_policy_derives_from_the_bindings() -> None:
    branch = create()
    branch.bind_policy(BUILD_VALIDATION, at=AT, by="svc-pipelines")

    assert branch.minimum_reviewers() == 1
    assert branch.required_checks() == ["lint", "orders-ci"]
    assert branch.merge_policy() == MergePolicy(minimum_reviewers=1, required_checks=("lint", "orders-ci"))


def test_a_branch_without_bindings_requires_nothing() -> None:
    assert create(policy_bindings=[]).merge_policy() == MergePolicy(minimum_reviewers=0, required_checks=())


def test_bind_policy_records_branch_policy_bound_and_replaces_by_id() -> None:
    branch = create()
    branch.pull_events()

    branch.bind_policy(BUILD_VALIDATION, at=AT, by="svc-pipelines")

    assert only_event(branch).payload == {
        "branchId": "branch-1",
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "name": "main",
        "binding": {
            "bindingId": "bv-orders-ci",
            "policyType": "BuildValidation",
            "settings": {"minimumReviewers": None, "checkName": "orders-ci", "pipelineId": "pipeline-7"},
            "bypassIdentities": [],
        },
        "boundAt": "2025-03-01T09:30:00Z",
        "boundBy": "svc-pipelines",
    }
    branch.bind_policy(BUILD_VALIDATION, at=AT, by="svc-pipelines")
    assert not branch.has_pending_events

    renamed = BUILD_VALIDATION.model_copy(
        update={"settings": PolicySettings(pipeline_id="pipeline-7", check_name="orders-build")}
    )
    branch.bind_policy(renamed, at=AT, by="svc-pipelines")
    assert branch.required_checks() == ["lint", "orders-build"]
    assert only_event(branch).event_type == "BranchPolicyBound"


@pytest.mark.parametrize(
    ("policy_type", "settings"),
    [
        (PolicyType.MINIMUM_REVIEWERS, {}),
        (PolicyType.MINIMUM_REVIEWERS, {"minimum_reviewers": 1, "check_name": "build"}),
        (PolicyType.BUILD_VALIDATION, {"check_name": "build"}),
        (PolicyType.REQUIRED_CHECK, {"pipeline_id": "p-1"}),
    ],
)
def test_a_binding_takes_exactly_the_settings_of_its_policy_type(
    policy_type: PolicyType, settings: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        BranchPolicyBinding(binding_id="b-1", policy_type=policy_type, settings=PolicySettings(**settings))


def test_delete_records_branch_deleted() -> None:
    branch = create(is_protected=False)
    branch.pull_events()

    branch.delete(at=AT, by="alice")

    assert branch.status is BranchStatus.DELETED
    assert only_event(branch).payload == {
        "branchId": "branch-1",
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "name": "main",
        "deletedAt": "2025-03-01T09:30:00Z",
        "deletedBy": "alice",
    }


def test_a_protected_branch_cannot_be_deleted() -> None:
    branch = create()
    branch.pull_events()

    with pytest.raises(ProtectedBranchCannotBeDeleted):
        branch.delete(at=AT, by="alice")
    assert branch.status is BranchStatus.ACTIVE
    assert not branch.has_pending_events


def test_a_deleted_branch_takes_no_commits_bindings_or_second_delete() -> None:
    branch = create(is_protected=False, policy_bindings=[])
    branch.delete(at=AT, by="alice")
    branch.pull_events()

    with pytest.raises(BranchNotActive):
        branch.authorize_direct_update("agent-7")
    with pytest.raises(BranchNotActive):
        branch.bind_policy(BUILD_VALIDATION, at=AT, by="svc-pipelines")
    with pytest.raises(BranchNotActive):
        branch.delete(at=AT, by="alice")
    assert branch.policy_bindings == []
    assert not branch.has_pending_events
