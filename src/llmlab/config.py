"""One settings schema for llmlab: environment (``LLMLAB_*``), config file and CLI flags.

Settings are read from, lowest priority first: defaults, ``$LLMLAB_HOME/config.toml``,
environment variables with the ``LLMLAB_`` prefix, and explicit keyword arguments (what
the CLI passes from its flags). All of them are validated by the same pydantic model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def default_home() -> Path:
    return Path(os.environ.get("LLMLAB_HOME") or Path.home() / ".llmlab").expanduser()


class ApiModel(BaseModel):
    """A model served by an OpenAI-compatible API, as configured by the user."""

    name: str
    model: str | None = None  # the remote model id; defaults to name
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"  # the key itself is never stored in config
    profile: str = "openai"  # what the server takes beyond the OpenAI API (models/remote_profiles.py)
    context_length: int = 8192
    input_per_1m: float | None = None  # USD per 1M prompt tokens (overrides the price table)
    output_per_1m: float | None = None


class HomeTomlSettings(BaseSettings):
    """A settings schema read from, lowest priority first: defaults, ``$LLMLAB_HOME/<toml_name>``,
    environment variables, then keyword arguments (no ``.env`` or secrets directory).

    The lab's :class:`Settings` and the server's ``ServerSettings`` both derive from it, so
    both read their sources the same way.
    """

    #: the TOML file under ``$LLMLAB_HOME`` this schema reads
    toml_name: ClassVar[str]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = default_home() / cls.toml_name
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


class Settings(HomeTomlSettings):
    model_config = SettingsConfigDict(env_prefix="LLMLAB_", extra="forbid", env_nested_delimiter="__")
    toml_name = "config.toml"

    home: Path = Field(default_factory=default_home)
    default_model: str = "smollm2-135m"
    threads: int | None = None  # llama.cpp threads; None = chosen at start-up from cores and load (llmlab.threads)
    context_length: int | None = None  # n_ctx for local models; None = min(model's, 4096)
    ledger: bool = True  # record every generation in the run ledger
    # the ledger stores texts with personal data masked ([PHONE_1]); true keeps them raw
    ledger_raw_text: bool = False
    # OpenAI-compatible API defaults used by `--backend openai` / `openai:MODEL` names
    api_base: str = Field(default="https://api.openai.com/v1")
    api_key: SecretStr | None = None
    api_profile: str = "openai"  # the server kind behind api_base: openai, vllm, llamacpp, ollama
    api_models: list[ApiModel] = Field(default_factory=list)

    @field_validator("home", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(v).expanduser() if isinstance(v, (str, Path)) else v

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.db"

    def resolved_api_key(self, env_name: str = "OPENAI_API_KEY") -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(env_name)


def load_settings(**overrides: Any) -> Settings:
    """Settings from file + env, with explicit ``overrides`` (e.g. CLI flags) on top."""
    from .errors import ConfigError
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        raise ConfigError(f"invalid llmlab settings: {e}") from None


def default_threads() -> int:
    """Threads for CPU decoding when none is configured: the cores left free by other work,
    chosen once per process (see :mod:`llmlab.threads`)."""
    from .threads import choose

    return choose().threads
