"""Every invariant of PackagePublication and ContainerImage a message can break, broken
through the broker against Packaging alone.

Pipelines' part is played by the test: it stores a build's artifacts in the
blob store and publishes BuildCompleted as Pipelines would. Packaging keeps
every build it hears of, then publishes a successful one's output through a
PublishBuildOutput it sends itself; a refused command (that one, or one the
test sends) names its rule in a CommandRejected and an audit record, and the
watched rows stay as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import packaging as pk
from contracts import pipelines as p
from shared_kernel.envelope import Envelope
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus, Captured
from tests.support.ci import CiProvider
from tests.support.dead_letters import stored_dead_letters
from tests.support.refusals import Rows, inbox_outcome, refuse
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration

FEED = "connectsoft/packages"
DONE = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
async def scenario(packaging: ServiceRuntime, bus: Bus) -> Scenario:
    return Scenario(bus, packaging.settings)


def _build(
    module_id: str, module_type: str, artifacts: list[p.ArtifactRecord], **overrides: Any
) -> p.BuildCompleted:
    fields: dict[str, Any] = {
        "build_result_id": unique("build"),
        "pipeline_run_id": unique("run"),
        "pipeline_id": unique("pl"),
        "tenant_id": "tenant-set-by-scenario",
        "project_id": "proj-1",
        "module_id": module_id,
        "module_type": module_type,
        "repository_id": unique("repo"),
        "commit_sha": "c" * 40,
        "branch": "main",
        "status": "Succeeded",
        "version": "1.0.1",
        "target_feed": FEED if module_type == "library" else f"acr.devops.local/{module_id.lower()}",
        "artifacts": artifacts,
        "tests_passed": 10,
        "tests_failed": 0,
        "coverage": 80.0,
        "logs_uri": None,
        "completed_at": DONE,
        **overrides,
    }
    return p.BuildCompleted(**fields)


async def _built(scenario: Scenario, build: p.BuildCompleted) -> Envelope:
    """Publish BuildCompleted for the scenario's tenant, as Pipelines would."""
    event = build.model_copy(update={"tenant_id": scenario.tenant_id})
    return await scenario.send(event)


async def _library_build(
    scenario: Scenario, package_id: str, version: str = "1.0.1", **overrides: Any
) -> Captured:
    ci = CiProvider(scenario, scenario.settings)
    build = _build(
        package_id, "library", await ci.package_artifacts(package_id, version), version=version, **overrides
    )
    await _built(scenario, build)
    (published,) = await scenario.wait("PackagePublished", buildResultId=build.build_result_id)
    return published


async def _service_build(
    scenario: Scenario, module_id: str, seed: str, version: str = "1.0.1"
) -> p.BuildCompleted:
    ci = CiProvider(scenario, scenario.settings)
    return _build(module_id, "service", await ci.image_artifacts(seed), version=version)


async def refuse_output(scenario: Scenario, build: p.BuildCompleted, rule: str, watch: Rows) -> None:
    """Publish ``build``: Packaging keeps the build, and refuses to publish its output by ``rule``
    (its own PublishBuildOutput is rejected, naming the rule); nothing watched changes."""
    before = await watch.read(scenario)
    await _built(scenario, build)
    (rejection,) = await scenario.wait("CommandRejected", commandType="PublishBuildOutput")
    assert rejection.payload["rule"] == rule, rejection.payload["reason"]
    assert rejection.routing_key == "packaging.command-rejected.v1"
    (audit,) = await scenario.wait("AuditRecord", subjectId=rejection.payload["commandId"])
    assert audit.payload["details"]["rule"] == rule
    assert await watch.read(scenario) == before
    # The build is known all the same: a later PublishPackage can refer to it.
    record = await scenario.state_of("build_records", build.build_result_id)
    assert record is not None
    assert record["state"]["status"] == "Succeeded"


async def test_a_package_version_is_published_once_per_feed(scenario: Scenario) -> None:
    package_id = unique("Orders.Client")
    first = await _library_build(scenario, package_id)
    again = pk.PublishPackage(
        publication_id=unique("pub"),
        build_result_id=first.payload["buildResultId"],
        package_id=package_id,
        version="1.0.1",
        feed=FEED.upper(),  # feeds and package ids compare case-insensitively
        requested_by="alice",
    )
    watch = Rows(
        rows=[("package_publications", first.payload["publicationId"])],
        absent=[("package_publications", again.publication_id)],
    )
    await refuse(scenario, again, "PackageVersionAlreadyPublished", watch)


async def test_a_published_version_is_immutable(scenario: Scenario) -> None:
    package_id = unique("Orders.Client")
    first = await _library_build(scenario, package_id)
    moved = pk.PublishPackage(
        publication_id=first.payload["publicationId"],
        build_result_id=first.payload["buildResultId"],
        package_id=package_id,
        version="1.0.1",
        feed="connectsoft/mirror",
        requested_by="alice",
    )
    watch = Rows(rows=[("package_publications", first.payload["publicationId"])])
    await refuse(scenario, moved, "PublishedVersionImmutable", watch)


async def test_a_package_references_a_successful_build(scenario: Scenario) -> None:
    package_id = unique("Orders.Client")
    ci = CiProvider(scenario, scenario.settings)
    failed = _build(package_id, "library", await ci.package_artifacts(package_id, "1.0.1"), status="Failed")
    await _built(scenario, failed)
    await scenario.bus.settled("packaging")
    assert scenario.seen("PackagePublished", buildResultId=failed.build_result_id) == []
    publish = pk.PublishPackage(
        publication_id=unique("pub"),
        build_result_id=failed.build_result_id,
        package_id=package_id,
        version="1.0.1",
        feed=FEED,
        requested_by="alice",
    )
    await refuse(
        scenario,
        publish,
        "BuildNotSucceeded",
        Rows(absent=[("package_publications", publish.publication_id)]),
    )
    unknown = publish.model_copy(
        update={"publication_id": unique("pub"), "build_result_id": unique("build-unknown")}
    )
    await refuse(
        scenario, unknown, "BuildNotKnown", Rows(absent=[("package_publications", unknown.publication_id)])
    )


async def test_an_image_digest_is_recorded_once_per_registry(scenario: Scenario) -> None:
    seed = unique("orders")
    first = await _service_build(scenario, "orders-api", seed)
    await _built(scenario, first)
    (image,) = await scenario.wait("ContainerImageBuilt", buildResultId=first.build_result_id)
    # Another build pushing the very same manifest under another tag.
    rebuilt = await _service_build(scenario, "orders-api", seed, version="1.0.2")
    await refuse_output(
        scenario,
        rebuilt,
        "DigestAlreadyRecorded",
        Rows(rows=[("container_images", image.payload["imageId"])]),
    )


async def test_a_library_build_without_its_package_keeps_the_build_and_publishes_nothing(
    scenario: Scenario,
) -> None:
    build = _build(unique("Orders.Client"), "library", [])
    await refuse_output(scenario, build, "PackageArtifactMissing", Rows())


async def test_a_tag_maps_to_exactly_one_digest(scenario: Scenario) -> None:
    first = await _service_build(scenario, "billing-api", unique("billing"))
    await _built(scenario, first)
    (image,) = await scenario.wait("ContainerImageBuilt", buildResultId=first.build_result_id)
    # Another build of the same version, different content: the tag is taken.
    other = await _service_build(scenario, "billing-api", unique("billing"))
    await refuse_output(
        scenario, other, "TagBoundToOtherDigest", Rows(rows=[("container_images", image.payload["imageId"])])
    )


async def test_an_image_must_pass_its_scan_before_it_is_promotable(scenario: Scenario) -> None:
    build = await _service_build(scenario, "payments-api", unique("payments"))
    await _built(scenario, build)
    (image,) = await scenario.wait("ContainerImageBuilt", buildResultId=build.build_result_id)
    assert image.payload["status"] == "Built"
    image_id = image.payload["imageId"]
    critical = pk.VulnerabilityFinding(
        vulnerability_id="CVE-2024-3094",
        package_name="xz-utils",
        installed_version="5.6.0",
        fixed_version="5.6.2",
        severity="CRITICAL",
    )
    scan = pk.RecordImageScan(
        scan_id="scan-1",
        image_id=image_id,
        scanner="trivy",
        scanner_version="0.58.1",
        findings=[critical],
        scanned_at=DONE + timedelta(minutes=1),
        reported_by="trivy-operator",
    )
    await scenario.send(scan)
    (scanned,) = await scenario.wait("ContainerImageScanned", imageId=image_id)
    assert scanned.payload["promotable"] is False
    assert scanned.payload["blockingFindings"] == 1
    assert scanned.payload["status"] == "ScanFailed"
    # The same scan again changes nothing; a scan of an unknown image waits, then is dead-lettered.
    again = await scenario.send(scan)
    assert await inbox_outcome(scenario, again) == "stale"
    early = await scenario.send(
        scan.model_copy(update={"image_id": unique("img-unknown"), "scan_id": "scan-9"})
    )
    (letter,) = await stored_dead_letters(scenario.settings, message_id=early.event_id, timeout=30)
    assert letter.headers["x-exception-type"] == "ImageNotRecorded"
