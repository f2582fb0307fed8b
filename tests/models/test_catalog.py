"""The shipped catalog file: schema, unique names, licences, and what it promises to cover."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmlab.errors import ConfigError, InvalidParameterError, ModelNotFoundError
from llmlab.models import catalog
from llmlab.models.catalog import CATALOG_PATH, load_catalog
from llmlab.models.fit import memory_table


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def test_the_shipped_catalog_validates_with_unique_names_and_licences(cat):
    names = [m.name for m in cat.models]
    assert len(names) == len(set(names)) and len(names) >= 6
    for m in cat.models:
        assert m.license and m.license_id and m.license_url.startswith("https://")
        assert m.sources and all(s.startswith("https://") for s in m.sources)
        assert m.korean and m.chat_template and m.context_length > 0 and m.params > 0
        if not m.commercial_use:
            assert "NON-COMMERCIAL" in m.license_note


def test_it_covers_the_families_the_issue_names(cat):
    families = {m.family for m in cat.models}
    assert {"Qwen2.5", "EXAONE 3.5", "Gemma 3", "Llama 3.2 (Korean)", "Polyglot-Ko"} <= families
    assert cat.get("polyglot-ko-1.3b").hf.repo == "EleutherAI/polyglot-ko-1.3b"
    exaone = cat.get("exaone-3.5-2.4b-instruct")
    assert exaone.commercial_use is False and exaone.gguf.repo == "LGAI-EXAONE/EXAONE-3.5-2.4B-Instruct-GGUF"
    assert cat.get("gemma-3-4b-it").gated is True
    assert cat.get("qwen2.5-1.5b-instruct").gguf.file_for(None).file == "qwen2.5-1.5b-instruct-q4_k_m.gguf"
    assert all(m.gguf or m.hf for m in cat.models)
    assert sum(1 for m in cat.models if m.gguf and m.hf) >= 5  # both forms where they exist


def write(tmp_path: Path, models: list[dict]) -> Path:
    p = tmp_path / "catalog.yaml"
    p.write_text(yaml.safe_dump({"version": 1, "models": models}, allow_unicode=True))
    return p


def entry(**kw) -> dict:
    raw = yaml.safe_load(CATALOG_PATH.read_text())["models"][1]
    raw.update(kw)
    return raw


def test_duplicate_names_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="duplicate catalog name"):
        load_catalog(write(tmp_path, [entry(), entry()]))


def test_a_missing_licence_is_rejected(tmp_path):
    bad = entry(name="no-licence")
    del bad["license"]
    with pytest.raises(ConfigError, match="license"):
        load_catalog(write(tmp_path, [bad]))


def test_non_commercial_must_be_flagged(tmp_path):
    with pytest.raises(ConfigError, match="NON-COMMERCIAL"):
        load_catalog(write(tmp_path, [entry(name="nc", commercial_use=False, license_note="")]))


def test_unknown_fields_and_quantizations_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="extra"):
        load_catalog(write(tmp_path, [entry(name="x", colour="blue")]))
    e = entry(name="y")
    e["gguf"] = {**e["gguf"], "default_quant": "q4_k_m",
                 "files": [{"quant": "q9_z", "file": "a.gguf", "size_bytes": 1}]}
    with pytest.raises(ConfigError, match="unknown GGUF quantization"):
        load_catalog(write(tmp_path, [e]))


def test_find_and_names_with_a_quantization(cat):
    e, q = catalog.find("exaone-3.5-2.4b-instruct:Q8_0")
    assert e.name == "exaone-3.5-2.4b-instruct" and q == "q8_0"
    assert catalog.find("nope") == (None, None) and catalog.find("org/repo") == (None, None)
    assert catalog.find_repo("Qwen/Qwen2.5-1.5B-Instruct").name == "qwen2.5-1.5b-instruct"


def test_names_resolve_only_once_pulled(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="llmlab models pull qwen2.5-1.5b-instruct"):
        catalog.resolve_name("qwen2.5-1.5b-instruct")
    with pytest.raises(InvalidParameterError, match="choose one of: q4_k_m, q8_0"):
        catalog.resolve_name("qwen2.5-1.5b-instruct:q2_k")
    assert catalog.resolve_name("not-a-catalog-model") is None


def test_memory_table_per_quantization(cat):
    rows = memory_table(cat.get("qwen2.5-1.5b-instruct"), context=4096)
    by = {(r["form"], r["quant"]): r for r in rows}
    assert set(by) == {("gguf", "q4_k_m"), ("gguf", "q8_0"), ("hf", "bfloat16"), ("hf", "8bit"), ("hf", "4bit")}
    assert by["gguf", "q4_k_m"]["bytes"] > by["gguf", "q4_k_m"]["file_bytes"]  # + KV cache and buffers
    assert by["gguf", "q4_k_m"]["bytes"] < by["gguf", "q8_0"]["bytes"]
    assert by["hf", "4bit"]["bytes"] < by["hf", "8bit"]["bytes"] < by["hf", "bfloat16"]["bytes"]
    poly = memory_table(cat.get("polyglot-ko-1.3b"), context=4096)
    assert all(r["context"] == 2048 for r in poly)  # capped at the model's window
