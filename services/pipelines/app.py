"""Composition root of Pipelines: ports from settings, handlers, ingress, runtime."""

from __future__ import annotations

from pathlib import Path

from services.pipelines.adapters.azure_devops_hooks import AzureDevOpsServiceHooks
from services.pipelines.adapters.pipeline_yaml import AzurePipelinesYaml
from services.pipelines.adapters.tables import MAPPINGS
from services.pipelines.handlers import PipelinesHandlers
from services.pipelines.settings import PipelinesSettings
from shared_kernel.blobs import LocalBlobStore
from shared_kernel.messaging.handlers import HandlerRegistry
from shared_kernel.service import ServiceDefinition


def build_handlers(settings: PipelinesSettings) -> HandlerRegistry:
    blobs = LocalBlobStore(settings.blob_root)
    return PipelinesHandlers(settings, AzurePipelinesYaml(), blobs).registry()


DEFINITION = ServiceDefinition(
    settings_type=PipelinesSettings,
    mappings=MAPPINGS,  # type: ignore[arg-type]
    migrations=Path(__file__).parent / "migrations",
    build_handlers=build_handlers,
    ingress=(AzureDevOpsServiceHooks(),),
)
