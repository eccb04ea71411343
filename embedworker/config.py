"""Settings: a TOML file, overridden by EMBEDWORKER_* environment variables and DATABASE_URL."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "EMBEDWORKER_CONFIG"

SqlIdentifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
# A model's name is a key of [models] and appears in SQL literals, metrics labels and JSON keys.
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
# What a model's vectors are recorded as when the configuration names no version; vectors stored
# before versions were recorded count as this version too (see db/vectors.py).
DEFAULT_VERSION = "1"
ModelVersion = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
LogLevel = Literal["debug", "info", "warning", "error"]
ListenAddress = Annotated[str, Field(pattern=r"^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d{1,5}$")]

# Studify's two model servers; a partial [models.<name>] table overrides these field by field.
DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "e5_small": {
        "url": "https://edusocial-e5-small-embedding-server.hf.space",
        "protocol": "hfspace",
        "dimension": 384,
        "column": "embedding_e5_small",
        "flag_column": "has_e5_embedding",
        "task": "passage",
        "query_task": "query",
        "batch_size": 64,
        "search_weight": 0.4,
    },
    "bge_m3": {
        "url": "https://edusocial-bge-m3-embedding-server.hf.space",
        "protocol": "hfspace",
        "dimension": 1024,
        "column": "embedding_bge_m3",
        "flag_column": "has_bge_embedding",
        "batch_size": 32,
        "search_weight": 0.6,
    },
}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


HttpUrl = Annotated[
    str, Field(pattern=r"^https?://[^\s/]+"), AfterValidator(lambda url: url.rstrip("/"))
]
WireProtocol = Literal["hfspace", "tei", "openai", "ollama"]


class ModelSettings(BaseModel):
    """One embedding model: where its servers are, how to talk to them, where vectors go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl | None = None
    urls: list[HttpUrl] = Field(default_factory=list)
    protocol: WireProtocol = "hfspace"
    model: str | None = None
    dimension: Annotated[int, Field(ge=1, le=16000)]
    column: SqlIdentifier
    flag_column: SqlIdentifier
    task: str | None = None
    prefix: str = ""
    # The query side, for `embedworker search`: what a question is embedded with.
    query_task: str | None = None
    query_prefix: str = ""
    query_model: str | None = None
    search_weight: Annotated[float, Field(ge=0, le=1000)] = 1.0
    api_key: SecretStr | None = None
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    max_concurrency: Annotated[int, Field(ge=1, le=256)] = 4
    rate_limit_rps: Annotated[float, Field(gt=0)] | None = None
    rate_limit_inputs_per_min: Annotated[float, Field(gt=0)] | None = None
    encoding_format: Literal["float", "base64"] = "base64"
    truncate: bool = True
    enabled: bool = True
    version: ModelVersion = DEFAULT_VERSION

    @model_validator(mode="before")
    @classmethod
    def _one_url_is_a_list_of_one(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("urls") and data.get("url"):
            return {**data, "urls": [data["url"]]}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelSettings:
        if not self.urls:
            raise ValueError("url (or urls) is required")
        if self.protocol in ("openai", "ollama") and not self.model:
            raise ValueError(f"model is required for protocol {self.protocol}")
        return self


def _valid_cron(expression: str) -> str:
    from croniter import croniter

    if expression and not croniter.is_valid(expression):
        raise ValueError(f"not a valid cron expression: {expression!r}")
    return expression


CronExpression = Annotated[str, AfterValidator(_valid_cron)]


class ScheduleSettings(BaseModel):
    """Cron strings (UTC) of the maintenance jobs the daemon runs itself; "" turns one off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cleanup: CronExpression = "0 2 * * *"
    retry_failed: CronExpression = "0 3 * * 0"


class Settings(BaseSettings):
    """Everything the daemon and the commands read; built once and passed in."""

    model_config = SettingsConfigDict(
        env_prefix="EMBEDWORKER_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database_url: str = Field(
        min_length=1,
        validation_alias=AliasChoices(
            "EMBEDWORKER_DATABASE_URL", "DATABASE_URL", "database_url"
        ),
    )
    channel: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")] = "embedding_queue"
    poll_interval_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    processes: Annotated[int, Field(ge=1, le=64)] = 1
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    max_retries: Annotated[int, Field(ge=1, le=1000)] = 3
    retry_delay_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    retry_delay_max_s: Annotated[float, Field(ge=0, le=7 * 86400)] = 3600.0
    lease_timeout_s: Annotated[float, Field(ge=1, le=86400)] = 30.0
    max_reclaims: Annotated[int, Field(ge=1, le=1000)] = 5
    max_chars: Annotated[int, Field(ge=1, le=1_000_000)] = 8000
    shutdown_grace_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    drain_outage_wait_s: Annotated[float, Field(ge=0, le=86400)] = 120.0
    log_level: LogLevel = "info"
    completed_retention_days: Annotated[float, Field(ge=0, le=36500)] = 7
    failed_retention_days: Annotated[float, Field(ge=0, le=36500)] = 30
    http_listen: ListenAddress | None = None
    index_min_rows: Annotated[int, Field(ge=0)] = 10_000
    index_check_interval_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    index_m: Annotated[int, Field(ge=2, le=100)] = 24
    index_ef_construction: Annotated[int, Field(ge=4, le=1000)] = 128
    index_build_memory_mb: Annotated[int, Field(ge=64, le=1_048_576)] = 1024
    search_ef_search: Annotated[int, Field(ge=1, le=1000)] = 200
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    models: dict[str, ModelSettings] = Field(default_factory=dict)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("models", mode="before")
    @classmethod
    def _merge_model_defaults(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = {name: dict(spec) for name, spec in DEFAULT_MODELS.items()}
        for name, overrides in value.items():
            if isinstance(overrides, Mapping):
                merged[name] = {**merged.get(name, {}), **overrides}
            else:
                merged[name] = overrides
        return merged

    @model_validator(mode="after")
    def _check_models(self) -> Settings:
        if not self.enabled_models:
            raise ValueError("models: at least one model must be enabled")
        for name in self.models:
            if not MODEL_NAME.match(name):
                raise ValueError(
                    f"models.{name}: a model's name is 1 to 63 letters, digits, '_', '-' or '.'"
                )
        columns: dict[str, str] = {}
        for name, model in self.enabled_models.items():
            for column in (model.column, model.flag_column):
                if column in columns:
                    raise ValueError(
                        f"models.{name}: column {column!r} is also used by "
                        f"models.{columns[column]}"
                    )
                columns[column] = name
        if self.index_ef_construction < 2 * self.index_m:
            raise ValueError("index_ef_construction must be at least twice index_m (pgvector)")
        if self.retry_delay_max_s < self.retry_delay_s:
            raise ValueError("retry_delay_max_s must not be smaller than retry_delay_s")
        return self

    @property
    def enabled_models(self) -> dict[str, ModelSettings]:
        return {name: model for name, model in self.models.items() if model.enabled}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment overrides them.
        return (env_settings, init_settings)


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the TOML file (``path`` or $EMBEDWORKER_CONFIG, if any) and the environment."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    unknown = _unknown_environment_keys()
    if unknown:
        raise ConfigError("; ".join(f"{name}: unknown setting" for name in unknown))
    file_values = _read_toml(Path(path)) if path is not None else {}
    # Without this default the models validator would not run when nothing names a model.
    file_values.setdefault("models", {})
    try:
        return Settings(**file_values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _unknown_environment_keys() -> list[str]:
    """EMBEDWORKER_* variables that name no setting (a typo would otherwise go unnoticed)."""
    known = {name.upper() for name in Settings.model_fields} | {"CONFIG", "TEST_DATABASE_URL"}
    return sorted(
        name for name in os.environ
        if name.upper().startswith("EMBEDWORKER_")
        and name.upper().removeprefix("EMBEDWORKER_").split("__")[0] not in known
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "settings"
        if key.lower() in ("embedworker_database_url", "database_url"):
            key = "database_url"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        if error["type"] == "missing" and key == "database_url":
            message = "required: set database_url in the config file, or DATABASE_URL"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)
