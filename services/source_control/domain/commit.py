"""Commit: a commit authored from a generated artifact, traceable back to it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator
from pydantic_core import to_jsonable_python

from services.source_control.domain.errors import (
    CommitShaImmutable,
    DuplicateFilePath,
    EmptyCommitMessage,
    MissingArtifactReference,
    NoFileChanges,
)
from services.source_control.domain.repository import RepositoryKind
from shared_kernel.domain import AggregateRoot, DomainModel
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import (
    ArtifactReference,
    BranchName,
    CommitSha,
    Identifier,
    Identity,
    RepositoryPath,
    TreeHash,
)


class FilePath(RepositoryPath):
    """A path a commit changes."""


class FileOperation(StrEnum):
    ADD = "Add"
    EDIT = "Edit"
    DELETE = "Delete"


class FileChange(DomainModel):
    """One path a commit changes; the sha256 of the new content, unless deleted."""

    model_config = DomainModel.model_config | {"frozen": True}

    path: FilePath
    operation: FileOperation
    content_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _content_fits_operation(self) -> Self:
        if (self.operation is FileOperation.DELETE) != (self.content_sha256 is None):
            raise ValueError(
                f"{self.operation} of {self.path}: Add and Edit carry content_sha256, Delete not"
            )
        return self


class Commit(AggregateRoot):
    aggregate_type = "Commit"
    id_field = "commit_id"

    commit_id: Identifier
    command_id: Identifier
    repository_id: Identifier
    project_id: Identifier
    module_id: Identifier | None = None
    repository_kind: RepositoryKind
    branch: BranchName
    sha: CommitSha = Field(frozen=True)
    parent_shas: list[CommitSha]
    tree_hash: TreeHash
    message: str
    artifact_id: ArtifactReference
    authored_by: Identity
    bypassed_policy_by: Identity | None = None
    file_changes: list[FileChange]

    @staticmethod
    def check_request(message: str, file_changes: Sequence[FileChange], artifact_id: str | None) -> None:
        """The rules a commit request must pass before anything is written to Git."""
        if not message.strip():
            raise EmptyCommitMessage()
        if not file_changes:
            raise NoFileChanges()
        seen: set[str] = set()
        for change in file_changes:
            if change.path in seen:
                raise DuplicateFilePath(change.path)
            seen.add(change.path)
        if not (artifact_id and artifact_id.strip()):
            raise MissingArtifactReference()

    @classmethod
    def record_created(
        cls,
        *,
        commit_id: str,
        command_id: str,
        repository_id: str,
        tenant_id: str,
        project_id: str,
        module_id: str | None,
        repository_kind: RepositoryKind,
        branch: str,
        sha: str,
        parent_shas: Sequence[str],
        tree_hash: str,
        message: str,
        artifact_id: str | None,
        authored_by: str,
        bypassed_policy_by: str | None,
        file_changes: Sequence[FileChange],
        at: datetime,
    ) -> Commit:
        """Record a commit Git has accepted; its author is the event's actor."""
        cls.check_request(message, file_changes, artifact_id)
        commit = cls(
            commit_id=commit_id,
            command_id=command_id,
            repository_id=repository_id,
            tenant_id=tenant_id,
            project_id=project_id,
            module_id=module_id,
            repository_kind=repository_kind,
            branch=branch,
            sha=sha,
            parent_shas=list(parent_shas),
            tree_hash=tree_hash,
            message=message,
            artifact_id=artifact_id,
            authored_by=authored_by,
            bypassed_policy_by=bypassed_policy_by,
            file_changes=list(file_changes),
            **audit_fields(at=at, by=authored_by),
        )
        commit.record(
            "CommitCreated",
            to_jsonable_python(
                {
                    "commitId": commit.commit_id,
                    "repositoryId": commit.repository_id,
                    "tenantId": commit.tenant_id,
                    "projectId": commit.project_id,
                    "moduleId": commit.module_id,
                    "repositoryKind": commit.repository_kind,
                    "branch": commit.branch,
                    "sha": commit.sha,
                    "parentShas": commit.parent_shas,
                    "treeHash": commit.tree_hash,
                    "message": commit.message,
                    "artifactId": commit.artifact_id,
                    "authoredBy": commit.authored_by,
                    "bypassedPolicyBy": commit.bypassed_policy_by,
                    "fileChanges": commit.file_changes,
                    "createdAt": at,
                }
            ),
            at=at,
            by=authored_by,
        )
        return commit

    def confirm_sha(self, sha: str) -> None:
        """A redelivered request found ``sha`` in Git: it must be the one recorded."""
        if CommitSha(sha) != self.sha:
            raise CommitShaImmutable(self.commit_id, self.sha, sha)
