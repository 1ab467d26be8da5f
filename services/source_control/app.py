"""Composition root of Source Control: ports from settings, handlers, runtime."""

from __future__ import annotations

from pathlib import Path

from services.source_control.adapters.git_local import LocalGitProvider
from services.source_control.adapters.tables import MAPPINGS
from services.source_control.handlers import SourceControlHandlers
from services.source_control.settings import SourceControlSettings
from shared_kernel.messaging.handlers import HandlerRegistry
from shared_kernel.service import ServiceDefinition


def build_handlers(settings: SourceControlSettings) -> HandlerRegistry:
    git = LocalGitProvider(settings.git_root)
    return SourceControlHandlers(git, settings.bypass_identities, settings.build_check_name).registry()


DEFINITION = ServiceDefinition(
    settings_type=SourceControlSettings,
    mappings=MAPPINGS,  # type: ignore[arg-type]
    migrations=Path(__file__).parent / "migrations",
    build_handlers=build_handlers,
)
