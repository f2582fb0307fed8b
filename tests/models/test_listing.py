"""``list_models``: bundled, local, Hugging Face cache (a fake cache layout) and API models."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmlab.config import ApiModel, load_settings
from llmlab.models.listing import list_models
from llmlab.models.spec import resolve

COMMIT = "b" * 40


def cached_repo(cache: Path, repo: str, files: dict[str, bytes], commit: str = COMMIT, partial: bool = False) -> Path:
    """Lay out ``models--ORG--NAME/{blobs,snapshots,refs}`` exactly as huggingface_hub does."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for i, (name, data) in enumerate(files.items()):
        blob = root / "blobs" / f"{i:064x}"
        blob.write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if partial:
        (root / "blobs" / ("f" * 64 + ".incomplete")).write_bytes(b"x" * 10)
    return root


@pytest.fixture
def world(tmp_path, monkeypatch, llmlab_home):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    cached_repo(cache, "test-org/tiny-GGUF", {"tiny-q4_k_m.gguf": b"G" * 1000})
    cached_repo(cache, "test-org/two-GGUF", {"a.gguf": b"A" * 10, "b.gguf": b"B" * 20})
    cached_repo(cache, "test-org/tiny-hf", {"config.json": b"{}", "model.safetensors": b"S" * 300,
                                            "tokenizer.json": b"{}"})
    cached_repo(cache, "Qwen/Qwen2.5-1.5B-Instruct-GGUF", {"qwen2.5-1.5b-instruct-q8_0.gguf": b"Q" * 50})
    (cache / "models--test-org--halfway" / "blobs").mkdir(parents=True)
    (cache / "models--test-org--halfway" / "blobs" / ("e" * 64 + ".incomplete")).write_bytes(b"h" * 5)
    models = llmlab_home / "models"
    (models / "hf-folder").mkdir(parents=True)
    (models / "hf-folder" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (models / "hf-folder" / "model.safetensors").write_bytes(b"w" * 100)
    (models / "mine.gguf").write_bytes(b"m" * 70)
    (models / "sub").mkdir()
    (models / "sub" / "nested.gguf").write_bytes(b"n" * 7)
    settings = load_settings(api_models=[ApiModel(name="gpt-mini", model="gpt-4o-mini")])
    return settings, cache, models


def by_name(entries):
    return {e.name: e for e in entries}


def test_bundled_model_with_its_language_note(world):
    e = by_name(list_models(world[0]))["smollm2-135m"]
    assert e.kind == "bundled" and e.backend == "llamacpp" and e.format == "gguf"
    assert "English only" in e.languages and e.size_bytes and e.size_bytes > 90_000_000


def test_local_files_and_folders(world):
    settings, _, models = world
    entries = by_name(list_models(settings))
    g = entries[str(models / "mine.gguf")]
    assert g.kind == "local" and g.backend == "llamacpp" and g.size_bytes == 70
    f = entries[str(models / "hf-folder")]
    assert f.backend == "transformers" and f.format == "safetensors" and f.size_bytes > 100
    assert str(models / "sub" / "nested.gguf") in entries


def test_hf_cache_repos(world):
    settings, cache, _ = world
    entries = by_name(list_models(settings))
    one = entries["test-org/tiny-GGUF"]
    assert (one.kind, one.backend, one.format, one.size_bytes) == ("hf-cache", "llamacpp", "gguf", 1000)
    assert {"test-org/two-GGUF:a.gguf", "test-org/two-GGUF:b.gguf"} <= set(entries)  # several files: REPO:FILE
    hf = entries["test-org/tiny-hf"]
    assert hf.backend == "transformers" and hf.format == "safetensors" and hf.size_bytes == 304
    assert hf.files == ["config.json", "model.safetensors", "tokenizer.json"]
    q = entries["qwen2.5-1.5b-instruct:q8_0"]  # a catalog file is listed under its catalog name
    assert "Qwen/Qwen2.5-1.5B-Instruct-GGUF:qwen2.5-1.5b-instruct-q8_0.gguf" in q.notes and "ko" in q.languages
    assert "partial download" in entries["test-org/halfway"].notes


def test_every_name_is_usable_as_model(world):
    settings = world[0]
    for e in list_models(settings):
        if e.kind in ("hf-cache", "local") and e.format in ("gguf", "safetensors"):
            spec = resolve(e.name, settings)
            assert spec.backend == e.backend, e.name


def test_api_models(world):
    e = by_name(list_models(world[0]))["gpt-mini"]
    assert e.kind == "api" and e.backend == "openai" and "gpt-4o-mini" in e.notes and "OPENAI_API_KEY" in e.notes


def test_empty_places_are_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "missing"))
    kinds = {e.kind for e in list_models(load_settings(home=tmp_path / "home"))}
    assert kinds == {"bundled"}
