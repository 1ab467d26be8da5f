"""Settings of one service, from the environment (pydantic-settings).

Each service subclasses ``ServiceSettings`` with its own env prefix
(``SOURCE_CONTROL_``, ``PIPELINES_``, …). Connection settings shared by the
whole fleet may also be given once with the ``DEVOPS_`` prefix.
"""

from __future__ import annotations

from typing import Literal, Self
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared_kernel.durations import parse_duration


class ServiceSettings(BaseSettings):
    """Everything a consumer process needs to run; subclasses add their own."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_admin_user: str = "postgres"
    postgres_admin_password: str = ""
    app_role_password: str = ""
    relay_role_password: str = ""
    # Full URLs override what is derived from the fields above.
    admin_database_url: str = ""
    database_url: str = ""
    relay_database_url: str = ""

    prefetch: int = Field(default=32, ge=1, le=1000)
    database_pool_size: int = Field(default=0, ge=0)  # 0: prefetch + 2
    retry_delays: list[str] = ["5s", "30s", "5m"]
    transient_attempts: int = Field(default=3, ge=1)
    delivery_limit: int = Field(default=20, ge=1)
    relay_batch_size: int = Field(default=200, ge=1)
    relay_poll_interval: str = "1s"
    shutdown_timeout: str = "20s"
    history_retention: str = "7d"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
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
        fleet = EnvSettingsSource(settings_cls, env_prefix="DEVOPS_")
        return init_settings, env_settings, fleet, dotenv_settings, file_secret_settings

    @field_validator("retry_delays")
    @classmethod
    def _durations(cls, value: list[str]) -> list[str]:
        for delay in value:
            parse_duration(delay)
        return value

    @model_validator(mode="after")
    def _derive_urls(self) -> Self:
        if not self.admin_database_url:
            self.admin_database_url = self._url(self.postgres_admin_user, self.postgres_admin_password)
        if not self.database_url:
            self.database_url = self._url(self.app_role, self.app_role_password)
        if not self.relay_database_url:
            self.relay_database_url = self._url(self.relay_role, self.relay_role_password)
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
    def retry_delay_seconds(self) -> list[float]:
        return [parse_duration(delay) for delay in self.retry_delays]
