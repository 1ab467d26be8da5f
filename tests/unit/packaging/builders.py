"""Builders and checks shared by the Packaging domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import contracts.packaging  # noqa: F401  (registration)
from services.packaging.domain import (
    BuildArtifact,
    BuildRecord,
    ContainerImage,
    ImageLayer,
    PackageContent,
    PackageDependency,
    PackagePublication,
    ScanReport,
    VulnerabilityFinding,
)

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
DIGEST = "sha256:" + "d" * 64
OTHER_DIGEST = "sha256:" + "e" * 64
LAYER = ImageLayer(
    digest="sha256:" + "1" * 64, size=4096, media_type="application/vnd.oci.image.layer.v1.tar+gzip"
)
PACKAGE = BuildArtifact(
    name="out/Acme.Orders.1.2.0.nupkg", uri="blob://sha256/" + "b" * 64, sha256="b" * 64, size=2048
)


def at(minutes: int) -> datetime:
    return AT + timedelta(minutes=minutes)


def build(**overrides: Any) -> BuildRecord:
    """Packaging's record of a successful library build of Acme.Orders 1.2.0."""
    fields: dict[str, Any] = {
        "build_result_id": "build-1",
        "pipeline_run_id": "run-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "module_id": "module-1",
        "module_type": "library",
        "repository_id": "repo-1",
        "commit_sha": "1" * 40,
        "branch": "main",
        "status": "Succeeded",
        "version": "1.2.0",
        "target_feed": "acme/packages",
        "artifacts": [PACKAGE],
        "completed_at": at(10),
        "at": at(11),
        "by": "svc-packaging",
    }
    return BuildRecord.from_build_completed(**{**fields, **overrides})


def service_build(**overrides: Any) -> BuildRecord:
    """A successful service build whose image goes to acr.devops.local/team/orders-api."""
    fields: dict[str, Any] = {
        "module_id": "module-2",
        "module_type": "service",
        "target_feed": "acr.devops.local/team/orders-api",
        "artifacts": [],
    }
    return build(**{**fields, **overrides})


def content(**overrides: Any) -> PackageContent:
    fields: dict[str, Any] = {
        "package_id": "Acme.Orders",
        "version": "1.2.0",
        "sha256": "c" * 64,
        "size": 2048,
        "dependencies": (
            PackageDependency(id="Acme.Core", version_range="[1.0.0, 2.0.0)"),
            PackageDependency(id="Newtonsoft.Json"),
        ),
    }
    return PackageContent(**{**fields, **overrides})


def publish(**overrides: Any) -> PackagePublication:
    fields: dict[str, Any] = {
        "publication_id": "pub-1",
        "build_result_id": "build-1",
        "build": build(),
        "content": content(),
        "feed": "acme/packages",
        "existing": None,
        "at": at(12),
        "by": "svc-packaging",
    }
    return PackagePublication.publish(**{**fields, **overrides})


def image(**overrides: Any) -> ContainerImage:
    fields: dict[str, Any] = {
        "image_id": "img-1",
        "build_result_id": "build-1",
        "build": service_build(),
        "registry": "acr.devops.local",
        "repository_name": "team/orders-api",
        "tag": "1.2.0",
        "digest": DIGEST,
        "layers": [LAYER],
        "same_digest": None,
        "same_tag": None,
        "at": at(12),
        "by": "svc-packaging",
    }
    return ContainerImage.record_built(**{**fields, **overrides})


def finding(
    vulnerability_id: str, severity: str, fixed_version: str | None = "9.9.9"
) -> VulnerabilityFinding:
    return VulnerabilityFinding(
        vulnerability_id=vulnerability_id,
        package_name="openssl",
        installed_version="3.0.1",
        fixed_version=fixed_version,
        severity=severity,
    )


def report(scan_id: str, *findings: VulnerabilityFinding, minutes: int = 20) -> ScanReport:
    return ScanReport(
        scan_id=scan_id, scanner="trivy", scanner_version="0.50.1", findings=findings, scanned_at=at(minutes)
    )
