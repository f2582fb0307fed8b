import json

import pytest

from llmlab.config import load_settings
from llmlab.errors import ModelNotFoundError
from llmlab.models.spec import bundled_path, resolve


@pytest.fixture
def settings(llmlab_home):
    return load_settings()


def test_bundled_model_resolves_to_the_packaged_gguf(settings):
    spec = resolve("smollm2-135m", settings)
    assert spec.backend == "llamacpp" and spec.path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "English" in spec.languages
    hf = resolve("smollm2-135m", settings, backend="transformers")
    assert hf.backend == "transformers" and hf.gguf_file == bundled_path("smollm2-135m").name


def test_local_paths(settings, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve(str(gguf), settings).backend == "llamacpp"
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve(str(folder), settings).backend == "transformers"
    assert resolve(str(tmp_path), settings).path == str(gguf)  # a folder with one GGUF file
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="neither"):
        resolve(str(empty), settings)


def test_adapter_folder_resolves_its_base(settings, tmp_path):
    ad = tmp_path / "run"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2-135m"}))
    spec = resolve(str(ad), settings)
    assert spec.backend == "transformers" and spec.adapter == str(ad) and spec.gguf_file


def test_cached_repo_ids_and_missing_ones(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snap = tmp_path / "models--org--tiny" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("abc")
    spec = resolve("org/tiny", settings)
    assert spec.backend == "transformers" and spec.path == str(snap) and spec.repo_id == "org/tiny"
    with pytest.raises(ModelNotFoundError, match="llmlab models pull org/missing"):
        resolve("org/missing", settings)


def test_unknown_name_says_what_is_valid(settings):
    with pytest.raises(ModelNotFoundError, match="smollm2-135m"):
        resolve("gpt5-local", settings)


def test_api_names(settings):
    spec = resolve("openai:gpt-4o-mini", settings)
    assert spec.backend == "openai" and spec.remote_model == "gpt-4o-mini"
