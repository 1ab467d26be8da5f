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
        # Each tenant's feeds and registries apart, as each organisation has its own.
        feeds=lambda tenant_id: LocalPackageFeed(settings.feed_root / tenant_id),
        registries=lambda tenant_id: LocalContainerRegistry(settings.registry_root / tenant_id),
    ).registry()


DEFINITION = ServiceDefinition(
    settings_type=PackagingSettings,
    mappings=MAPPINGS,  # type: ignore[arg-type]
    migrations=Path(__file__).parent / "migrations",
    build_handlers=build_handlers,
)
