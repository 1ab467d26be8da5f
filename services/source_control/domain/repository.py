"""Repository: the durable handle to a project's (or module's) Git repository."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import Field, HttpUrl
from pydantic_core import to_jsonable_python

from services.source_control.domain.errors import (
    DefaultBranchMissing,
    DuplicateRepositoryName,
    ProviderImmutable,
    RepositoryAlreadyProvisioned,
    RepositoryNotActive,
)
from services.source_control.domain.policy import BranchPolicy
from shared_kernel.domain import AggregateRoot, DomainModel, StateMachine
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import (
    BranchName,
    CommitSha,
    Identifier,
    RemoteUrl,
    ValueString,
)


class RepositoryKind(StrEnum):
    """Commits to a ``gitops`` repository are desired state: they start no CI run."""

    SOURCE = "source"
    GITOPS = "gitops"


class RepositoryProvider(StrEnum):
    AZURE_DEVOPS = "AzureDevOps"
    GITHUB = "GitHub"


class Visibility(StrEnum):
    PRIVATE = "Private"
    PUBLIC = "Public"


class RepositoryStatus(StrEnum):
    ACTIVE = "Active"
    ARCHIVED = "Archived"


LIFECYCLE = StateMachine({RepositoryStatus.ACTIVE: {RepositoryStatus.ARCHIVED}})


class RepositoryName(ValueString):
    """A name both Azure DevOps and GitHub accept."""

    pattern = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?")
    description = "letters, digits, '.', '_' and '-', not starting or ending with '.'"
    max_length = 64

    @property
    def key(self) -> str:
        """The name as Azure DevOps and GitHub compare it: case-insensitively."""
        return self.lower()


class RepositorySetting(DomainModel):
    model_config = DomainModel.model_config | {"frozen": True}

    key: Identifier
    value: str


class WebhookRegistration(DomainModel):
    model_config = DomainModel.model_config | {"frozen": True}

    webhook_id: Identifier
    url: HttpUrl
    events: tuple[Identifier, ...] = Field(min_length=1)


class Repository(AggregateRoot):
    aggregate_type = "Repository"
    id_field = "repository_id"

    repository_id: Identifier
    project_id: Identifier
    module_id: Identifier | None = None
    name: RepositoryName
    kind: RepositoryKind
    provider: RepositoryProvider
    remote_url: RemoteUrl
    default_branch: BranchName
    visibility: Visibility
    status: RepositoryStatus = RepositoryStatus.ACTIVE
    initial_commit_sha: CommitSha
    default_branch_policy: BranchPolicy = BranchPolicy()
    settings: list[RepositorySetting] = []
    webhooks: list[WebhookRegistration] = []

    @staticmethod
    def ensure_name_free(existing: Repository | None, *, repository_id: str) -> None:
        """Refuse a name another repository of the project holds (``existing``, found by its key)."""
        if existing is not None and existing.repository_id != repository_id:
            raise DuplicateRepositoryName(existing.project_id, existing.name)

    @classmethod
    def provision(
        cls,
        *,
        repository_id: str,
        tenant_id: str,
        project_id: str,
        module_id: str | None,
        name: str,
        kind: RepositoryKind,
        provider: RepositoryProvider,
        remote_url: str,
        default_branch: str,
        visibility: Visibility,
        initial_commit_sha: str,
        default_branch_policy: BranchPolicy,
        at: datetime,
        by: str,
    ) -> Repository:
        """Record a repository the provider has created, with its initial commit."""
        repository = cls(
            repository_id=repository_id,
            tenant_id=tenant_id,
            project_id=project_id,
            module_id=module_id,
            name=name,
            kind=kind,
            provider=provider,
            remote_url=remote_url,
            default_branch=default_branch,
            visibility=visibility,
            initial_commit_sha=initial_commit_sha,
            default_branch_policy=default_branch_policy,
            **audit_fields(at=at, by=by),
        )
        repository.record(
            "RepositoryProvisioned",
            to_jsonable_python(
                {
                    **repository._scope(),
                    "moduleId": repository.module_id,
                    "name": repository.name,
                    "kind": repository.kind,
                    "provider": repository.provider,
                    "remoteUrl": repository.remote_url,
                    "defaultBranch": repository.default_branch,
                    "visibility": repository.visibility,
                    "initialCommitSha": repository.initial_commit_sha,
                    "defaultBranchPolicy": repository.default_branch_policy,
                    "createdAt": at,
                    "provisionedBy": by,
                }
            ),
            at=at,
            by=by,
        )
        return repository

    def reprovision(self, *, provider: RepositoryProvider) -> None:
        """A second ProvisionRepository for this id: refused, or stale if it asks the same."""
        if provider != self.provider:
            raise ProviderImmutable(self.repository_id, self.provider, provider)
        raise RepositoryAlreadyProvisioned(self.repository_id)

    def ensure_active(self) -> None:
        if self.status is not RepositoryStatus.ACTIVE:
            raise RepositoryNotActive(self.repository_id, self.status)

    def ensure_accepts_commits(self, *, default_branch_exists: bool) -> None:
        """Commits (and branches) need an active repository whose default branch exists."""
        self.ensure_active()
        if not default_branch_exists:
            raise DefaultBranchMissing(self.repository_id, self.default_branch)

    def change_setting(self, key: str, value: str, *, at: datetime, by: str) -> None:
        """Set a configuration entry; setting the value it already has records nothing."""
        self.ensure_active()
        setting = RepositorySetting(key=key, value=value)
        previous = next((s for s in self.settings if s.key == setting.key), None)
        if previous == setting:
            return
        self.settings = [*(s for s in self.settings if s.key != setting.key), setting]
        self.record(
            "RepositorySettingChanged",
            to_jsonable_python(
                {
                    **self._scope(),
                    **setting.wire(),
                    "previousValue": previous.value if previous else None,
                    "changedAt": at,
                    "changedBy": by,
                }
            ),
            at=at,
            by=by,
        )

    def register_webhook(self, webhook: WebhookRegistration, *, at: datetime, by: str) -> None:
        """Add or replace the webhook with this id; re-registering it unchanged records nothing."""
        self.ensure_active()
        if webhook in self.webhooks:
            return
        others = (w for w in self.webhooks if w.webhook_id != webhook.webhook_id)
        self.webhooks = [*others, webhook]
        self.record(
            "WebhookRegistered",
            to_jsonable_python({**self._scope(), **webhook.wire(), "registeredAt": at, "registeredBy": by}),
            at=at,
            by=by,
        )

    def archive(self, reason: str, *, at: datetime, by: str) -> None:
        if not LIFECYCLE.can(self.status, RepositoryStatus.ARCHIVED):
            raise RepositoryNotActive(self.repository_id, self.status)
        self.status = RepositoryStatus.ARCHIVED
        self.record(
            "RepositoryArchived",
            to_jsonable_python(
                {
                    **self._scope(),
                    "moduleId": self.module_id,
                    "reason": reason,
                    "archivedAt": at,
                    "archivedBy": by,
                }
            ),
            at=at,
            by=by,
        )

    def _scope(self) -> dict[str, str | None]:
        return {
            "repositoryId": self.repository_id,
            "tenantId": self.tenant_id,
            "projectId": self.project_id,
        }
