"""The built-in prompt pattern library and name-or-path template lookup.

Each pattern is one documented YAML file in ``prompts/library/`` (Korean and English
sample inputs included). ``load_template`` accepts a library name or a path to a YAML
file; an unknown name lists the valid ones.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import RegistryError
from .template import PromptTemplate, load_template_file


def _library_dir() -> Path:
    return Path(str(resources.files("llmlab.prompts").joinpath("library")))


def library_names() -> list[str]:
    """Names of the built-in patterns, sorted."""
    return sorted(p.stem for p in _library_dir().glob("*.yaml"))


def library_path(name: str) -> Path:
    p = _library_dir() / f"{name}.yaml"
    if not p.is_file():
        raise RegistryError(f"unknown prompt template {name!r}; built-in templates: {', '.join(library_names())} "
                            f"(or give a path to a YAML file)")
    return p


def load_template(name_or_path: str | Path, base_dir: str | Path | None = None) -> PromptTemplate:
    """A template by library name (``few_shot``) or YAML path (relative to ``base_dir`` if given)."""
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")) or "/" in s or Path(s).is_file():
        p = Path(s).expanduser()
        if base_dir is not None and not p.is_absolute():
            p = Path(base_dir) / p
        return load_template_file(p)
    return load_template_file(library_path(s))


def library() -> list[PromptTemplate]:
    """Every built-in pattern, loaded and validated."""
    return [load_template_file(library_path(n)) for n in library_names()]
