"""ContainerImage: a service's image pushed to a container registry, and its vulnerability scans.

An image is one digest in one registry, pushed under one tag of one
repository. Uniqueness across images (a digest once per registry, a tag
bound to one digest) is checked against the images the handler finds by
those keys, and backed by database constraints.

Scans converge: the most recent scan (by ``scannedAt``, then scan id) decides
the status, whatever order the scanner's reports arrive in. A report older
than one already recorded joins the history and is announced, but leaves the
status as the newer scan set it; a report whose scan id is recorded is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field
from pydantic_core import to_jsonable_python

from services.packaging.domain.build_record import BuildRecord, ModuleType
from services.packaging.domain.errors import (
    DigestAlreadyRecorded,
    IllegalImageTransition,
    ImageAlreadyRecorded,
    ImageFailedScan,
    ImageNotRecorded,
    ImageNotScanned,
    ScanAlreadyRecorded,
    TagBoundToOtherDigest,
)
from services.packaging.domain.scan_policy import ScanPolicy, VulnerabilityFinding
from services.packaging.domain.values import ImageTag, RegistryReference, RepositoryName, Severity
from shared_kernel.domain import AggregateRoot, DomainModel, StateMachine
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import Identifier, ImageDigest


class ImageStatus(StrEnum):
    BUILT = "Built"
    SCAN_PASSED = "ScanPassed"
    SCAN_FAILED = "ScanFailed"


# A newer scan may reverse the verdict either way: a new advisory fails a passed
# image, a fixed base image or a changed policy passes a failed one.
LIFECYCLE = StateMachine(
    {
        ImageStatus.BUILT: {ImageStatus.SCAN_PASSED, ImageStatus.SCAN_FAILED},
        ImageStatus.SCAN_PASSED: {ImageStatus.SCAN_FAILED},
        ImageStatus.SCAN_FAILED: {ImageStatus.SCAN_PASSED},
    }
)


class ImageLayer(DomainModel):
    """A layer of the image as the manifest describes it."""

    model_config = DomainModel.model_config | {"frozen": True}

    digest: ImageDigest
    size: int = Field(ge=0)
    media_type: str = Field(min_length=1, max_length=255)


class ScanReport(DomainModel):
    """A scanner's report on an image: every finding, and when the scan ran."""

    model_config = DomainModel.model_config | {"frozen": True}

    scan_id: Identifier
    scanner: Identifier
    scanner_version: str = Field(min_length=1, max_length=64)
    findings: tuple[VulnerabilityFinding, ...] = ()
    scanned_at: datetime


class ImageScanResult(DomainModel):
    """A scan as recorded: the policy it was judged by and the verdict, not the findings themselves."""

    model_config = DomainModel.model_config | {"frozen": True}

    scan_id: Identifier
    scanner: Identifier
    scanner_version: str = Field(min_length=1, max_length=64)
    policy: ScanPolicy
    severity_counts: dict[Severity, int]
    blocking_findings: int = Field(ge=0)
    passed: bool
    reasons: tuple[str, ...]
    scanned_at: datetime

    @property
    def order(self) -> tuple[datetime, str]:
        """Which of two scans is the more recent: later ``scannedAt``, ties broken by scan id."""
        return self.scanned_at, self.scan_id


class ContainerImage(AggregateRoot):
    """A built image, Built → ScanPassed | ScanFailed; promotable only while its latest scan passed."""

    aggregate_type = "ContainerImage"
    id_field = "image_id"

    image_id: Identifier
    project_id: Identifier
    build_result_id: Identifier
    module_id: Identifier
    registry: RegistryReference
    repository_name: RepositoryName
    tag: ImageTag
    digest: ImageDigest
    status: ImageStatus = ImageStatus.BUILT
    built_at: datetime
    layers: tuple[ImageLayer, ...]
    scans: tuple[ImageScanResult, ...] = ()

    @property
    def reference(self) -> str:
        """``registry/repository:tag@digest``, how a person or a Kubernetes manifest names the image."""
        return f"{self.registry}/{self.repository_name}:{self.tag}@{self.digest}"

    @property
    def latest_scan(self) -> ImageScanResult | None:
        return self.scans[-1] if self.scans else None

    @property
    def promotable(self) -> bool:
        """Whether the image may be promoted: its latest scan passed."""
        return self.status is ImageStatus.SCAN_PASSED

    @staticmethod
    def require(image: ContainerImage | None, image_id: str) -> ContainerImage:
        """The image found for ``image_id``; one not recorded yet is waited for (its build is in flight)."""
        if image is None or image.image_id != Identifier(image_id):
            raise ImageNotRecorded(image_id)
        return image

    @staticmethod
    def ensure_digest_free(existing: ContainerImage | None, *, image_id: str) -> None:
        """Refuse a digest another image of the registry holds (``existing``: found by registry, digest)."""
        if existing is not None and existing.image_id != Identifier(image_id):
            raise DigestAlreadyRecorded(existing.registry, existing.digest, existing.image_id)

    @staticmethod
    def ensure_tag_free(existing: ContainerImage | None, *, digest: str) -> None:
        """Refuse a tag bound to another digest (``existing``, found by registry, repository and tag)."""
        if existing is not None and existing.digest != ImageDigest(digest):
            raise TagBoundToOtherDigest(
                existing.registry, existing.repository_name, existing.tag, existing.digest, digest
            )

    @classmethod
    def record_built(
        cls,
        *,
        image_id: str,
        build_result_id: str,
        build: BuildRecord | None,
        registry: str,
        repository_name: str,
        tag: str,
        digest: str,
        layers: Sequence[ImageLayer],
        same_digest: ContainerImage | None,
        same_tag: ContainerImage | None,
        at: datetime,
        by: str,
    ) -> ContainerImage:
        """Record the image a successful service build pushed.

        ``same_digest`` is the image found by (registry, digest), ``same_tag``
        the one found by (registry, repository, tag); either being this image
        means it is recorded already (stale).
        """
        if any(found is not None and found.image_id == image_id for found in (same_digest, same_tag)):
            raise ImageAlreadyRecorded(image_id)
        record = BuildRecord.require(build, build_result_id)
        record.ensure_succeeded()
        record.ensure_module_type(ModuleType.SERVICE)
        cls.ensure_digest_free(same_digest, image_id=image_id)
        cls.ensure_tag_free(same_tag, digest=digest)
        image = cls(
            image_id=image_id,
            tenant_id=record.tenant_id,
            project_id=record.project_id,
            build_result_id=record.build_result_id,
            module_id=record.module_id,
            registry=registry,
            repository_name=repository_name,
            tag=tag,
            digest=digest,
            built_at=at,
            layers=tuple(layers),
            **audit_fields(at=at, by=by),
        )
        image._record(
            "ContainerImageBuilt",
            {
                "status": image.status,
                "layers": [layer.wire() for layer in image.layers],
                "builtAt": at,
                "builtBy": by,
            },
            at=at,
            by=by,
        )
        return image

    def record_scan(self, report: ScanReport, policy: ScanPolicy, *, at: datetime, by: str) -> None:
        """Judge ``report`` by ``policy``, add it to the history and let the most recent scan set the status.

        ContainerImageScanned carries this scan's verdict (``passed``) and the
        image's standing after it (``status``, ``promotable``); they differ when
        an older report arrives after a newer one.
        """
        if any(scan.scan_id == report.scan_id for scan in self.scans):
            raise ScanAlreadyRecorded(self.image_id, report.scan_id)
        verdict = policy.evaluate(report.findings)
        result = ImageScanResult(
            scan_id=report.scan_id,
            scanner=report.scanner,
            scanner_version=report.scanner_version,
            policy=policy,
            severity_counts=verdict.severity_counts,
            blocking_findings=verdict.blocking_findings,
            passed=verdict.passed,
            reasons=verdict.reasons,
            scanned_at=report.scanned_at,
        )
        scans = tuple(sorted((*self.scans, result), key=lambda scan: scan.order))
        target = ImageStatus.SCAN_PASSED if scans[-1].passed else ImageStatus.SCAN_FAILED
        if target is not self.status and not LIFECYCLE.can(self.status, target):
            raise IllegalImageTransition(self.image_id, self.status, target)
        self.scans = scans
        self.status = target
        self._record(
            "ContainerImageScanned",
            {
                "scanId": result.scan_id,
                "scanner": result.scanner,
                "scannerVersion": result.scanner_version,
                "passed": result.passed,
                "status": self.status,
                "severityCounts": {str(severity): n for severity, n in result.severity_counts.items()},
                "blockingFindings": result.blocking_findings,
                "policy": result.policy.wire(),
                "reasons": list(result.reasons),
                "scannedAt": result.scanned_at,
                "scannedBy": by,
                "promotable": self.promotable,
            },
            at=at,
            by=by,
        )

    def ensure_promotable(self) -> None:
        """An image must pass its vulnerability scan before promotion: its latest scan decides."""
        latest = self.latest_scan
        if latest is None:
            raise ImageNotScanned(self.image_id, self.reference)
        if not self.promotable:
            raise ImageFailedScan(self.image_id, self.reference, latest.scan_id, latest.reasons)

    def _record(self, event_type: str, fields: dict[str, Any], *, at: datetime, by: str) -> None:
        """Record an event carrying the image's identity and where it lives."""
        scope = {
            "imageId": self.image_id,
            "tenantId": self.tenant_id,
            "projectId": self.project_id,
            "buildResultId": self.build_result_id,
            "moduleId": self.module_id,
            "registry": self.registry,
            "repositoryName": self.repository_name,
            "tag": self.tag,
            "digest": self.digest,
        }
        self.record(event_type, to_jsonable_python({**scope, **fields}), at=at, by=by)
