"""PackagePublication: a NuGet package version published to an Azure Artifacts feed.

A published version is immutable, as NuGet feeds make it: (packageId, version,
feed) names one content forever, compared the way NuGet compares them
(case-insensitively, build metadata ignored). The uniqueness of that key
across publications is a fact outside one aggregate: the handler finds the
publication holding the key and hands it in, and a database constraint on the
keys backs it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field
from pydantic_core import to_jsonable_python

from services.packaging.domain.build_record import BuildRecord, ModuleType
from services.packaging.domain.errors import (
    PackageAlreadyPublished,
    PackageIdMismatch,
    PackageVersionAlreadyPublished,
    PackageVersionMismatch,
    PublishedVersionImmutable,
)
from services.packaging.domain.values import FeedReference, PackageId, PackageVersion, VersionRange
from shared_kernel.domain import AggregateRoot, DomainModel
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import Identifier, Sha256


class PublicationStatus(StrEnum):
    """A publication exists once its package is in the feed, and a published version stays published."""

    PUBLISHED = "Published"


class PackageDependency(DomainModel):
    """A package this one depends on; no ``version_range`` means any version."""

    model_config = DomainModel.model_config | {"frozen": True}

    id: PackageId
    version_range: VersionRange | None = None


class PackageContent(DomainModel):
    """What a package file is: the identity its nuspec declares, its sha256 and size, its dependencies."""

    model_config = DomainModel.model_config | {"frozen": True}

    package_id: PackageId
    version: PackageVersion
    sha256: Sha256
    size: int = Field(ge=0)
    dependencies: tuple[PackageDependency, ...] = ()

    def ensure_is(self, package_id: str, version: str) -> None:
        """Refuse a file that is not the package a request names (an explicit PublishPackage)."""
        if self.package_id.key != PackageId(package_id).key:
            raise PackageIdMismatch(package_id, self.package_id)
        if self.version.key != PackageVersion(version).key:
            raise PackageVersionMismatch(self.package_id, self.version, version, "the request")


# Fields that make up what was published; none may change afterwards.
_PUBLISHED_FIELDS = frozenset(
    {
        "build_result_id",
        "module_id",
        "package_id",
        "package_version",
        "feed",
        "sha256",
        "size",
        "dependencies",
    }
)


class PackagePublication(AggregateRoot):
    """One package version in one feed, from one successful build of a library."""

    aggregate_type = "PackagePublication"
    id_field = "publication_id"

    publication_id: Identifier
    project_id: Identifier
    build_result_id: Identifier
    module_id: Identifier
    package_id: PackageId
    # ``version`` is the aggregate's concurrency token: the published version is ``package_version``
    # here and ``version`` in PackagePublished.
    package_version: PackageVersion
    feed: FeedReference
    status: PublicationStatus = PublicationStatus.PUBLISHED
    published_at: datetime
    sha256: Sha256
    size: int = Field(ge=0)
    dependencies: tuple[PackageDependency, ...]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PUBLISHED_FIELDS:
            raise PublishedVersionImmutable(
                self.publication_id, self.package_id, self.package_version, [_camel(name)]
            )
        super().__setattr__(name, value)

    @property
    def key(self) -> tuple[str, str, str]:
        """(packageId, version, feed) as NuGet compares them: the publication's unique key in a tenant."""
        return self.package_id.key, self.package_version.key, self.feed.key

    @classmethod
    def publish(
        cls,
        *,
        publication_id: str,
        build_result_id: str,
        build: BuildRecord | None,
        content: PackageContent,
        feed: str,
        existing: PackagePublication | None,
        at: datetime,
        by: str,
    ) -> PackagePublication:
        """Record ``content`` as published to ``feed`` from the build ``build_result_id``.

        ``build`` is Packaging's record of that build (None: never heard of);
        ``existing`` is the publication holding the same (packageId, version,
        feed), if any. The same publication asked again is stale; the build
        must be a successful library build of the package's version; another
        publication of the same key is refused, since a published version
        never changes.
        """
        if existing is not None and existing.publication_id == Identifier(publication_id):
            existing.republish(content, feed=feed)
        record = BuildRecord.require(build, build_result_id)
        record.ensure_succeeded()
        record.ensure_module_type(ModuleType.LIBRARY)
        if content.version.key != record.build_version.key:
            raise PackageVersionMismatch(
                content.package_id, content.version, record.build_version, f"build {record.build_result_id}"
            )
        if existing is not None:
            raise PackageVersionAlreadyPublished(
                existing.package_id, existing.package_version, existing.feed, existing.publication_id
            )
        publication = cls(
            publication_id=publication_id,
            tenant_id=record.tenant_id,
            project_id=record.project_id,
            build_result_id=record.build_result_id,
            module_id=record.module_id,
            package_id=content.package_id,
            package_version=content.version,
            feed=feed,
            published_at=at,
            sha256=content.sha256,
            size=content.size,
            dependencies=content.dependencies,
            **audit_fields(at=at, by=by),
        )
        publication.record(
            "PackagePublished",
            to_jsonable_python(
                {
                    "publicationId": publication.publication_id,
                    "tenantId": publication.tenant_id,
                    "projectId": publication.project_id,
                    "buildResultId": publication.build_result_id,
                    "moduleId": publication.module_id,
                    "packageId": publication.package_id,
                    "version": publication.package_version,
                    "feed": publication.feed,
                    "status": publication.status,
                    "sha256": publication.sha256,
                    "size": publication.size,
                    "dependencies": [dependency.wire() for dependency in publication.dependencies],
                    "publishedAt": at,
                    "publishedBy": by,
                }
            ),
            at=at,
            by=by,
        )
        return publication

    def republish(self, content: PackageContent, *, feed: str) -> None:
        """This publication asked again: stale if it asks for what was published, refused otherwise.

        It never succeeds: a published version is immutable, so there is
        nothing a second publish could change.
        """
        changed = [
            name
            for name, differs in (
                ("packageId", content.package_id.key != self.package_id.key),
                ("version", content.version.key != self.package_version.key),
                ("feed", FeedReference(feed).key != self.feed.key),
                ("content", content.sha256 != self.sha256 or content.size != self.size),
            )
            if differs
        ]
        name = (self.publication_id, self.package_id, self.package_version)
        if changed:
            raise PublishedVersionImmutable(*name, changed)
        raise PackageAlreadyPublished(*name, self.feed)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
