"""The Packaging database: package publications, container images, the build read model.

Uniqueness invariants are constraints that include the tenant; each maps to
the domain rule it backs (see ``MAPPINGS``). Keys are stored as NuGet and OCI
compare them (case-insensitive package ids and feeds, build metadata ignored).
"""

from __future__ import annotations

from sqlalchemy import Column, Text, UniqueConstraint

from services.packaging.domain import errors
from services.packaging.domain.build_record import BuildRecord
from services.packaging.domain.image import ContainerImage
from services.packaging.domain.publication import PackagePublication
from shared_kernel.persistence.store import AggregateMapping
from shared_kernel.persistence.tables import aggregate_table, service_metadata

metadata = service_metadata()

package_publications = aggregate_table(
    metadata,
    "package_publications",
    Column("package_key", Text, nullable=False),
    Column("version_key", Text, nullable=False),
    Column("feed_key", Text, nullable=False),
    UniqueConstraint(
        "tenant_id", "package_key", "version_key", "feed_key", name="uq_package_publications_version"
    ),
)
container_images = aggregate_table(
    metadata,
    "container_images",
    Column("registry", Text, nullable=False),
    Column("repository_name", Text, nullable=False),
    Column("tag", Text, nullable=False),
    Column("digest", Text, nullable=False),
    UniqueConstraint("tenant_id", "registry", "digest", name="uq_container_images_digest"),
    UniqueConstraint("tenant_id", "registry", "repository_name", "tag", name="uq_container_images_tag"),
)
build_records = aggregate_table(metadata, "build_records")

AGGREGATE_TABLES = ("package_publications", "container_images", "build_records")

MAPPINGS = {
    PackagePublication: AggregateMapping(
        PackagePublication,
        package_publications,
        columns={
            "package_key": lambda p: p.key[0],
            "version_key": lambda p: p.key[1],
            "feed_key": lambda p: p.key[2],
        },
        unique_rules={
            "uq_package_publications_version": lambda p: errors.PackageVersionAlreadyPublished(
                p.package_id, p.package_version, p.feed, "another publication"
            )
        },
    ),
    ContainerImage: AggregateMapping(
        ContainerImage,
        container_images,
        columns={
            "registry": lambda i: str(i.registry),
            "repository_name": lambda i: str(i.repository_name),
            "tag": lambda i: str(i.tag),
            "digest": lambda i: str(i.digest),
        },
        unique_rules={
            "uq_container_images_digest": lambda i: errors.DigestAlreadyRecorded(
                i.registry, i.digest, "another image"
            ),
            "uq_container_images_tag": lambda i: errors.TagBoundToOtherDigest(
                i.registry, i.repository_name, i.tag, "another digest", i.digest
            ),
        },
    ),
    BuildRecord: AggregateMapping(BuildRecord, build_records),
}
