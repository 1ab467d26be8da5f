"""Packaging contracts: routing, camelCase shapes, strict commands and tolerant events."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import registry
from contracts.packaging import (
    ContainerImageBuilt,
    ContainerImageScanned,
    PackagePublished,
    PublishPackage,
    RecordImageScan,
)

pytestmark = pytest.mark.contract

COMMANDS = ["PublishPackage", "RecordImageScan"]
EVENTS = ["PackagePublished", "ContainerImageBuilt", "ContainerImageScanned"]
ROUTING_KEY = re.compile(r"packaging\.[a-z]+(-[a-z]+)*\.v1")
DIGEST = "sha256:" + "d" * 64

PUBLISH: dict[str, Any] = {
    "publicationId": "pub-1",
    "buildResultId": "build-1",
    "packageId": "Acme.Orders",
    "version": "1.2.0",
    "feed": "acme/packages",
    "requestedBy": "alice@acme.io",
}
SCAN: dict[str, Any] = {
    "scanId": "scan-1",
    "imageId": "img-1",
    "scanner": "trivy",
    "scannerVersion": "0.50.1",
    "findings": [
        {
            "vulnerabilityId": "CVE-2024-1234",
            "packageName": "openssl",
            "installedVersion": "3.0.1",
            "fixedVersion": "3.0.2",
            "severity": "CRITICAL",
        },
        {
            "vulnerabilityId": "GHSA-xxxx-yyyy-zzzz",
            "packageName": "zlib",
            "installedVersion": "1.2.11",
            "fixedVersion": None,
            "severity": "LOW",
        },
    ],
    "scannedAt": "2025-03-01T09:50:00Z",
    "reportedBy": "trivy-agent",
}
IMAGE: dict[str, Any] = {
    "imageId": "img-1",
    "tenantId": "tenant-1",
    "projectId": "project-1",
    "buildResultId": "build-1",
    "moduleId": "module-2",
    "registry": "acr.devops.local",
    "repositoryName": "team/orders-api",
    "tag": "1.2.0",
    "digest": DIGEST,
}
PUBLISHED: dict[str, Any] = {
    "publicationId": "pub-1",
    "tenantId": "tenant-1",
    "projectId": "project-1",
    "buildResultId": "build-1",
    "moduleId": "module-1",
    "packageId": "Acme.Orders",
    "version": "1.2.0",
    "feed": "acme/packages",
    "status": "Published",
    "sha256": "c" * 64,
    "size": 2048,
    "dependencies": [
        {"id": "Acme.Core", "versionRange": "[1.0.0,2.0.0)"},
        {"id": "Polly", "versionRange": None},
    ],
    "publishedAt": "2025-03-01T09:42:00Z",
    "publishedBy": "svc-packaging",
}
BUILT: dict[str, Any] = {
    **IMAGE,
    "status": "Built",
    "layers": [
        {"digest": "sha256:" + "1" * 64, "size": 4096, "mediaType": "application/vnd.oci.image.layer.v1.tar"}
    ],
    "builtAt": "2025-03-01T09:42:00Z",
    "builtBy": "svc-packaging",
}
SCANNED: dict[str, Any] = {
    **IMAGE,
    "status": "ScanFailed",
    "scanId": "scan-1",
    "scanner": "trivy",
    "scannerVersion": "0.50.1",
    "passed": False,
    "severityCounts": {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0},
    "blockingFindings": 1,
    "policy": {"blockedSeverities": ["CRITICAL", "HIGH"], "onlyWithFixAvailable": True},
    "reasons": ["1 CRITICAL finding with a fix available (CVE-2024-1234)"],
    "scannedAt": "2025-03-01T09:50:00Z",
    "scannedBy": "trivy-agent",
    "promotable": False,
}


@pytest.mark.parametrize(
    ("name", "kind"), [(c, "command") for c in COMMANDS] + [(e, "event") for e in EVENTS]
)
def test_every_message_is_registered_with_a_versioned_routing_key(name: str, kind: str) -> None:
    contract = registry.get(name, 1)

    assert (contract.kind, contract.context) == (kind, "packaging")
    assert ROUTING_KEY.fullmatch(contract.routing_key)
    assert contract.description


def test_routing_keys_name_the_context_and_the_message() -> None:
    assert registry.get("RecordImageScan", 1).routing_key == "packaging.record-image-scan.v1"
    assert registry.get("ContainerImageScanned", 1).routing_key == "packaging.container-image-scanned.v1"


@pytest.mark.parametrize(
    ("model", "wire"),
    [
        (PublishPackage, PUBLISH),
        (RecordImageScan, SCAN),
        (PackagePublished, PUBLISHED),
        (ContainerImageBuilt, BUILT),
        (ContainerImageScanned, SCANNED),
    ],
    ids=[
        "PublishPackage",
        "RecordImageScan",
        "PackagePublished",
        "ContainerImageBuilt",
        "ContainerImageScanned",
    ],
)
def test_every_message_round_trips_in_camel_case(model: Any, wire: dict[str, Any]) -> None:
    assert model.model_validate(wire).wire() == wire


@pytest.mark.parametrize(("model", "wire"), [(PublishPackage, PUBLISH), (RecordImageScan, SCAN)])
def test_a_command_refuses_unknown_fields(model: Any, wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate({**wire, "priority": "high"})


def test_a_finding_refuses_unknown_fields_too() -> None:
    finding = {**SCAN["findings"][0], "cvss": 9.8}

    with pytest.raises(ValidationError, match="extra"):
        RecordImageScan.model_validate({**SCAN, "findings": [finding]})


def test_an_event_ignores_fields_added_after_its_version() -> None:
    newer_published = {
        **PUBLISHED,
        "signature": "cosign:abc",
        "dependencies": [{"id": "Polly", "versionRange": None, "targetFramework": "net8.0"}],
    }
    newer_scanned = {**SCANNED, "epssScores": {}, "policy": {**SCANNED["policy"], "maxAge": "P30D"}}

    assert PackagePublished.model_validate(newer_published).wire() == {
        **PUBLISHED,
        "dependencies": [{"id": "Polly", "versionRange": None}],
    }
    assert ContainerImageScanned.model_validate(newer_scanned).wire() == SCANNED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("packageId", "Acme Orders"),
        ("packageId", "A" * 101),
        ("version", "1.2"),
        ("feed", "acme/packages/extra"),
        ("feed", "../packages"),
    ],
)
def test_publish_package_refuses_malformed_names(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        PublishPackage.model_validate({**PUBLISH, field: value})


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("severity", "SEVERE"),
        ("severity", "critical"),
        ("vulnerabilityId", "CVE 2024 1234"),
        ("packageName", ""),
    ],
)
def test_record_image_scan_refuses_malformed_findings(change: str, value: str) -> None:
    finding = {**SCAN["findings"][0], change: value}

    with pytest.raises(ValidationError):
        RecordImageScan.model_validate({**SCAN, "findings": [finding]})


def test_a_scan_needs_an_aware_time() -> None:
    with pytest.raises(ValidationError):
        RecordImageScan.model_validate({**SCAN, "scannedAt": "2025-03-01T09:50:00"})
    assert RecordImageScan.model_validate({**SCAN, "findings": []}).findings == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "sha256:abc"),
        ("registry", "https://acr.devops.local"),
        ("repositoryName", "Team/Orders"),
        ("tag", ".hidden"),
        ("status", "Promoted"),
        ("severityCounts", {"SEVERE": 1}),
        ("severityCounts", {"CRITICAL": -1}),
    ],
)
def test_container_image_scanned_refuses_what_release_could_misread(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ContainerImageScanned.model_validate({**SCANNED, field: value})


def test_every_event_carries_tenant_project_and_module() -> None:
    for name in EVENTS:
        fields = {info.alias or key for key, info in registry.get(name, 1).payload.model_fields.items()}
        assert {"tenantId", "projectId", "moduleId"} <= fields, name
    assert "promotable" in ContainerImageScanned.model_fields
