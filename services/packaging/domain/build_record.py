"""BuildRecord: Packaging's own copy of a build's outcome (Pipelines' BuildCompleted).

"References a successful build" is a fact Pipelines owns, so Packaging keeps
the BuildCompleted events it receives as read models in its own database and
checks them here; it never reads Pipelines' database. The build's ``version``
is ``build_version`` because ``version`` is the concurrency token.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath

from pydantic import Field

from services.packaging.domain.errors import (
    BuildAlreadyRecorded,
    BuildNotKnown,
    BuildNotSucceeded,
    ModuleTypeMismatch,
    PackageArtifactMissing,
    TargetFeedMalformed,
)
from services.packaging.domain.values import (
    FeedReference,
    PackageId,
    PackageVersion,
    RegistryReference,
    RepositoryName,
)
from shared_kernel.domain import DomainModel, InvalidValue, ReadModel
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import BlobReference, BranchName, CommitSha, Identifier, Sha256


class ModuleType(StrEnum):
    """A library's build yields NuGet packages; a service's build yields a container image."""

    LIBRARY = "library"
    SERVICE = "service"


class BuildStatus(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class BuildArtifact(DomainModel):
    """A file the build produced, stored in the blob store (``uri``) with its sha256."""

    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    uri: BlobReference
    sha256: Sha256
    size: int = Field(ge=0)

    @property
    def file_name(self) -> str:
        """The artifact's name without any folder in front of it."""
        return PurePosixPath(self.name).name


class BuildRecord(ReadModel):
    """A build as BuildCompleted reported it; never changed once recorded (a build's outcome is final)."""

    aggregate_type = "BuildRecord"
    id_field = "build_result_id"

    build_result_id: Identifier
    pipeline_run_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    repository_id: Identifier
    commit_sha: CommitSha
    branch: BranchName
    status: BuildStatus
    build_version: PackageVersion
    target_feed: str = Field(min_length=1, max_length=255)
    artifacts: tuple[BuildArtifact, ...]
    completed_at: datetime

    @classmethod
    def from_build_completed(
        cls,
        *,
        build_result_id: str,
        pipeline_run_id: str,
        tenant_id: str,
        project_id: str,
        module_id: str,
        module_type: str,
        repository_id: str,
        commit_sha: str,
        branch: str,
        status: str,
        version: str,
        target_feed: str,
        artifacts: Sequence[BuildArtifact],
        completed_at: datetime,
        at: datetime,
        by: str,
    ) -> BuildRecord:
        """The record of a BuildCompleted payload's fields (``version``: the built version)."""
        return cls(
            build_result_id=build_result_id,
            pipeline_run_id=pipeline_run_id,
            tenant_id=tenant_id,
            project_id=project_id,
            module_id=module_id,
            module_type=ModuleType(module_type),
            repository_id=repository_id,
            commit_sha=commit_sha,
            branch=branch,
            status=BuildStatus(status),
            build_version=version,
            target_feed=target_feed,
            artifacts=tuple(artifacts),
            completed_at=completed_at,
            **audit_fields(at=at, by=by),
        )

    @staticmethod
    def ensure_not_recorded(existing: BuildRecord | None) -> None:
        """A BuildCompleted for a build already recorded is stale: a build's outcome never changes."""
        if existing is not None:
            raise BuildAlreadyRecorded(existing.build_result_id)

    @staticmethod
    def require(record: BuildRecord | None, build_result_id: str) -> BuildRecord:
        """The record found for ``build_result_id``; a build Packaging never heard of is refused.

        Refused, not retried: a publish names a build that finished earlier, so
        an unknown one is a wrong reference rather than a message still on its way.
        """
        if record is None or record.build_result_id != Identifier(build_result_id):
            raise BuildNotKnown(build_result_id)
        return record

    def ensure_succeeded(self) -> None:
        if self.status is not BuildStatus.SUCCEEDED:
            raise BuildNotSucceeded(self.build_result_id, self.status)

    def ensure_module_type(self, expected: ModuleType) -> None:
        if self.module_type is not expected:
            output = "packages" if expected is ModuleType.LIBRARY else "container images"
            raise ModuleTypeMismatch(self.build_result_id, self.module_type, expected, output)

    def package_artifacts(self) -> tuple[BuildArtifact, ...]:
        """The NuGet packages among the artifacts (``.nupkg``; symbol packages are left out)."""
        return tuple(
            artifact
            for artifact in self.artifacts
            if artifact.file_name.lower().endswith(".nupkg")
            and not artifact.file_name.lower().endswith(".symbols.nupkg")
        )

    def package_artifact(self, package_id: str, version: str) -> BuildArtifact:
        """The artifact ``<id>.<version>.nupkg`` as ``dotnet pack`` names it, in any letter case."""
        expected = f"{PackageId(package_id).key}.{PackageVersion(version).key}.nupkg"
        for artifact in self.package_artifacts():
            if artifact.file_name.lower() == expected:
                return artifact
        raise PackageArtifactMissing(
            self.build_result_id, expected, [artifact.name for artifact in self.artifacts]
        )

    def package_feed(self) -> FeedReference:
        """Where a library's build publishes its packages: ``targetFeed`` is ``feed`` or ``project/feed``."""
        try:
            return FeedReference(self.target_feed)
        except InvalidValue as error:
            raise TargetFeedMalformed(self.build_result_id, self.target_feed, str(error)) from error

    def image_destination(self) -> tuple[RegistryReference, RepositoryName]:
        """Where a service's image goes: ``targetFeed`` is ``registry/repository`` for a service."""
        registry, slash, repository = self.target_feed.partition("/")
        if not slash:
            reason = "a service's target is registry/repository, with no '/' here"
            raise TargetFeedMalformed(self.build_result_id, self.target_feed, reason)
        try:
            return RegistryReference(registry), RepositoryName(repository)
        except InvalidValue as error:
            raise TargetFeedMalformed(self.build_result_id, self.target_feed, str(error)) from error
