"""The web UI in a real browser: every screen renders offline, chat streams, RAG cites.

Debian's Chromium through Playwright against the app served by uvicorn on loopback, on the
bundled smollm2-135m with one thread and short answers. Screenshots: test-artifacts/webui/.
"""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = [("채팅 · Chat", "chat"), ("모델 · Models", "models"), ("프롬프트 실험 · Prompt lab", "prompt-lab"),
        ("문서 (RAG) · Documents", "documents"), ("미세조정 · Fine-tuning", "finetune"), ("사용량 · Usage", "usage")]

DOC = """# 최저임금법 안내

최저임금은 최저임금위원회의 심의를 거쳐 고용노동부장관이 매년 8월 5일까지 결정한다.

최저임금액은 시간·일·주 또는 월을 단위로 정하며, 시간 단위로 정할 때에는 일·주 또는 월 단위로 환산한 금액을 함께 표시한다.
"""

# records every version of the last answer bubble, to see the answer arrive in pieces
WATCH_CHAT = """() => {
  window.__seen = [];
  const box = document.querySelector('#chat-box');
  new MutationObserver(() => {
    const bots = box.querySelectorAll('[data-testid="bot"]');
    const last = bots.length ? bots[bots.length - 1].innerText : '';
    if (last && window.__seen[window.__seen.length - 1] !== last) window.__seen.push(last);
  }).observe(box, {subtree: true, childList: true, characterData: true});
}"""


def _only_loopback(page) -> None:
    hosts = {urlparse(u).hostname for u in page.requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts <= {"127.0.0.1"}, f"the page fetched from elsewhere: {sorted(hosts)}"


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#chat-input textarea", timeout=60_000)


@pytest.mark.timeout(180)
def test_every_screen_renders_in_korean_and_english_offline(page, webui_url, screenshot):
    _open(page, webui_url)
    for label, name in TABS:
        page.get_by_role("tab", name=label).click()
        page.wait_for_timeout(800)
        assert page.get_by_role("tab", name=label, selected=True).is_visible()
        screenshot(f"tab-{name}")
    page.get_by_role("tab", name=TABS[1][0]).click()
    # the table is filled by a page-load event: wait for it rather than for a fixed time
    page.wait_for_function("() => document.querySelector('#models-local').innerText.includes('smollm2-135m')",
                           timeout=60_000)
    assert "smollm2-135m" in page.locator("#models-local").inner_text()  # the bundled model is listed
    _only_loopback(page)


@pytest.mark.timeout(180)
def test_chat_message_streams_an_answer(page, webui_url, screenshot):
    _open(page, webui_url)
    page.get_by_text("Generation parameters").click()
    page.locator("#chat-max_new_tokens input[type=number]").fill("24")
    page.locator("#chat-max_new_tokens input[type=number]").press("Enter")
    page.evaluate(WATCH_CHAT)
    page.locator("#chat-input textarea").fill("What is the capital of France?")
    page.locator("#chat-send").click()
    page.wait_for_function("() => document.querySelector('#chat-box').innerText.includes('tok/s')", timeout=120_000)
    screenshot("chat-answer")
    seen = page.evaluate("window.__seen")
    partial = [s for s in seen if "tok/s" not in s and s.strip("… \n")]
    assert len(partial) >= 2, f"the answer did not stream in pieces: {seen}"
    final = seen[-1]
    assert final.startswith(partial[-1].strip()[:10])
    assert "tokens" in final and "→" in final  # prompt → completion token counts
    assert "saved to session" in page.locator("#chat-stats").inner_text()
    _only_loopback(page)


@pytest.mark.timeout(240)
def test_uploaded_document_gives_an_answer_with_a_clickable_citation(page, webui_url, screenshot, tmp_path):
    doc = tmp_path / "최저임금.md"
    doc.write_text(DOC, encoding="utf-8")
    _open(page, webui_url)
    page.get_by_role("tab", name="문서 (RAG) · Documents").click()
    page.locator("#rag-files input[type=file]").set_input_files(str(doc))
    page.wait_for_selector("#rag-files >> text=최저임금.md")
    page.locator("#rag-ingest").click()
    page.wait_for_function("() => document.querySelector('#rag-ingest-report').innerText.includes('succeeded')",
                           timeout=150_000)
    assert "1 문서" in page.locator("#rag-ingest-report").inner_text()
    page.locator("#rag-question textarea").fill("최저임금은 누가 결정하나요?")
    page.locator("#rag-max-new-tokens input[type=number]").fill("32")
    page.locator("#rag-max-new-tokens input[type=number]").press("Enter")
    page.locator("#rag-ask").click()
    card = page.locator("#rag-citations .cite-card").first
    card.wait_for(timeout=120_000)
    assert "최저임금.md" in card.inner_text()
    assert "고용노동부장관" in card.inner_text()  # the cited chunk's own text
    assert page.locator("#rag-answer").inner_text().strip()
    card.locator("a.cite-head").click()
    assert page.evaluate("() => document.querySelector(':target')?.id") == "cite-1"
    screenshot("documents-cited-answer")
    _only_loopback(page)
