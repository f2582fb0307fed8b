"""``models pull`` / ``rm`` against a local Hub (tests/models/fakehub.py), through the real
huggingface_hub download path: success, resume (dropped connection, partial file, killed
process), checksum mismatch, gated 401, 404, offline mode and the disk-space check."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.config import load_settings
from llmlab.errors import InvalidParameterError, ModelNotFoundError
from llmlab import hub as hub_mod
from llmlab.models.pull import (ChecksumMismatchError, GatedModelError, NetworkError, NotEnoughDiskError, OfflineError,
                                pull, remove)
from llmlab.models.spec import resolve

from .fakehub import FakeFile, FakeHub, wait_for, write_tiny_gguf

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
CHUNK = 10 * MB  # huggingface_hub writes the download in 10 MiB chunks


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running fake Hub; HF_ENDPOINT points at it and the HF cache lives in tmp_path."""
    from huggingface_hub import constants

    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest switched it on at import
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> bytes:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


@pytest.fixture(scope="module")
def big_gguf(tmp_path_factory) -> bytes:
    """24 MiB, so that a download interrupted after 10 MiB leaves a partial file to resume."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "big.gguf", extra_floats=6 * MB).read_bytes()


def cache(tmp_path) -> Path:
    return tmp_path / "hf-cache"


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_pull_file_then_resolve(hub, tmp_path, tiny_gguf):
    hub.add("test-org/tiny-GGUF", {"tiny.gguf": tiny_gguf, "README.md": b"# tiny\n"})
    r = pull("test-org/tiny-GGUF:tiny.gguf", progress=False)
    f = r.files[0]
    assert f.downloaded and f.sha256 == sha256(tiny_gguf) and f.bytes == len(tiny_gguf)
    assert Path(f.path).read_bytes() == tiny_gguf
    storage = cache(tmp_path) / "models--test-org--tiny-GGUF"
    assert (storage / "refs" / "main").read_text() == "a" * 40  # huggingface_hub's own cache layout
    assert (storage / "blobs" / sha256(tiny_gguf)).exists()
    assert not list(storage.glob("blobs/*.incomplete"))
    assert r.model == "test-org/tiny-GGUF:tiny.gguf"

    spec = resolve(r.model, load_settings())  # a pulled model is a model like any other
    assert spec.backend == "llamacpp" and Path(spec.path).read_bytes() == tiny_gguf

    again = pull("test-org/tiny-GGUF:tiny.gguf", progress=False)
    assert not again.files[0].downloaded and again.downloaded_bytes == 0
    assert len(hub.gets("tiny.gguf")) == 1


def test_pull_repo_id_lists_files_and_picks_the_gguf(hub, tiny_gguf):
    hub.add("test-org/one-GGUF", {"one-q4_k_m.gguf": tiny_gguf, "README.md": b"hi"})
    r = pull("test-org/one-GGUF", progress=False)
    assert [f.file for f in r.files] == ["one-q4_k_m.gguf"]
    assert resolve("test-org/one-GGUF", load_settings()).path == r.files[0].path


def test_several_gguf_files_need_a_choice(hub, tiny_gguf):
    hub.add("test-org/two-GGUF", {"m-q4_k_m.gguf": tiny_gguf, "m-q8_0.gguf": tiny_gguf + b"\0" * 64})
    with pytest.raises(InvalidParameterError, match="several GGUF files.*m-q4_k_m.gguf"):
        pull("test-org/two-GGUF", progress=False)
    r = pull("test-org/two-GGUF", quant="q8_0", progress=False)
    assert [f.file for f in r.files] == ["m-q8_0.gguf"]


def test_catalog_name_pull_resolve_and_rm(hub, tiny_gguf):
    """A catalog name downloads its chosen file; --model NAME then resolves to it; rm frees it."""
    hub.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF", {"qwen2.5-0.5b-instruct-q4_k_m.gguf": tiny_gguf})
    lines: list[str] = []
    r = pull("qwen2.5-0.5b-instruct", progress=False, log_line=lines.append)
    assert r.model == "qwen2.5-0.5b-instruct" and r.catalog == "qwen2.5-0.5b-instruct"
    assert r.fit is not None and r.fit["runtime"] == "llama.cpp"
    assert any(line.startswith("fit:") for line in lines) and any("licence: Apache-2.0" in line for line in lines)
    spec = resolve("qwen2.5-0.5b-instruct", load_settings())
    assert spec.name == "qwen2.5-0.5b-instruct" and Path(spec.path).read_bytes() == tiny_gguf

    gone = remove("qwen2.5-0.5b-instruct")
    assert gone.removed == ["Qwen/Qwen2.5-0.5B-Instruct-GGUF"] and gone.freed_bytes == len(tiny_gguf)
    with pytest.raises(ModelNotFoundError, match="llmlab models pull qwen2.5-0.5b-instruct"):
        resolve("qwen2.5-0.5b-instruct", load_settings())
    with pytest.raises(ModelNotFoundError, match="not in the Hugging Face cache"):
        remove("qwen2.5-0.5b-instruct")


def test_rm_one_file_keeps_the_others(hub, tiny_gguf):
    hub.add("test-org/two-GGUF", {"a.gguf": tiny_gguf, "b.gguf": tiny_gguf + b"\0" * 64})
    pull("test-org/two-GGUF:a.gguf", progress=False)
    b = pull("test-org/two-GGUF:b.gguf", progress=False)
    r = remove("test-org/two-GGUF:a.gguf")
    assert r.freed_bytes == len(tiny_gguf)
    assert Path(b.files[0].path).exists()
    with pytest.raises(ModelNotFoundError):
        resolve("test-org/two-GGUF:a.gguf", load_settings())


def test_hf_repo_pull_chooses_transformers_files(hub, tmp_path):
    config = json.dumps({"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1,
                         "intermediate_size": 32, "vocab_size": 64, "max_position_embeddings": 128}).encode()
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "F32", "shape": [64, 16], "data_offsets": [0, 4096]}})
    hb = header.encode()
    st = len(hb).to_bytes(8, "little") + hb + bytes(4096)
    hub.add("test-org/tiny-hf", {"config.json": config, "model.safetensors": st, "tokenizer.json": b"{}",
                                 "pytorch_model.bin": b"x" * 5000, "README.md": b"readme", "onnx/model.onnx": b"o"})
    r = pull("test-org/tiny-hf", progress=False)
    assert sorted(f.file for f in r.files) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert r.files[0].sha256 is None or len(r.files[0].sha256) == 64  # small files: git sha1 checked
    spec = resolve("test-org/tiny-hf", load_settings())
    assert spec.backend == "transformers" and spec.repo_id == "test-org/tiny-hf"

    from llmlab.models.fit import estimate_fit

    fit = estimate_fit("test-org/tiny-hf")
    assert fit.runtime == "transformers" and fit.n_params == 64 * 16


def test_resume_after_the_server_drops_the_connection(hub, big_gguf):
    hub.add("test-org/big-GGUF", {"big.gguf": FakeFile(big_gguf, drop_after=15 * MB, drops=1)})
    r = pull("test-org/big-GGUF:big.gguf", progress=False)
    assert r.files[0].sha256 == sha256(big_gguf)
    gets = hub.gets("big.gguf")
    assert len(gets) == 2 and gets[0]["range"] is None
    assert gets[1]["range"] == f"bytes={CHUNK}-"  # continued where the first connection stopped


def test_resume_from_a_partial_file_left_by_an_interrupted_run(hub, tmp_path, big_gguf):
    hub.add("test-org/big-GGUF", {"big.gguf": big_gguf})
    blobs = cache(tmp_path) / "models--test-org--big-GGUF" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha256(big_gguf)}.incomplete").write_bytes(big_gguf[: 5 * MB])
    r = pull("test-org/big-GGUF:big.gguf", progress=False)
    assert r.files[0].resumed_from == 5 * MB and r.downloaded_bytes == len(big_gguf) - 5 * MB
    assert hub.gets("big.gguf")[0]["range"] == f"bytes={5 * MB}-"
    assert Path(r.files[0].path).read_bytes() == big_gguf


def test_resume_after_the_process_is_killed(hub, tmp_path, big_gguf):
    """kill -9 mid-download, then pull again: it continues from the bytes on disk."""
    f = FakeFile(big_gguf, stall_after=12 * MB)
    hub.add("test-org/big-GGUF", {"big.gguf": f})
    part = cache(tmp_path) / "models--test-org--big-GGUF" / "blobs" / f"{sha256(big_gguf)}.incomplete"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0",
           "HF_HUB_CACHE": str(cache(tmp_path))}
    proc = subprocess.Popen([sys.executable, "-m", "llmlab.cli.main", "models", "pull", "test-org/big-GGUF:big.gguf",
                             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: part.exists() and part.stat().st_size >= CHUNK, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    kept = part.stat().st_size
    assert 0 < kept < len(big_gguf)
    f.stall_after = None
    r = pull("test-org/big-GGUF:big.gguf", progress=False)
    assert r.files[0].resumed_from == kept and r.files[0].sha256 == sha256(big_gguf)
    assert hub.gets("big.gguf")[-1]["range"] == f"bytes={kept}-"


def test_checksum_mismatch_removes_the_file(hub, tmp_path, tiny_gguf):
    hub.add("test-org/bad-GGUF", {"bad.gguf": FakeFile(tiny_gguf, corrupt=True)})
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch for bad.gguf.*removed"):
        pull("test-org/bad-GGUF:bad.gguf", progress=False)
    storage = cache(tmp_path) / "models--test-org--bad-GGUF"
    assert not [p for p in storage.rglob("*") if p.is_file()]  # no blob, no partial, no pointer
    with pytest.raises(ModelNotFoundError):
        resolve("test-org/bad-GGUF:bad.gguf", load_settings())


def test_gated_model_needs_a_token(hub, monkeypatch, tiny_gguf):
    hub.add("google/gated-GGUF", {"g.gguf": tiny_gguf}, gated=True, token="hf_right")
    with pytest.raises(GatedModelError) as e:
        pull("google/gated-GGUF:g.gguf", progress=False)
    msg = str(e.value)
    assert "gated" in msg and "accept its licence" in msg and "HF_TOKEN" in msg and f"{hub.url}/google/gated-GGUF" in msg
    assert hub.requests[-1]["auth"] is None

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(GatedModelError, match="has no access"):
        pull("google/gated-GGUF:g.gguf", progress=False)
    monkeypatch.setenv("HF_TOKEN", "hf_right")
    r = pull("google/gated-GGUF:g.gguf", progress=False)
    assert r.files[0].sha256 == sha256(tiny_gguf)


def test_unknown_repo_and_file_are_404(hub, tiny_gguf):
    with pytest.raises(ModelNotFoundError, match="repository 'test-org/nothing' was not found"):
        pull("test-org/nothing:x.gguf", progress=False)
    with pytest.raises(ModelNotFoundError, match="was not found"):
        pull("test-org/nothing", progress=False)
    hub.add("test-org/tiny-GGUF", {"tiny.gguf": tiny_gguf})
    with pytest.raises(ModelNotFoundError, match="has no file 'missing.gguf'"):
        pull("test-org/tiny-GGUF:missing.gguf", progress=False)


def test_offline_mode(hub, monkeypatch, tiny_gguf):
    from huggingface_hub import constants

    hub.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF", {"qwen2.5-0.5b-instruct-q4_k_m.gguf": tiny_gguf})
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        pull("qwen2.5-0.5b-instruct", progress=False)
    assert hub.requests == []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    pull("qwen2.5-0.5b-instruct", progress=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    n = len(hub.requests)
    r = pull("qwen2.5-0.5b-instruct", progress=False)  # already cached: fine offline
    assert r.downloaded_bytes == 0 and len(hub.requests) == n


def test_offline_mode_finds_a_cached_transformers_repo(hub, monkeypatch):
    from huggingface_hub import constants

    hub.add("EleutherAI/polyglot-ko-1.3b", {"config.json": b'{"model_type": "gpt_neox"}', "model.safetensors": b"s" * 2048})
    pull("polyglot-ko-1.3b", progress=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    r = pull("polyglot-ko-1.3b", progress=False)
    assert r.downloaded_bytes == 0 and sorted(f.file for f in r.files) == ["config.json", "model.safetensors"]
    assert resolve("polyglot-ko-1.3b", load_settings()).backend == "transformers"


def test_not_enough_disk_stops_before_downloading(hub, monkeypatch, tiny_gguf):
    hub.add("test-org/tiny-GGUF", {"tiny.gguf": tiny_gguf})
    monkeypatch.setattr(hub_mod, "free_bytes", lambda path: 1000)
    with pytest.raises(NotEnoughDiskError, match="not enough disk space.*HF_HUB_CACHE"):
        pull("test-org/tiny-GGUF:tiny.gguf", progress=False)
    assert hub.gets("tiny.gguf") == []


def test_no_network_is_a_clear_error(monkeypatch, tmp_path):
    import socket

    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(NetworkError, match="cannot reach .*check your network"):
        pull("test-org/tiny-GGUF:tiny.gguf", progress=False)


def test_bundled_and_local_models_are_not_pulled_or_removed(tmp_path):
    with pytest.raises(InvalidParameterError, match="bundled"):
        pull("smollm2-135m")
    with pytest.raises(InvalidParameterError, match="ships inside"):
        remove("smollm2-135m")
    with pytest.raises(InvalidParameterError, match="local path"):
        remove(str(tmp_path))
