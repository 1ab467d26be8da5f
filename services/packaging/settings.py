"""Packaging settings: the fleet's, plus where packages and images go and the scan policy."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared_kernel.settings import ServiceSettings


class PackagingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PACKAGING_", extra="ignore")

    service_name: ClassVar[str] = "packaging"
    # The local adapters' storage: NuGet feeds and container registries on disk.
    feed_root: Path = Path("var/feeds")
    registry_root: Path = Path("var/registries")
    # The artifact of a service's build that is its image's manifest (OCI or Docker v2);
    # a library's packages are its .nupkg artifacts.
    image_artifact: str = "image"
    # The scan policy: findings of these severities fail the scan…
    scan_blocked_severities: list[str] = ["CRITICAL", "HIGH"]
    # …when a fix is available (False: whether or not one is).
    scan_only_with_fix_available: bool = True
    identity: str = Field(default="svc-packaging", min_length=1)
