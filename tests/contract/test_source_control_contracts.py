"""Source Control contracts: routing, and every event the domain records fits its schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import registry
from contracts.source_control import (
    BindBranchPolicy,
    CreateBranch,
    CreateCommit,
    FileChangeRequest,
    ProvisionRepository,
)
from services.source_control.domain import (
    Branch,
    BranchPolicy,
    BranchPolicyBinding,
    CheckStatus,
    Commit,
    FileChange,
    FileOperation,
    PolicySettings,
    PolicyType,
    PullRequest,
    Repository,
    RepositoryKind,
    RepositoryProvider,
    Visibility,
    Vote,
    WebhookRegistration,
)
from shared_kernel.domain import RecordedEvent

pytestmark = pytest.mark.contract

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
COMMANDS = [
    "ProvisionRepository",
    "ChangeRepositorySetting",
    "RegisterWebhook",
    "ArchiveRepository",
    "CreateBranch",
    "BindBranchPolicy",
    "DeleteBranch",
    "CreateCommit",
    "OpenPullRequest",
    "RecordPullRequestReview",
    "RecordPullRequestCheck",
    "AddPullRequestComment",
    "AbandonPullRequest",
    "MergePullRequest",
]
EVENTS = [
    "RepositoryProvisioned",
    "RepositorySettingChanged",
    "WebhookRegistered",
    "RepositoryArchived",
    "BranchCreated",
    "BranchPolicyBound",
    "BranchDeleted",
    "CommitCreated",
    "PullRequestOpened",
    "PullRequestReviewRecorded",
    "PullRequestCheckRecorded",
    "PullRequestCommentAdded",
    "PullRequestAbandoned",
    "PullRequestMerged",
]
ROUTING_KEY = re.compile(r"source-control\.[a-z]+(-[a-z]+)*\.v1")


def every_recorded_event() -> list[RecordedEvent]:
    """Drive each aggregate through every method that records an event."""
    scope: dict[str, Any] = {"tenant_id": "tenant-1", "project_id": "project-1"}
    repository = Repository.provision(
        repository_id="repo-1",
        module_id="module-1",
        name="orders-service",
        kind=RepositoryKind.SOURCE,
        provider=RepositoryProvider.GITHUB,
        remote_url="https://github.com/acme/orders-service.git",
        default_branch="main",
        visibility=Visibility.PUBLIC,
        initial_commit_sha="1" * 40,
        default_branch_policy=BranchPolicy(required_checks=("orders-ci",), bypass_identities=("svc",)),
        at=AT,
        by="svc",
        **scope,
    )
    repository.change_setting("merge-strategy", "squash", at=AT, by="alice")
    hook = WebhookRegistration(webhook_id="wh-1", url="https://hooks.acme.io/git", events=["git.push"])
    repository.register_webhook(hook, at=AT, by="alice")
    repository.archive("retired", at=AT, by="alice")

    main = Branch.create(
        branch_id="branch-main",
        repository_id="repo-1",
        name="main",
        from_commit_sha="1" * 40,
        base_commit_exists=True,
        is_protected=True,
        policy_bindings=repository.default_branch_policy.bindings("branch-main"),
        at=AT,
        by="svc",
        **scope,
    )
    main.bind_policy(
        BranchPolicyBinding(
            binding_id="bv-1",
            policy_type=PolicyType.BUILD_VALIDATION,
            settings=PolicySettings(pipeline_id="pipeline-1", check_name="orders-build"),
        ),
        at=AT,
        by="svc-pipelines",
    )
    feature = Branch.create(
        branch_id="branch-feature",
        repository_id="repo-1",
        name="feature/orders",
        from_commit_sha="1" * 40,
        base_commit_exists=True,
        is_protected=False,
        at=AT,
        by="agent-7",
        **scope,
    )
    commit = Commit.record_created(
        commit_id="commit-1",
        command_id="cmd-1",
        repository_id="repo-1",
        module_id="module-1",
        repository_kind=RepositoryKind.SOURCE,
        branch="feature/orders",
        sha="2" * 40,
        parent_shas=["1" * 40],
        tree_hash="3" * 40,
        message="Generate orders service",
        artifact_id="artifact-42",
        authored_by="agent-7",
        bypassed_policy_by=None,
        file_changes=[FileChange(path="src/app.py", operation=FileOperation.ADD, content_sha256="a" * 64)],
        at=AT,
        **scope,
    )
    merged = PullRequest.open(
        pull_request_id="pr-1",
        repository_id="repo-1",
        module_id="module-1",
        repository_kind=RepositoryKind.SOURCE,
        number=1,
        source_branch="feature/orders",
        target_branch="main",
        title="Generate orders service",
        description="",
        policy=main.merge_policy(),
        at=AT,
        by="agent-7",
        **scope,
    )
    for check in ("orders-ci", "orders-build"):
        merged.record_check(
            name=check, status=CheckStatus.SUCCEEDED, commit_sha="2" * 40, at=AT, by="svc-pipelines"
        )
    merged.record_review(reviewer="bob", vote=Vote.APPROVED, comment="LGTM", at=AT)
    merged.add_comment(comment_id="c-1", author="bob", text="Nice", at=AT)
    merged.merge(merge_commit_sha="4" * 40, source_head="2" * 40, policy=merged.policy, at=AT, by="agent-7")
    feature.delete(at=AT, by="agent-7")
    abandoned = PullRequest.open(
        pull_request_id="pr-2",
        repository_id="repo-1",
        module_id=None,
        repository_kind=RepositoryKind.GITOPS,
        number=2,
        source_branch="feature/other",
        target_branch="main",
        title="Other",
        description="",
        policy=main.merge_policy(),
        at=AT,
        by="agent-7",
        **scope,
    )
    abandoned.abandon(reason="superseded", at=AT, by="agent-7")
    aggregates = (repository, main, feature, commit, merged, abandoned)
    return [event for aggregate in aggregates for event in aggregate.pull_events()]


def test_every_recorded_event_round_trips_through_its_contract() -> None:
    events = every_recorded_event()

    assert {event.event_type for event in events} == set(EVENTS)
    for event in events:
        contract = registry.get(event.event_type, 1)
        assert (contract.kind, contract.context) == ("event", "source-control")
        assert contract.payload.model_validate(event.payload).wire() == event.payload


@pytest.mark.parametrize(
    ("name", "kind"), [(c, "command") for c in COMMANDS] + [(e, "event") for e in EVENTS]
)
def test_every_message_is_registered_with_a_versioned_routing_key(name: str, kind: str) -> None:
    contract = registry.get(name, 1)

    assert contract.kind == kind
    assert ROUTING_KEY.fullmatch(contract.routing_key)
    assert contract.exchange == ("devops.commands" if kind == "command" else "devops.events")
    assert contract.description


def test_routing_keys_are_kebab_case_with_the_major_version() -> None:
    assert registry.get("PullRequestMerged", 1).routing_key == "source-control.pull-request-merged.v1"
    assert registry.get("ProvisionRepository", 1).routing_key == "source-control.provision-repository.v1"


def test_provision_repository_defaults_to_a_private_repository_on_main() -> None:
    command = ProvisionRepository.model_validate(
        {
            "repositoryId": "repo-1",
            "moduleId": "module-1",
            "name": "orders-service",
            "kind": "source",
            "provider": "AzureDevOps",
            "requestedBy": "agent-7",
        }
    )

    assert (command.default_branch, command.visibility) == ("main", "Private")
    assert command.default_branch_policy is None


@pytest.mark.parametrize(
    "base", [{}, {"fromCommitSha": "1" * 40, "fromBranch": "main"}], ids=["neither", "both"]
)
def test_create_branch_takes_exactly_one_base(base: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        CreateBranch.model_validate(
            {"branchId": "b-1", "repositoryId": "repo-1", "name": "feature/x", "createdBy": "agent-7", **base}
        )


@pytest.mark.parametrize(
    "change",
    [
        {"operation": "Add"},
        {"operation": "Edit", "content": "x", "contentBase64": "eA=="},
        {"operation": "Delete", "content": "x"},
        {"operation": "Add", "contentBase64": "not base64!"},
    ],
)
def test_a_file_change_carries_content_exactly_when_it_writes(change: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        FileChangeRequest.model_validate({"path": "a.txt", **change})


def test_create_commit_leaves_message_changes_and_artifact_to_the_domain_rules() -> None:
    command = CreateCommit.model_validate(
        {
            "commitId": "commit-1",
            "repositoryId": "repo-1",
            "branch": "main",
            "message": "",
            "authoredBy": "agent-7",
            "fileChanges": [],
        }
    )

    assert (command.message, command.file_changes, command.artifact_id) == ("", [], None)


def test_a_bound_policy_takes_the_settings_of_its_type() -> None:
    with pytest.raises(ValidationError, match="BuildValidation"):
        BindBranchPolicy.model_validate(
            {
                "repositoryId": "repo-1",
                "branch": "main",
                "boundBy": "svc-pipelines",
                "binding": {
                    "bindingId": "bv-1",
                    "policyType": "BuildValidation",
                    "settings": {"checkName": "orders-build"},
                },
            }
        )
