"""Pipelines settings: the fleet's, plus the template versions and where builds push."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared_kernel.durations import parse_duration
from shared_kernel.settings import ServiceSettings


class PipelinesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINES_", extra="ignore")

    service_name: ClassVar[str] = "pipelines"
    # Published versions (tags) of ConnectSoft/ConnectSoft.AzurePipelines a definition may pin,
    # and the one a generated definition pins when the command names none.
    known_template_versions: list[str] = ["v1.4.0", "v1.5.0"]
    template_version: str = "v1.5.0"
    # Where a generated definition lives in the module's repository.
    definition_path: str = "azure-pipelines.yml"
    # Where a library's package is pushed (an Azure Artifacts feed, "project/feed" allowed).
    package_feed: str = "connectsoft/packages"
    # A service's image: the registry host and the Azure DevOps service connection to it.
    container_registry: str = "acr.devops.local"
    registry_service_connection: str = "acr-connection"
    # The platform's own identity, allowed to push to protected branches (Source Control's bypass list).
    identity: str = Field(default="svc-pipelines", min_length=1)
    # major.minor: build numbers <prefix>.<n> are the built semantic versions.
    version_prefix: str = Field(default="1.0", pattern=r"^\d+\.\d+$")

    # How long a finished run waits for its jobs' last reports before its build result is
    # recorded without them (Azure sends no job event for a skipped stage; hooks get lost).
    build_result_settle_timeout: str = "10m"

    @field_validator("build_result_settle_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _pinned_version_is_known(self) -> Self:
        if self.template_version not in self.known_template_versions:
            raise ValueError(
                f"template_version {self.template_version!r} is not one of known_template_versions"
            )
        return self
