"""Composition root of Packaging: ports from settings, handlers, runtime."""

from __future__ import annotations

from pathlib import Path

from services.packaging.adapters.feed_local import LocalPackageFeed
from services.packaging.adapters.registry_local import LocalContainerRegistry
from services.packaging.adapters.tables import MAPPINGS
from services.packaging.handlers import PackagingHandlers
from services.packaging.settings import PackagingSettings
from shared_kernel.blobs import LocalBlobStore
from shared_kernel.messaging.handlers import HandlerRegistry
from shared_kernel.service import ServiceDefinition


def build_handlers(settings: PackagingSettings) -> HandlerRegistry:
    return PackagingHandlers(
        settings,
        LocalBlobStore(settings.blob_root),
        LocalPackageFeed(settings.feed_root),
        LocalContainerRegistry(settings.registry_root),
    ).registry()


DEFINITION = ServiceDefinition(
    settings_type=PackagingSettings,
    mappings=MAPPINGS,  # type: ignore[arg-type]
    migrations=Path(__file__).parent / "migrations",
    build_handlers=build_handlers,
)
