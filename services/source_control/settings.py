"""Source Control settings: the fleet's, plus where the local Git adapter keeps repositories."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared_kernel.settings import ServiceSettings


class SourceControlSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SOURCE_CONTROL_", extra="ignore")

    service_name: ClassVar[str] = "source_control"
    git_root: Path = Path("var/git")
    # Identities allowed to push to protected branches without a pull request
    # (the platform's own services), added to every new branch policy.
    bypass_identities: list[str] = ["svc-pipelines", "svc-release"]
    # The pull-request check a build of the source branch reports as (build validation requires it).
    build_check_name: str = "build"
