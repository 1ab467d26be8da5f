"""Repository: provisioning, its invariants, settings, webhooks and archiving."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import registry
from services.source_control.domain import (
    BranchPolicy,
    Repository,
    RepositoryKind,
    RepositoryName,
    RepositoryProvider,
    RepositoryStatus,
    Visibility,
    WebhookRegistration,
)
from services.source_control.domain.errors import (
    DefaultBranchMissing,
    DuplicateRepositoryName,
    ProviderImmutable,
    RepositoryAlreadyProvisioned,
    RepositoryNotActive,
)
from shared_kernel.domain import RecordedEvent

pytestmark = pytest.mark.unit

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
LATER = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
INITIAL_SHA = "1" * 40


def provision(**overrides: object) -> Repository:
    fields: dict[str, object] = {
        "repository_id": "repo-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "module_id": "module-1",
        "name": "orders-service",
        "kind": RepositoryKind.SOURCE,
        "provider": RepositoryProvider.AZURE_DEVOPS,
        "remote_url": "https://dev.azure.com/acme/project-1/_git/orders-service",
        "default_branch": "main",
        "visibility": Visibility.PRIVATE,
        "initial_commit_sha": INITIAL_SHA,
        "default_branch_policy": BranchPolicy(
            minimum_reviewers=2, required_checks=("build",), bypass_identities=("svc-release",)
        ),
        "at": AT,
        "by": "svc-provisioner",
    }
    return Repository.provision(**{**fields, **overrides})  # type: ignore[arg-type]


def only_event(repository: Repository) -> RecordedEvent:
    """The single pending event, checked against its contract."""
    [event] = repository.pull_events()
    registry.get(event.event_type, 1).payload.model_validate(event.payload)
    return event


def test_provision_records_repository_provisioned() -> None:
    repository = provision()

    assert repository.status is RepositoryStatus.ACTIVE
    assert repository.created_at == AT
    assert repository.created_by == "svc-provisioner"
    event = only_event(repository)
    assert event.event_type == "RepositoryProvisioned"
    assert event.payload == {
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "moduleId": "module-1",
        "name": "orders-service",
        "kind": "source",
        "provider": "AzureDevOps",
        "remoteUrl": "https://dev.azure.com/acme/project-1/_git/orders-service",
        "defaultBranch": "main",
        "visibility": "Private",
        "initialCommitSha": INITIAL_SHA,
        "defaultBranchPolicy": {
            "minimumReviewers": 2,
            "requiredChecks": ["build"],
            "bypassIdentities": ["svc-release"],
        },
        "createdAt": "2025-03-01T09:30:00Z",
        "provisionedBy": "svc-provisioner",
    }


def test_a_gitops_repository_may_have_no_module() -> None:
    repository = provision(kind=RepositoryKind.GITOPS, module_id=None, name="project-1-gitops")

    assert only_event(repository).payload["kind"] == "gitops"
    assert repository.module_id is None


@pytest.mark.parametrize("name", ["", ".hidden", "trailing.", "has space", "a/b", "x" * 65])
def test_provision_refuses_a_name_the_providers_refuse(name: str) -> None:
    with pytest.raises(ValidationError):
        provision(name=name)


def test_a_name_held_by_another_repository_of_the_project_is_refused() -> None:
    existing = provision()

    with pytest.raises(DuplicateRepositoryName, match="orders-service"):
        Repository.ensure_name_free(existing, repository_id="repo-2")


def test_names_are_compared_case_insensitively_by_their_key() -> None:
    # Azure DevOps and GitHub refuse "Orders-Service" beside "orders-service".
    assert RepositoryName("Orders-Service").key == RepositoryName("orders-SERVICE").key == "orders-service"
    assert RepositoryName("Orders-Service") == "Orders-Service"  # the name keeps its case
    assert RepositoryName("orders.v2").key != RepositoryName("orders-v2").key


def test_a_free_name_or_the_repository_s_own_name_is_accepted() -> None:
    Repository.ensure_name_free(None, repository_id="repo-2")
    Repository.ensure_name_free(provision(), repository_id="repo-1")


def test_the_provider_cannot_change_after_provisioning() -> None:
    repository = provision()
    repository.pull_events()

    with pytest.raises(ProviderImmutable, match="AzureDevOps"):
        repository.reprovision(provider=RepositoryProvider.GITHUB)

    assert repository.provider is RepositoryProvider.AZURE_DEVOPS
    assert not repository.has_pending_events


def test_provisioning_again_with_the_same_provider_is_stale() -> None:
    repository = provision()
    repository.pull_events()

    with pytest.raises(RepositoryAlreadyProvisioned):
        repository.reprovision(provider=RepositoryProvider.AZURE_DEVOPS)
    assert not repository.has_pending_events


def test_commits_need_the_default_branch() -> None:
    repository = provision()

    with pytest.raises(DefaultBranchMissing, match="'main'"):
        repository.ensure_accepts_commits(default_branch_exists=False)
    repository.ensure_accepts_commits(default_branch_exists=True)


def test_change_setting_records_the_new_and_previous_value() -> None:
    repository = provision()
    repository.pull_events()

    repository.change_setting("merge-strategy", "squash", at=AT, by="alice")
    repository.change_setting("merge-strategy", "rebase", at=LATER, by="bob")

    assert [(s.key, s.value) for s in repository.settings] == [("merge-strategy", "rebase")]
    first, second = repository.pull_events()
    for event in (first, second):
        registry.get(event.event_type, 1).payload.model_validate(event.payload)
    assert second.event_type == "RepositorySettingChanged"
    assert second.payload == {
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "key": "merge-strategy",
        "value": "rebase",
        "previousValue": "squash",
        "changedAt": "2025-03-02T09:30:00Z",
        "changedBy": "bob",
    }
    assert repository.updated_by == "bob"


def test_setting_a_value_it_already_has_records_nothing() -> None:
    repository = provision()
    repository.change_setting("merge-strategy", "squash", at=AT, by="alice")
    repository.pull_events()

    repository.change_setting("merge-strategy", "squash", at=LATER, by="alice")

    assert not repository.has_pending_events


def test_register_webhook_adds_or_replaces_by_id() -> None:
    repository = provision()
    repository.pull_events()
    hook = WebhookRegistration(webhook_id="wh-1", url="https://hooks.acme.io/git", events=["git.push"])

    repository.register_webhook(hook, at=AT, by="alice")

    assert only_event(repository).payload == {
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "webhookId": "wh-1",
        "url": "https://hooks.acme.io/git",
        "events": ["git.push"],
        "registeredAt": "2025-03-01T09:30:00Z",
        "registeredBy": "alice",
    }
    repository.register_webhook(hook, at=LATER, by="alice")
    assert not repository.has_pending_events

    moved = hook.model_copy(update={"events": ("git.push", "git.pullrequest.merged")})
    repository.register_webhook(moved, at=LATER, by="alice")
    assert repository.webhooks == [moved]
    assert only_event(repository).event_type == "WebhookRegistered"


def test_archive_records_repository_archived_once() -> None:
    repository = provision()
    repository.pull_events()

    repository.archive("module retired", at=LATER, by="alice")

    assert repository.status is RepositoryStatus.ARCHIVED
    assert only_event(repository).payload == {
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "moduleId": "module-1",
        "reason": "module retired",
        "archivedAt": "2025-03-02T09:30:00Z",
        "archivedBy": "alice",
    }
    with pytest.raises(RepositoryNotActive):
        repository.archive("again", at=LATER, by="alice")
    assert not repository.has_pending_events


def test_an_archived_repository_accepts_no_commits_settings_or_webhooks() -> None:
    repository = provision()
    repository.archive("retired", at=AT, by="alice")
    repository.pull_events()
    hook = WebhookRegistration(webhook_id="wh-1", url="https://hooks.acme.io/git", events=["git.push"])

    with pytest.raises(RepositoryNotActive):
        repository.ensure_accepts_commits(default_branch_exists=True)
    with pytest.raises(RepositoryNotActive):
        repository.change_setting("merge-strategy", "squash", at=LATER, by="alice")
    with pytest.raises(RepositoryNotActive):
        repository.register_webhook(hook, at=LATER, by="alice")

    assert repository.settings == []
    assert repository.webhooks == []
    assert not repository.has_pending_events


def test_the_default_branch_policy_becomes_bindings_carrying_the_bypass_identities() -> None:
    policy = BranchPolicy(minimum_reviewers=0, required_checks=("build", "lint"), bypass_identities=("svc",))

    bindings = policy.bindings("branch-1")

    assert [(b.binding_id, b.policy_type) for b in bindings] == [
        ("branch-1:minimum-reviewers", "MinimumReviewers"),
        ("branch-1:check:build", "RequiredCheck"),
        ("branch-1:check:lint", "RequiredCheck"),
    ]
    assert all(b.bypass_identities == ("svc",) for b in bindings)
