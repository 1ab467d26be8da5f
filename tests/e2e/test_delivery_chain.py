"""Source Control, Pipelines and Packaging as separate processes, from a merge to a package or image.

The test plays the agents (commits, pull requests, reviews), the CI provider
(run reports with artifacts in the blob store) and the scanner; everything
else is the three services talking over RabbitMQ, each with its own database.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import packaging as pk
from contracts import pipelines as p
from services.packaging.adapters.feed_local import LocalPackageFeed
from services.packaging.adapters.registry_local import LocalContainerRegistry
from services.packaging.settings import PackagingSettings
from services.pipelines.settings import PipelinesSettings
from services.source_control.settings import SourceControlSettings
from tests.support.bus import Bus
from tests.support.ci import CiProvider, oci_image
from tests.support.delivery import first_run, generated_pipeline, merge_module
from tests.support.fleet import ServiceProcess
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.e2e

SERVICES = ("source_control", "pipelines", "packaging")


@pytest.fixture
async def fleet(
    source_control_queues: SourceControlSettings,
    pipelines_queues: PipelinesSettings,
    packaging_queues: PackagingSettings,
    bus: Bus,
    tmp_path: Path,
) -> AsyncIterator[list[ServiceProcess]]:
    # Each process holds prefetch + 7 database connections: three of them at the default
    # prefetch (32) would take more than PostgreSQL's default 100.
    environment = {"DEVOPS_PREFETCH": "8"}
    processes = [
        ServiceProcess(f"services.{name}", environment, tmp_path / f"{name}.log").start() for name in SERVICES
    ]
    try:
        for process in processes:
            await process.wait_started()
        yield processes
    finally:
        for process in processes:
            process.terminate()


async def test_a_library_goes_from_merge_to_a_published_package(
    fleet: list[ServiceProcess], source_control_queues: SourceControlSettings, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control_queues)
    ci = CiProvider(scenario, source_control_queues)
    module = await merge_module(scenario, service=False, module_id=unique("Orders.Client"))
    generated = await generated_pipeline(scenario, module)
    assert generated.payload["moduleType"] == "library"
    started = await first_run(scenario, generated)
    assert started.payload["reason"] == "ci"

    artifacts = await ci.package_artifacts(module.module_id, "1.0.1")
    await scenario.send(ci.progress(started.payload, datetime.fromisoformat(started.payload["startedAt"])))
    await scenario.send(ci.completion(started.payload, artifacts=artifacts))
    (built,) = await scenario.wait("BuildCompleted", pipelineRunId=started.payload["pipelineRunId"])
    assert built.payload["status"] == "Succeeded"

    (published,) = await scenario.wait("PackagePublished", buildResultId=built.payload["buildResultId"])
    assert published.payload["packageId"] == module.module_id
    assert published.payload["version"] == "1.0.1"
    assert published.payload["feed"] == "connectsoft/packages"
    # Caused by Packaging's own PublishBuildOutput, in the conversation of the CI report.
    assert published.envelope["causationId"].startswith("cmd-")
    assert published.envelope["traceId"] == built.envelope["traceId"]
    assert published.envelope["correlationId"] == built.envelope["correlationId"]
    # The feed really holds the package the CI built.
    stored = await LocalPackageFeed(PackagingSettings().feed_root / scenario.tenant_id).download(
        "connectsoft/packages", module.module_id, "1.0.1"
    )
    assert hashlib.sha256(stored).hexdigest() == artifacts[0].sha256 == published.payload["sha256"]
    assert scenario.seen("ContainerImageBuilt") == []


async def test_a_service_goes_from_merge_to_an_image_that_is_promotable_once_its_scan_passes(
    fleet: list[ServiceProcess], source_control_queues: SourceControlSettings, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control_queues)
    ci = CiProvider(scenario, source_control_queues)
    module = await merge_module(scenario, service=True)
    generated = await generated_pipeline(scenario, module)
    assert generated.payload["moduleType"] == "service"
    started = await first_run(scenario, generated)
    artifacts = await ci.image_artifacts(module.module_id)
    await scenario.send(ci.completion(started.payload, artifacts=artifacts, version="1.0.1"))
    (built,) = await scenario.wait("BuildCompleted", pipelineRunId=started.payload["pipelineRunId"])

    (image,) = await scenario.wait("ContainerImageBuilt", buildResultId=built.payload["buildResultId"])
    manifest, _ = oci_image(module.module_id)
    digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    assert image.payload["digest"] == digest
    assert (image.payload["registry"], image.payload["repositoryName"]) == (
        "acr.devops.local",
        module.module_id,
    )
    assert image.payload["tag"] == "1.0.1"
    registry = LocalContainerRegistry(PackagingSettings().registry_root / scenario.tenant_id)
    assert await registry.resolve("acr.devops.local", module.module_id, "1.0.1") == digest
    assert scenario.seen("PackagePublished") == []

    # A HIGH finding with a fix available fails the policy: not promotable.
    scanned_at = datetime.fromisoformat(image.payload["builtAt"]) + timedelta(minutes=1)
    await scenario.send(_scan(image.payload["imageId"], "scan-1", scanned_at, fixed_version="3.0.14"))
    (failed,) = await scenario.wait("ContainerImageScanned", scanId="scan-1")
    assert (failed.payload["passed"], failed.payload["promotable"]) == (False, False)
    assert failed.payload["severityCounts"]["HIGH"] == 1
    # The rebuilt base image has no fixable finding left: the next scan passes.
    await scenario.send(
        _scan(image.payload["imageId"], "scan-2", scanned_at + timedelta(hours=1), fixed_version=None)
    )
    (passed,) = await scenario.wait("ContainerImageScanned", scanId="scan-2")
    assert (passed.payload["passed"], passed.payload["promotable"]) == (True, True)


async def test_a_failed_outcome_publishes_nothing(
    fleet: list[ServiceProcess], source_control_queues: SourceControlSettings, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control_queues)
    ci = CiProvider(scenario, source_control_queues)
    library = await merge_module(scenario, service=False)
    service = await merge_module(scenario, service=True)
    for module in (library, service):
        started = await first_run(scenario, await generated_pipeline(scenario, module))
        artifacts = (
            await ci.package_artifacts(module.module_id, "1.0.1")
            if module is library
            else await ci.image_artifacts(module.module_id)
        )
        await scenario.send(ci.completion(started.payload, result="Failed", artifacts=artifacts))
        (built,) = await scenario.wait("BuildCompleted", pipelineRunId=started.payload["pipelineRunId"])
        assert built.payload["status"] == "Failed"
    await bus.settled("packaging")
    assert scenario.seen("PackagePublished") == []
    assert scenario.seen("ContainerImageBuilt") == []
    # Packaging heard of both builds: its read model has them, failed.
    packaging_rows = Scenario(bus, PackagingSettings(), tenant_id=scenario.tenant_id)
    records = await packaging_rows.rows(
        "SELECT state->>'status' AS status FROM build_records WHERE tenant_id = $1", scenario.tenant_id
    )
    assert [r["status"] for r in records] == ["Failed", "Failed"]


def _scan(image_id: str, scan_id: str, at: datetime, *, fixed_version: str | None) -> pk.RecordImageScan:
    return pk.RecordImageScan(
        scan_id=scan_id,
        image_id=image_id,
        scanner="trivy",
        scanner_version="0.58.1",
        findings=[
            pk.VulnerabilityFinding(
                vulnerability_id="CVE-2024-5535",
                package_name="libssl3",
                installed_version="3.0.13",
                fixed_version=fixed_version,
                severity="HIGH",
            ),
            pk.VulnerabilityFinding(
                vulnerability_id="CVE-2024-2511",
                package_name="openssl",
                installed_version="3.0.13",
                fixed_version="3.0.14",
                severity="LOW",
            ),
        ],
        scanned_at=at,
        reported_by="trivy-operator",
    )


async def test_packaging_killed_between_the_feed_write_and_its_commit_publishes_once(
    packaging_queues: PackagingSettings, bus: Bus, tmp_path: Path
) -> None:
    """The feed is an external system written before the transaction commits: a redelivery
    finds the same bytes there (a no-op) and records the publication once."""
    scenario = Scenario(bus, packaging_queues)
    ci = CiProvider(scenario, packaging_queues)
    package_id = unique("Orders.Client")
    artifacts = await ci.package_artifacts(package_id, "1.0.1")
    build = _build_completed(scenario, package_id, artifacts)
    processes: list[ServiceProcess] = []
    try:
        first = ServiceProcess("services.packaging", {"DEVOPS_PREFETCH": "8"}, tmp_path / "first.log").start()
        processes.append(first)
        await first.wait_started()
        await scenario.send(build)
        await scenario.wait("PackagePublished", buildResultId=build.build_result_id)
        first.terminate()

        crashing = ServiceProcess(
            "services.packaging",
            {"DEVOPS_PREFETCH": "8", "PACKAGING_CRASH_AT": "before_commit"},
            tmp_path / "crashing.log",
        ).start()
        processes.append(crashing)
        await crashing.wait_started()
        mirror = pk.PublishPackage(
            publication_id=unique("pub-mirror"),
            build_result_id=build.build_result_id,
            package_id=package_id,
            version="1.0.1",
            feed="connectsoft/mirror",
            requested_by="alice",
        )
        command = await scenario.send(mirror)
        assert await crashing.wait_exit() == -signal.SIGKILL
        feed = LocalPackageFeed(packaging_queues.feed_root / scenario.tenant_id)
        # Written to the feed, not recorded: the transaction never committed.
        assert hashlib.sha256(await feed.download("connectsoft/mirror", package_id, "1.0.1")).hexdigest() == (
            artifacts[0].sha256
        )
        assert await scenario.state_of("package_publications", mirror.publication_id) is None

        restarted = ServiceProcess(
            "services.packaging", {"DEVOPS_PREFETCH": "8"}, tmp_path / "restarted.log"
        ).start()
        processes.append(restarted)
        await restarted.wait_started()
        (published,) = await scenario.wait("PackagePublished", publicationId=mirror.publication_id)
        assert published.payload["feed"] == "connectsoft/mirror"
        await bus.settled("packaging")
        assert len(scenario.seen("PackagePublished", publicationId=mirror.publication_id)) == 1
        inbox = await scenario.rows(
            "SELECT outcome FROM inbox WHERE tenant_id = $1 AND event_id = $2",
            scenario.tenant_id,
            command.event_id,
        )
        assert [r["outcome"] for r in inbox] == ["done"]
    finally:
        for process in processes:
            process.terminate()


def _build_completed(
    scenario: Scenario, package_id: str, artifacts: list[p.ArtifactRecord]
) -> p.BuildCompleted:
    """A successful library build, as Pipelines would announce it."""
    return p.BuildCompleted(
        build_result_id=unique("build"),
        pipeline_run_id=unique("run"),
        pipeline_id=unique("pl"),
        tenant_id=scenario.tenant_id,
        project_id=scenario.project_id,
        module_id=package_id,
        module_type="library",
        repository_id=unique("repo"),
        commit_sha="c" * 40,
        branch="main",
        status="Succeeded",
        version="1.0.1",
        target_feed="connectsoft/packages",
        artifacts=artifacts,
        tests_passed=1,
        tests_failed=0,
        coverage=90.0,
        logs_uri=None,
        completed_at=datetime.now(UTC),
    )
