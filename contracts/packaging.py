"""Packaging contracts: the commands it takes and the events it emits.

Packages and images normally follow a successful BuildCompleted without a
command; ``PublishPackage`` asks for a build's package explicitly (to another
feed, or again after a refusal was fixed). The scanner reports each scan with
``RecordImageScan``. Every event carries tenantId, projectId and moduleId
(the envelope takes moduleId from the payload), and ContainerImageScanned
alone tells Release whether an image may be promoted (``promotable``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.base import Event, Payload
from contracts.registry import registry
from shared_kernel.domain.value_objects import Identifier, Identity, ImageDigest, SemanticVersion

CONTEXT = "packaging"

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
PublicationStatus = Literal["Published"]
ImageStatus = Literal["Built", "ScanPassed", "ScanFailed"]

# The same rules as the domain's value objects (contracts import no service's domain).
PACKAGE_ID_PATTERN = r"^[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*$"
FEED_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?$"
REGISTRY_PATTERN = (
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::[0-9]{1,5})?$"
)
REPOSITORY_PATTERN = r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"

PackageId = Annotated[str, Field(pattern=PACKAGE_ID_PATTERN, max_length=100)]
Feed = Annotated[str, Field(pattern=FEED_PATTERN, max_length=129)]
Registry = Annotated[str, Field(pattern=REGISTRY_PATTERN, max_length=259)]
RepositoryName = Annotated[str, Field(pattern=REPOSITORY_PATTERN, max_length=255)]
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]
Count = Annotated[int, Field(ge=0)]


# Parts shared by several messages


class VulnerabilityFinding(Payload):
    """One finding of a scanner, in Trivy's shape; no (or an empty) fixedVersion means no fix exists."""

    vulnerability_id: Identifier
    package_name: str = Field(min_length=1, max_length=255)
    installed_version: str = Field(min_length=1, max_length=255)
    fixed_version: str | None = Field(default=None, max_length=255)
    severity: Severity


class PackageDependencyRecord(Event):
    """A package dependency as the nuspec declares it; no versionRange means any version."""

    id: PackageId
    version_range: str | None = Field(max_length=255)


class ImageLayerRecord(Event):
    """A layer of an image, as its manifest describes it."""

    digest: ImageDigest
    size: Count
    media_type: str = Field(min_length=1, max_length=255)


class ScanPolicyRecord(Event):
    """The policy a scan was judged by: blocked severities, and whether only fixable findings block."""

    blocked_severities: list[Severity]
    only_with_fix_available: bool


# Commands


class PublishBuildOutput(Payload):
    """Publish what a successful build produced: a library's packages, a service's image.

    Packaging sends it to itself on a successful BuildCompleted, after keeping
    the build in its read model, so a publication that is refused (its rule
    named in CommandRejected) never costs the record of the build. Sent again
    (by an operator, after fixing an artifact) it publishes what is still
    missing; what is published already is acknowledged as stale.
    """

    build_result_id: Identifier


class PublishPackage(Payload):
    """Publish a successful library build's package version to a feed.

    Refused for an unknown or unsuccessful build, a version other than the
    build's, and a version the feed already has (published versions are
    immutable); the same publicationId again is acknowledged and changes nothing.
    """

    publication_id: Identifier
    build_result_id: Identifier
    package_id: PackageId
    version: SemanticVersion
    feed: Feed
    requested_by: Identity


class RecordImageScan(Payload):
    """The scanner reports a vulnerability scan of an image: every finding with its severity."""

    scan_id: Identifier
    image_id: Identifier
    scanner: Identifier
    scanner_version: str = Field(min_length=1, max_length=64)
    findings: list[VulnerabilityFinding] = Field(default=[], max_length=100_000)
    scanned_at: AwareDatetime
    reported_by: Identity


# Events


class PackagePublished(Event):
    """A package version was published to a feed; it never changes afterwards."""

    publication_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    build_result_id: Identifier
    module_id: Identifier
    package_id: PackageId
    version: SemanticVersion
    feed: Feed
    status: PublicationStatus
    sha256: Sha256
    size: Count
    dependencies: list[PackageDependencyRecord]
    published_at: AwareDatetime
    published_by: Identity


class _ImageEvent(Event):
    image_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    build_result_id: Identifier
    module_id: Identifier
    registry: Registry
    repository_name: RepositoryName
    tag: Tag
    digest: ImageDigest
    status: ImageStatus


class ContainerImageBuilt(_ImageEvent):
    """A service build's image was pushed to a registry: Built, not yet scanned, so not promotable."""

    layers: list[ImageLayerRecord]
    built_at: AwareDatetime
    built_by: Identity


class ContainerImageScanned(_ImageEvent):
    """A vulnerability scan of an image was judged by the project's scan policy.

    ``passed`` is this scan's verdict; ``status`` and ``promotable`` are the
    image's standing after it, set by its most recent scan (by scannedAt). They
    differ only when an older scan's report arrives after a newer one. Release
    promotes an image only while ``promotable`` is true.
    """

    scan_id: Identifier
    scanner: Identifier
    scanner_version: str
    passed: bool
    severity_counts: dict[Severity, Count]
    blocking_findings: Count
    policy: ScanPolicyRecord
    reasons: list[str]
    scanned_at: AwareDatetime
    scanned_by: Identity
    promotable: bool


for _command in (PublishBuildOutput, PublishPackage, RecordImageScan):
    registry.command(CONTEXT, _command)

for _event in (PackagePublished, ContainerImageBuilt, ContainerImageScanned):
    registry.event(CONTEXT, _event)
