"""The CI provider, played by a test: build artifacts into the blob store and report runs."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime, timedelta
from typing import Any

import orjson

from contracts import pipelines as p
from shared_kernel.blobs import LocalBlobStore
from shared_kernel.settings import ServiceSettings
from tests.support.scenario import Scenario

CI = "azure-pipelines"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def nupkg(package_id: str, version: str, dependencies: dict[str, str] | None = None) -> bytes:
    """A real .nupkg: a zip holding the package's .nuspec."""
    listed = "".join(
        f'<dependency id="{name}" version="{version_range}" />'
        for name, version_range in (dependencies or {}).items()
    )
    nuspec = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>'
        f"<id>{package_id}</id><version>{version}</version><authors>ConnectSoft</authors>"
        f"<description>{package_id}</description><dependencies>{listed}</dependencies>"
        "</metadata></package>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{package_id}.nuspec", nuspec)
        archive.writestr(f"lib/net8.0/{package_id}.dll", b"MZ" + package_id.encode())
    return buffer.getvalue()


def oci_image(seed: str) -> tuple[bytes, dict[str, bytes]]:
    """An OCI image manifest and the blobs it names (config and one layer)."""
    config = orjson.dumps({"architecture": "amd64", "os": "linux", "seed": seed})
    layer = f"layer of {seed}".encode()
    blobs = {f"sha256:{hashlib.sha256(b).hexdigest()}": b for b in (config, layer)}
    digests = list(blobs)
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digests[0], "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digests[1], "size": len(layer)}],
        }
    )
    return manifest, blobs


class CiProvider:
    """Reports runs to Pipelines the way a CI provider would, artifacts stored in the blob store."""

    def __init__(self, scenario: Scenario, settings: ServiceSettings) -> None:
        self.scenario = scenario
        self.blobs = LocalBlobStore(settings.blob_root)

    async def artifact(self, name: str, content: bytes, content_type: str) -> p.ArtifactRecord:
        stored = await self.blobs.put(content, content_type)
        return p.ArtifactRecord(name=name, uri=stored.uri, sha256=stored.sha256, size=stored.size)

    async def package_artifacts(self, package_id: str, version: str) -> list[p.ArtifactRecord]:
        # Named as ``dotnet pack`` names it: <id>.<version>.nupkg.
        name = f"{package_id}.{version}.nupkg"
        return [await self.artifact(name, nupkg(package_id, version), "application/zip")]

    async def image_artifacts(self, seed: str) -> list[p.ArtifactRecord]:
        manifest, blobs = oci_image(seed)
        for content in blobs.values():
            await self.blobs.put(content, "application/octet-stream")
        return [await self.artifact("image", manifest, OCI_MANIFEST)]

    @staticmethod
    def job_reports(
        started: dict[str, Any], at: datetime, status: str, result: str | None
    ) -> list[p.JobStateReport]:
        """A report of every job of the started run in one state."""
        return [
            p.JobStateReport(
                stage=stage["name"],
                job=job["name"],
                status=status,
                result=result,
                started_at=at,
                finished_at=at if status == "Completed" else None,
            )
            for stage in started["stageRuns"]
            for job in stage["jobs"]
        ]

    def progress(self, started: dict[str, Any], at: datetime) -> p.RecordPipelineRunProgress:
        return p.RecordPipelineRunProgress(
            pipeline_run_id=started["pipelineRunId"],
            jobs=self.job_reports(started, at, "InProgress", None),
            reported_at=at,
            reported_by=CI,
        )

    def completion(
        self,
        started: dict[str, Any],
        *,
        result: str = "Succeeded",
        version: str = "1.0.1",
        artifacts: list[p.ArtifactRecord] | None = None,
        at: datetime | None = None,
    ) -> p.CompletePipelineRun:
        finished = at or datetime.fromisoformat(started["startedAt"]) + timedelta(minutes=5)
        job_result = {"Succeeded": "Succeeded", "Failed": "Failed", "Canceled": "Canceled"}[result]
        return p.CompletePipelineRun(
            pipeline_run_id=started["pipelineRunId"],
            result=result,
            jobs=self.job_reports(started, finished, "Completed", job_result),
            version=version,
            tests_passed=42,
            tests_failed=0 if result == "Succeeded" else 3,
            coverage=81.5,
            artifacts=artifacts or [],
            logs=f"build {version}: {result}\n",
            finished_at=finished,
            reported_by=CI,
        )
