"""The pure domain of Packaging: publications, images, the build read model, the scan policy, named errors."""

from services.packaging.domain.build_record import BuildArtifact, BuildRecord, BuildStatus, ModuleType
from services.packaging.domain.image import (
    ContainerImage,
    ImageLayer,
    ImageScanResult,
    ImageStatus,
    ScanReport,
)
from services.packaging.domain.publication import (
    PackageContent,
    PackageDependency,
    PackagePublication,
    PublicationStatus,
)
from services.packaging.domain.scan_policy import ScanPolicy, ScanVerdict, VulnerabilityFinding
from services.packaging.domain.values import (
    FeedReference,
    ImageTag,
    PackageId,
    PackageVersion,
    RegistryReference,
    RepositoryName,
    Severity,
    VersionRange,
)
from shared_kernel.domain.value_objects import Sha256

__all__ = [
    "BuildArtifact",
    "BuildRecord",
    "BuildStatus",
    "ContainerImage",
    "FeedReference",
    "ImageLayer",
    "ImageScanResult",
    "ImageStatus",
    "ImageTag",
    "ModuleType",
    "PackageContent",
    "PackageDependency",
    "PackageId",
    "PackagePublication",
    "PackageVersion",
    "PublicationStatus",
    "RegistryReference",
    "RepositoryName",
    "ScanPolicy",
    "ScanReport",
    "ScanVerdict",
    "Severity",
    "Sha256",
    "VersionRange",
    "VulnerabilityFinding",
]
