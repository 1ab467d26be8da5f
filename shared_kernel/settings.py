"""Settings of one service, from the environment (pydantic-settings).

Each service subclasses ``ServiceSettings`` with its own env prefix
(``SOURCE_CONTROL_``, ``PIPELINES_``, …). The settings in ``FLEET_WIDE``
(connections and runtime tuning) may also be given once for the whole fleet
with the ``DEVOPS_`` prefix; the service's own prefix wins. Identity-like
settings (role passwords, database URLs, fault injection) are per service only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared_kernel.durations import parse_duration

FLEET_WIDE = frozenset(
    {
        "amqp_url",
        "postgres_host",
        "postgres_port",
        "postgres_admin_user",
        "postgres_admin_password",
        "prefetch",
        "retry_delays",
        "transient_attempts",
        "delivery_limit",
        "relay_batch_size",
        "relay_in_flight_batches",
        "relay_poll_interval",
        "shutdown_timeout",
        "history_retention",
        "log_level",
        "log_format",
        "health_host",
        "health_port",
        "health_timeout",
        "blob_root",
    }
)


class _FleetEnvSource(EnvSettingsSource):
    """``DEVOPS_*`` variables, for the settings in FLEET_WIDE only."""

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in super().__call__().items() if name in FLEET_WIDE}


class ServiceSettings(BaseSettings):
    """Everything a consumer process needs to run; subclasses add their own."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: ClassVar[str] = "service"

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_admin_user: str = "postgres"
    postgres_admin_password: str = ""
    app_role_password: str = ""
    relay_role_password: str = ""
    operator_role_password: str = ""
    # Full URLs override what is derived from the fields above.
    admin_database_url: str = ""
    database_url: str = ""
    relay_database_url: str = ""
    operator_database_url: str = ""

    # Each in-flight delivery holds a database connection: a service opens prefetch + 2
    # (consumer) + relay_in_flight_batches + 1 (relay) + 2 (dead letters) connections.
    prefetch: int = Field(default=16, ge=1, le=1000)
    database_pool_size: int = Field(default=0, ge=0)  # 0: prefetch + 2
    retry_delays: list[str] = ["5s", "30s", "5m"]
    transient_attempts: int = Field(default=3, ge=1)
    delivery_limit: int = Field(default=20, ge=1)
    relay_batch_size: int = Field(default=200, ge=1)
    relay_in_flight_batches: int = Field(default=2, ge=1, le=16)
    relay_poll_interval: str = "1s"
    shutdown_timeout: str = "20s"
    history_retention: str = "7d"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    # The HTTP endpoint: /metrics, /healthz, /readyz. Port 0: one the OS chooses (tests).
    health_host: str = "0.0.0.0"
    health_port: int = Field(default=8080, ge=0, le=65535)
    # How long /readyz waits for the database's SELECT 1, and /metrics for its outbox figures.
    health_timeout: str = "2s"
    # The local blob store (build logs, artifacts): shared by the services that use it.
    blob_root: Path = Path("var/blobs")
    # Fault injection for the crash tests: SIGKILL the process at this point.
    crash_at: Literal["", "before_commit", "after_commit"] = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The service's own prefix wins over the fleet-wide ``DEVOPS_`` one."""
        fleet = _FleetEnvSource(settings_cls, env_prefix="DEVOPS_")
        return init_settings, env_settings, fleet, dotenv_settings, file_secret_settings

    @field_validator("retry_delays")
    @classmethod
    def _durations(cls, value: list[str]) -> list[str]:
        for delay in value:
            parse_duration(delay)
        if len(set(value)) != len(value):
            raise ValueError("retry delays must differ (each names its own retry queue)")
        return value

    @field_validator("relay_poll_interval", "shutdown_timeout", "history_retention", "health_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("health_timeout")
    @classmethod
    def _positive(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("the health timeout must be longer than zero")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if not isinstance(logging.getLevelName(value.upper()), int):
            raise ValueError(f"{value!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
        return value.upper()

    @model_validator(mode="after")
    def _derive_urls(self) -> Self:
        if not self.admin_database_url:
            self.admin_database_url = self._url(self.postgres_admin_user, self.postgres_admin_password)
        if not self.database_url:
            self.database_url = self._url(self.app_role, self.app_role_password)
        if not self.relay_database_url:
            self.relay_database_url = self._url(self.relay_role, self.relay_role_password)
        if not self.operator_database_url:
            self.operator_database_url = self._url(self.operator_role, self.operator_role_password)
        if not self.database_pool_size:
            self.database_pool_size = self.prefetch + 2
        return self

    def _url(self, user: str, password: str) -> str:
        secret = f":{quote(password, safe='')}" if password else ""
        return (
            f"postgresql+asyncpg://{quote(user, safe='')}{secret}"
            f"@{self.postgres_host}:{self.postgres_port}/{self.database_name}"
        )

    # -- names derived from the service name (the brief's naming table) -------------

    @property
    def context(self) -> str:
        """Routing-key context and envelope source suffix: ``source-control``."""
        return self.service_name.replace("_", "-")

    @property
    def source(self) -> str:
        return f"devops.{self.context}"

    @property
    def database_name(self) -> str:
        return f"devops_{self.service_name}"

    @property
    def app_role(self) -> str:
        return f"devops_{self.service_name}_app"

    @property
    def relay_role(self) -> str:
        return f"devops_{self.service_name}_relay"

    @property
    def operator_role(self) -> str:
        """Dead-letter store and operator tools: every tenant's dead letters, nothing else."""
        return f"devops_{self.service_name}_operator"

    @property
    def retry_delay_seconds(self) -> list[float]:
        return [parse_duration(delay) for delay in self.retry_delays]
