"""Packaging handlers: build outcomes become published packages and recorded images.

Packaging learns of builds from Pipelines' BuildCompleted and keeps them as
its own read model (BuildRecord); for a successful build it then sends itself
PublishBuildOutput, so that the build stays known whatever happens to the
publication. A successful library build publishes its NuGet packages to the
build's target feed (PackagePublished); a successful service build pushes its
image to the target registry (ContainerImageBuilt). A failed or canceled build
is recorded and publishes nothing. Feeds and registries are kept per tenant. The scanner's
reports judge an image against the scan policy (ContainerImageScanned), which
is how Release knows, from events alone, whether the image may be promoted.

The domain checks every rule before anything is written to a feed or a
registry; those writes are idempotent (the same bytes again are a no-op), so
a redelivered message that finds its work half done completes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import orjson

import contracts
from contracts import packaging as c
from contracts import pipelines as pipelines_events
from services.packaging.domain import errors
from services.packaging.domain.build_record import BuildArtifact, BuildRecord, BuildStatus, ModuleType
from services.packaging.domain.image import ContainerImage, ImageLayer, ScanReport
from services.packaging.domain.publication import PackageContent, PackageDependency, PackagePublication
from services.packaging.domain.scan_policy import ScanPolicy, VulnerabilityFinding
from services.packaging.domain.values import FeedReference, ImageTag, PackageId, PackageVersion
from services.packaging.ports import (
    ContainerRegistry,
    InvalidManifest,
    InvalidPackage,
    LayerDigestMismatch,
    MissingLayer,
    PackageFeed,
    PackageVersionExists,
    TagConflict,
)
from services.packaging.settings import PackagingSettings
from shared_kernel.blobs import BlobNotFound, BlobStore, blob_uri
from shared_kernel.domain import PrerequisiteMissing, RuleViolation
from shared_kernel.envelope import Envelope
from shared_kernel.ids import deterministic_id
from shared_kernel.logging import get_logger
from shared_kernel.messaging.handlers import HandlerRegistry, Message
from shared_kernel.persistence.unit_of_work import UnitOfWork

log = get_logger(__name__)


class ArtifactNotStored(PrerequisiteMissing):
    def __init__(self, uri: str) -> None:
        super().__init__(f"artifact {uri} is not in the blob store (yet)")


class ArtifactUnusable(RuleViolation):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"artifact {name!r} cannot be published: {reason}")


class PackagingHandlers:
    def __init__(
        self,
        settings: PackagingSettings,
        blobs: BlobStore,
        feeds: Callable[[str], PackageFeed],
        registries: Callable[[str], ContainerRegistry],
    ) -> None:
        """``feeds`` and ``registries`` give a tenant's own feeds and registries."""
        self._settings = settings
        self._blobs = blobs
        self._feeds = feeds
        self._registries = registries
        self._policy = ScanPolicy(
            blocked_severities=frozenset(settings.scan_blocked_severities),
            only_with_fix_available=settings.scan_only_with_fix_available,
        )

    def registry(self) -> HandlerRegistry:
        registry = HandlerRegistry(contracts.registry)
        registry.add(pipelines_events.BuildCompleted, self.on_build_completed)
        registry.add(c.PublishBuildOutput, self.publish_build_output)
        registry.add(c.PublishPackage, self.publish_package)
        registry.add(c.RecordImageScan, self.record_image_scan)
        return registry

    # -- what Pipelines tells ---------------------------------------------------------

    async def on_build_completed(self, message: Message[pipelines_events.BuildCompleted]) -> None:
        event, uow = message.payload, message.uow
        BuildRecord.ensure_not_recorded(await uow.get(BuildRecord, event.build_result_id))
        build = BuildRecord.from_build_completed(
            build_result_id=event.build_result_id,
            pipeline_run_id=event.pipeline_run_id,
            tenant_id=event.tenant_id,
            project_id=event.project_id,
            module_id=event.module_id,
            module_type=ModuleType(event.module_type),
            repository_id=event.repository_id,
            commit_sha=event.commit_sha,
            branch=event.branch,
            status=BuildStatus(event.status),
            version=event.version,
            target_feed=event.target_feed,
            artifacts=[BuildArtifact.model_validate(artifact.wire()) for artifact in event.artifacts],
            completed_at=event.completed_at,
            at=event.completed_at,
            by=message.envelope.source,
        )
        uow.add(build)
        if build.status is BuildStatus.SUCCEEDED:
            uow.send(c.PublishBuildOutput(build_result_id=build.build_result_id))
        else:
            log.info("build did not succeed; nothing to publish", build_status=str(build.status))

    # -- commands ---------------------------------------------------------------------

    async def publish_build_output(self, message: Message[c.PublishBuildOutput]) -> None:
        build_result_id, uow = message.payload.build_result_id, message.uow
        build = BuildRecord.require(await uow.get(BuildRecord, build_result_id), build_result_id)
        build.ensure_succeeded()
        if build.module_type is ModuleType.LIBRARY:
            await self._publish_packages(uow, message.envelope, build)
        else:
            await self._record_image(uow, message.envelope, build)

    async def publish_package(self, message: Message[c.PublishPackage]) -> None:
        command, uow = message.payload, message.uow
        publication = await uow.get(PackagePublication, command.publication_id)
        known = await uow.get(BuildRecord, command.build_result_id)
        build = BuildRecord.require(known, command.build_result_id)
        artifact = build.package_artifact(command.package_id, command.version)
        content, package = await self._package(artifact, build.tenant_id)
        package.ensure_is(command.package_id, command.version)
        if publication is not None:
            publication.republish(package, feed=command.feed)  # stale, or refused: versions are immutable
        decided = await self._decide_publication(
            uow,
            message.envelope,
            publication_id=command.publication_id,
            build=build,
            feed=FeedReference(command.feed),
            package=package,
            by=command.requested_by,
        )
        await self._write_to_feeds(message.envelope.tenant_id, [(decided, content)])
        uow.add(decided)

    async def record_image_scan(self, message: Message[c.RecordImageScan]) -> None:
        command = message.payload
        recorded = await message.uow.get(ContainerImage, command.image_id)
        image = ContainerImage.require(recorded, command.image_id)
        report = ScanReport(
            scan_id=command.scan_id,
            scanner=command.scanner,
            scanner_version=command.scanner_version,
            findings=tuple(VulnerabilityFinding.model_validate(f.wire()) for f in command.findings),
            scanned_at=command.scanned_at,
        )
        image.record_scan(report, self._policy, at=command.scanned_at, by=command.reported_by)

    # -- the work ---------------------------------------------------------------------

    async def _artifact(self, uri: str) -> bytes:
        try:
            return await self._blobs.get(uri)
        except BlobNotFound as missing:
            raise ArtifactNotStored(uri) from missing

    async def _package(self, artifact: BuildArtifact, tenant_id: str) -> tuple[bytes, PackageContent]:
        """The package file of ``artifact`` and what its nuspec declares."""
        content = await self._artifact(artifact.uri)
        try:
            manifest = await self._feeds(tenant_id).inspect(content)
        except InvalidPackage as invalid:
            raise ArtifactUnusable(artifact.name, str(invalid)) from invalid
        return content, PackageContent(
            package_id=PackageId(manifest.id),
            version=PackageVersion(manifest.version),
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            dependencies=tuple(
                PackageDependency(id=d.id, version_range=d.version_range) for d in manifest.dependencies
            ),
        )

    async def _publish_packages(self, uow: UnitOfWork, envelope: Envelope, build: BuildRecord) -> None:
        """Publish every package of a library build: all are checked before any is written."""
        artifacts = build.package_artifacts()
        if not artifacts:
            names = [artifact.name for artifact in build.artifacts]
            raise errors.PackageArtifactMissing(build.build_result_id, "<id>.<version>.nupkg", names)
        decided: list[tuple[PackagePublication, bytes]] = []
        for artifact in artifacts:
            content, package = await self._package(artifact, build.tenant_id)
            publication = await self._decide_publication(
                uow,
                envelope,
                publication_id=deterministic_id("pub", build.build_result_id, package.package_id.key),
                build=build,
                feed=build.package_feed(),
                package=package,
                by=self._settings.identity,
            )
            decided.append((publication, content))
        await self._write_to_feeds(envelope.tenant_id, decided)
        for publication, _ in decided:
            uow.add(publication)

    async def _decide_publication(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        *,
        publication_id: str,
        build: BuildRecord,
        feed: FeedReference,
        package: PackageContent,
        by: str,
    ) -> PackagePublication:
        """The publication the domain allows, not yet written anywhere."""
        existing = await uow.find(
            PackagePublication,
            package_key=package.package_id.key,
            version_key=package.version.key,
            feed_key=feed.key,
        )
        return PackagePublication.publish(
            publication_id=publication_id,
            build_result_id=build.build_result_id,
            build=build,
            content=package,
            feed=feed,
            existing=existing,
            at=envelope.occurred_at,
            by=by,
        )

    async def _write_to_feeds(self, tenant_id: str, decided: list[tuple[PackagePublication, bytes]]) -> None:
        """Put the packages in the tenant's feeds (the same bytes again are a no-op)."""
        feeds = self._feeds(tenant_id)
        for publication, content in decided:
            try:
                await feeds.publish(
                    publication.feed, publication.package_id, publication.package_version, content
                )
            except PackageVersionExists as taken:
                # The feed holds other bytes under this version that no publication here accounts for.
                raise errors.PackageVersionTakenInFeed(
                    publication.package_id, publication.package_version, publication.feed
                ) from taken

    async def _record_image(self, uow: UnitOfWork, envelope: Envelope, build: BuildRecord) -> None:
        artifact = next((a for a in build.artifacts if a.name == self._settings.image_artifact), None)
        if artifact is None:
            raise errors.PackageArtifactMissing(
                build.build_result_id, self._settings.image_artifact, [a.name for a in build.artifacts]
            )
        manifest = await self._artifact(artifact.uri)
        config_digest, layers = _manifest_contents(artifact.name, manifest)
        registry, repository = build.image_destination()
        tag = ImageTag.for_version(build.build_version)
        digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"  # what the registry will compute
        image_id = deterministic_id("img", build.build_result_id)
        image = ContainerImage.record_built(
            image_id=image_id,
            build_result_id=build.build_result_id,
            build=build,
            registry=registry,
            repository_name=repository,
            tag=tag,
            digest=digest,
            layers=layers,
            same_digest=await uow.find(ContainerImage, registry=str(registry), digest=digest),
            same_tag=await uow.find(
                ContainerImage, registry=str(registry), repository_name=str(repository), tag=str(tag)
            ),
            at=envelope.occurred_at,
            by=self._settings.identity,
        )
        blobs = {
            digest: await self._artifact(blob_uri(digest.removeprefix("sha256:")))
            for digest in (config_digest, *(layer.digest for layer in layers))
        }
        registries = self._registries(envelope.tenant_id)
        try:
            pushed = await registries.push(registry, repository, tag, manifest, blobs)
        except TagConflict as conflict:
            bound = await registries.resolve(registry, repository, tag) or "another digest"
            raise errors.TagBoundToOtherDigest(registry, repository, tag, bound, digest) from conflict
        except (InvalidManifest, LayerDigestMismatch, MissingLayer) as invalid:
            raise ArtifactUnusable(artifact.name, str(invalid)) from invalid
        if pushed.digest != digest:
            raise RuntimeError(f"the registry stored the manifest as {pushed.digest}, not {digest}")
        uow.add(image)


def _manifest_contents(name: str, manifest: bytes) -> tuple[str, list[ImageLayer]]:
    """The config digest and the layers an image manifest names."""
    try:
        document = orjson.loads(manifest)
        layers = [
            ImageLayer(digest=layer["digest"], size=layer["size"], media_type=layer["mediaType"])
            for layer in document["layers"]
        ]
        return str(document["config"]["digest"]), layers
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as invalid:
        raise ArtifactUnusable(name, f"not an image manifest: {invalid}") from invalid
