"""Named refusals of the Packaging context.

The family decides what the runtime does: a ``RuleViolation`` is committed as
a rejection, a ``StaleMessage`` is acknowledged and logged, a
``PrerequisiteMissing`` is retried later. Each message names the values the
rule was checked against, so a rejection explains itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared_kernel.domain import PrerequisiteMissing, RuleViolation, StaleMessage

# The build a package or image comes from


class BuildNotKnown(RuleViolation):
    """Packaging has no BuildCompleted for this build: a package or image must come from a recorded build."""

    def __init__(self, build_result_id: str) -> None:
        super().__init__(f"build {build_result_id} is not a build Packaging knows of (no BuildCompleted)")


class BuildNotSucceeded(RuleViolation):
    def __init__(self, build_result_id: str, status: str) -> None:
        super().__init__(f"build {build_result_id} is {status}; only a Succeeded build is published")


class BuildAlreadyRecorded(StaleMessage):
    def __init__(self, build_result_id: str) -> None:
        super().__init__(f"build {build_result_id} is already recorded")


class ModuleTypeMismatch(RuleViolation):
    def __init__(self, build_result_id: str, module_type: str, expected: str, output: str) -> None:
        super().__init__(
            f"build {build_result_id} is of a {module_type} module; only a {expected} module's build "
            f"yields {output}"
        )


class PackageArtifactMissing(RuleViolation):
    def __init__(self, build_result_id: str, file_name: str, artifacts: Sequence[str]) -> None:
        listed = ", ".join(artifacts) or "none"
        super().__init__(f"build {build_result_id} produced no {file_name} (artifacts: {listed})")


class TargetFeedMalformed(RuleViolation):
    def __init__(self, build_result_id: str, target_feed: str, reason: str) -> None:
        super().__init__(f"build {build_result_id} targets {target_feed!r}, which is malformed: {reason}")


# Package publication


class PackageIdMismatch(RuleViolation):
    def __init__(self, requested: str, found: str) -> None:
        super().__init__(f"package {requested} was requested; the package file is {found}")


class PackageVersionMismatch(RuleViolation):
    def __init__(self, package_id: str, version: str, expected: str, source: str) -> None:
        super().__init__(f"package {package_id} is version {version}; {source} is version {expected}")


class PackageVersionAlreadyPublished(RuleViolation):
    def __init__(self, package_id: str, version: str, feed: str, publication_id: str) -> None:
        super().__init__(
            f"{package_id} {version} is already published to feed {feed} by publication {publication_id}; "
            "a published version is never replaced"
        )


class PackageVersionTakenInFeed(RuleViolation):
    """The feed holds other content under the version although no publication here records it."""

    def __init__(self, package_id: str, version: str, feed: str) -> None:
        super().__init__(
            f"feed {feed} already holds different content for {package_id} {version}; "
            "a published version is never replaced"
        )


class PackageAlreadyPublished(StaleMessage):
    def __init__(self, publication_id: str, package_id: str, version: str, feed: str) -> None:
        super().__init__(f"publication {publication_id} already published {package_id} {version} to {feed}")


class PublishedVersionImmutable(RuleViolation):
    def __init__(self, publication_id: str, package_id: str, version: str, changed: Sequence[str]) -> None:
        super().__init__(
            f"publication {publication_id} of {package_id} {version} is published; "
            f"its {', '.join(changed)} cannot change"
        )


# Container image


class ImageAlreadyRecorded(StaleMessage):
    def __init__(self, image_id: str) -> None:
        super().__init__(f"container image {image_id} is already recorded")


class ImageNotRecorded(PrerequisiteMissing):
    def __init__(self, image_id: str) -> None:
        super().__init__(f"container image {image_id} is not recorded (yet)")


class DigestAlreadyRecorded(RuleViolation):
    def __init__(self, registry: str, digest: str, image_id: str) -> None:
        super().__init__(f"registry {registry} already has image {image_id} with digest {digest}")


class TagBoundToOtherDigest(RuleViolation):
    def __init__(self, registry: str, repository_name: str, tag: str, bound: str, digest: str) -> None:
        super().__init__(
            f"{registry}/{repository_name}:{tag} is bound to {bound}; it cannot also name {digest}"
        )


class ScanAlreadyRecorded(StaleMessage):
    def __init__(self, image_id: str, scan_id: str) -> None:
        super().__init__(f"scan {scan_id} of container image {image_id} is already recorded")


class IllegalImageTransition(RuleViolation):
    def __init__(self, image_id: str, current: str, target: str) -> None:
        super().__init__(f"container image {image_id} cannot go from {current} to {target}")


class ImageNotScanned(RuleViolation):
    def __init__(self, image_id: str, reference: str) -> None:
        super().__init__(
            f"container image {image_id} ({reference}) has no vulnerability scan; "
            "an image must pass its scan before promotion"
        )


class ImageFailedScan(RuleViolation):
    def __init__(self, image_id: str, reference: str, scan_id: str, reasons: Sequence[str]) -> None:
        why = "; ".join(reasons) or "no reason given"
        super().__init__(
            f"container image {image_id} ({reference}) failed its latest vulnerability scan {scan_id}: {why}"
        )
