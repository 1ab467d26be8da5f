"""ContainerImage: one digest per registry, one digest per tag, promotable only after a passed scan."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest

from services.packaging.domain import ContainerImage, ImageStatus, ScanPolicy, ScanReport, Severity
from services.packaging.domain.errors import (
    BuildNotKnown,
    BuildNotSucceeded,
    DigestAlreadyRecorded,
    ImageAlreadyRecorded,
    ImageFailedScan,
    ImageNotRecorded,
    ImageNotScanned,
    ModuleTypeMismatch,
    ScanAlreadyRecorded,
    TagBoundToOtherDigest,
)
from shared_kernel.domain import PrerequisiteMissing, RuleViolation, StaleMessage
from tests.support.aggregates import refusal, validated
from tests.unit.packaging.builders import (
    DIGEST,
    LAYER,
    OTHER_DIGEST,
    at,
    build,
    finding,
    image,
    report,
    service_build,
)

pytestmark = pytest.mark.unit

POLICY = ScanPolicy()
CLEAN = report("scan-1", finding("CVE-2024-0001", "MEDIUM"), minutes=20)
CRITICAL = report("scan-2", finding("CVE-2024-1234", "CRITICAL"), minutes=30)
REFERENCE = f"acr.devops.local/team/orders-api:1.2.0@{DIGEST}"


def scanned(*reports: ScanReport) -> ContainerImage:
    built = image()
    for scan in reports:
        built.record_scan(scan, POLICY, at=scan.scanned_at, by="trivy-agent")
    built.pull_events()
    return built


def test_record_built_records_container_image_built_not_yet_promotable() -> None:
    built = image()

    assert (built.status, built.promotable, built.reference) == (ImageStatus.BUILT, False, REFERENCE)
    [event] = validated(built)
    assert event == {
        "type": "ContainerImageBuilt",
        "imageId": "img-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "buildResultId": "build-1",
        "moduleId": "module-2",
        "registry": "acr.devops.local",
        "repositoryName": "team/orders-api",
        "tag": "1.2.0",
        "digest": DIGEST,
        "status": "Built",
        "layers": [LAYER.wire()],
        "builtAt": "2025-03-01T09:42:00Z",
        "builtBy": "svc-packaging",
    }


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"build": None}, BuildNotKnown),
        ({"build": service_build(status="Canceled")}, BuildNotSucceeded),
        ({"build": build()}, ModuleTypeMismatch),
    ],
    ids=["unknown-build", "canceled-build", "library-build"],
)
def test_an_image_comes_from_a_successful_service_build(
    overrides: dict[str, Any], error: type[RuleViolation]
) -> None:
    with pytest.raises(error) as refused:
        image(**overrides)

    assert refused.value.rule == error.__name__


def test_a_digest_is_recorded_once_per_registry() -> None:
    existing = image()

    refused = refusal(
        existing,
        DigestAlreadyRecorded,
        lambda: image(image_id="img-2", tag="1.2.1", same_digest=existing),
    )

    assert refused.rule == "DigestAlreadyRecorded"
    assert str(refused) == f"registry acr.devops.local already has image img-1 with digest {DIGEST}"
    ContainerImage.ensure_digest_free(None, image_id="img-2")
    ContainerImage.ensure_digest_free(existing, image_id="img-1")


def test_a_tag_maps_to_exactly_one_digest() -> None:
    existing = image()

    refused = refusal(
        existing,
        TagBoundToOtherDigest,
        lambda: image(image_id="img-2", digest=OTHER_DIGEST, same_tag=existing),
    )

    assert refused.rule == "TagBoundToOtherDigest"
    assert str(refused) == (
        f"acr.devops.local/team/orders-api:1.2.0 is bound to {DIGEST}; it cannot also name {OTHER_DIGEST}"
    )
    ContainerImage.ensure_tag_free(existing, digest=DIGEST)


def test_the_same_image_again_is_stale() -> None:
    existing = image()

    stale = refusal(existing, ImageAlreadyRecorded, lambda: image(same_digest=existing, same_tag=existing))

    assert isinstance(stale, StaleMessage)


def test_a_scan_of_an_image_not_recorded_yet_waits() -> None:
    built = image()

    assert ContainerImage.require(built, "img-1") is built
    with pytest.raises(ImageNotRecorded) as missing:
        ContainerImage.require(None, "img-1")
    assert isinstance(missing.value, PrerequisiteMissing)


def test_a_passed_scan_makes_the_image_promotable() -> None:
    built = image()
    built.pull_events()

    built.record_scan(CLEAN, POLICY, at=at(21), by="trivy-agent")

    assert (built.status, built.promotable) == (ImageStatus.SCAN_PASSED, True)
    built.ensure_promotable()
    [event] = validated(built)
    assert event == {
        "type": "ContainerImageScanned",
        "imageId": "img-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "buildResultId": "build-1",
        "moduleId": "module-2",
        "registry": "acr.devops.local",
        "repositoryName": "team/orders-api",
        "tag": "1.2.0",
        "digest": DIGEST,
        "scanId": "scan-1",
        "scanner": "trivy",
        "scannerVersion": "0.50.1",
        "passed": True,
        "status": "ScanPassed",
        "severityCounts": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 0},
        "blockingFindings": 0,
        "policy": {"blockedSeverities": ["CRITICAL", "HIGH"], "onlyWithFixAvailable": True},
        "reasons": ["no CRITICAL or HIGH finding with a fix available"],
        "scannedAt": "2025-03-01T09:50:00Z",
        "scannedBy": "trivy-agent",
        "promotable": True,
    }


def test_an_image_must_pass_its_scan_before_promotion() -> None:
    built = image()
    refused = refusal(built, ImageNotScanned, built.ensure_promotable)
    assert refused.rule == "ImageNotScanned"
    assert REFERENCE in str(refused)

    built.record_scan(CRITICAL, POLICY, at=at(31), by="trivy-agent")
    [event] = validated(built)
    assert (event["passed"], event["status"], event["promotable"]) == (False, "ScanFailed", False)
    assert event["blockingFindings"] == 1

    failed = refusal(built, ImageFailedScan, built.ensure_promotable)
    assert failed.rule == "ImageFailedScan"
    assert str(failed) == (
        f"container image img-1 ({REFERENCE}) failed its latest vulnerability scan scan-2: "
        "1 CRITICAL finding with a fix available (CVE-2024-1234)"
    )


def test_a_newer_scan_decides_either_way() -> None:
    built = scanned(CLEAN)
    built.record_scan(CRITICAL, POLICY, at=at(31), by="trivy-agent")
    assert built.status is ImageStatus.SCAN_FAILED

    fixed = report("scan-3", finding("CVE-2024-1234", "CRITICAL", fixed_version=None), minutes=40)
    built.record_scan(fixed, POLICY, at=at(41), by="trivy-agent")
    assert (built.status, [scan.scan_id for scan in built.scans]) == (
        ImageStatus.SCAN_PASSED,
        ["scan-1", "scan-2", "scan-3"],
    )


def test_an_older_report_joins_the_history_without_changing_the_status() -> None:
    built = scanned(CLEAN)

    late = report("scan-0", finding("CVE-2024-1234", "CRITICAL"), minutes=10)
    built.record_scan(late, POLICY, at=at(45), by="trivy-agent")

    assert (built.status, built.latest_scan and built.latest_scan.scan_id) == (
        ImageStatus.SCAN_PASSED,
        "scan-1",
    )
    assert [scan.scan_id for scan in built.scans] == ["scan-0", "scan-1"]
    [event] = validated(built)
    assert (event["passed"], event["status"], event["promotable"]) == (False, "ScanPassed", True)


def test_a_scan_already_recorded_is_stale() -> None:
    built = scanned(CLEAN)

    stale = refusal(
        built, ScanAlreadyRecorded, lambda: built.record_scan(CLEAN, POLICY, at=at(50), by="trivy-agent")
    )

    assert stale.rule == "ScanAlreadyRecorded"
    assert isinstance(stale, StaleMessage)


def test_any_delivery_order_of_scans_ends_in_the_same_state() -> None:
    reports = [
        CLEAN,
        CRITICAL,
        report("scan-3", finding("CVE-2024-9999", "HIGH", fixed_version=None), minutes=40),
        report("scan-4", finding("CVE-2024-7777", "HIGH"), minutes=40),  # same time: scan id breaks the tie
    ]

    def state(order: tuple[ScanReport, ...]) -> dict[str, Any]:
        built = image()
        for scan in (*order, order[0]):  # and one redelivery
            with contextlib.suppress(StaleMessage):
                built.record_scan(scan, POLICY, at=at(60), by="trivy-agent")
        wire = built.wire()
        return {key: wire[key] for key in ("status", "scans")}

    expected = state(tuple(reports))
    assert expected["status"] == "ScanFailed"  # scan-4, the latest, has a fixable HIGH
    for order in itertools.permutations(reports):
        assert state(order) == expected


def test_the_policy_judging_a_scan_is_kept_with_it() -> None:
    lenient = ScanPolicy(blocked_severities=frozenset({Severity.CRITICAL}), only_with_fix_available=True)
    built = image()

    built.record_scan(
        report("scan-1", finding("CVE-2024-7777", "HIGH")), lenient, at=at(21), by="trivy-agent"
    )

    assert built.promotable
    assert built.scans[0].policy == lenient
    assert ContainerImage.model_validate(built.wire()).scans == built.scans
