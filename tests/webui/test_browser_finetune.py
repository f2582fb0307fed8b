"""The Fine-tuning screen in a real browser: start, a live loss chart, stop, the output folder.

The app runs serve_app's scripted trainer (a loss point every 50 ms, stops on request), so
this checks the page's wiring — timer, chart, stop button, export — in seconds; real
training is tested in tests/finetune and tests/server.
"""
from __future__ import annotations

import pytest

from .test_browser import _only_loopback

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the number of points the loss chart draws (Vega's marks), or -1 while it shows no chart
CHART_POINTS = """() => {
  const root = document.querySelector('#ft-loss');
  const view = root && root.querySelector('.vega-embed');
  if (!view) return -1;
  const path = root.querySelector('path[aria-roledescription="line mark"], g.mark-line path');
  return path ? (path.getAttribute('d') || '').split(/[ML]/).filter(s => s.trim()).length : 0;
}"""


@pytest.mark.timeout(180)
def test_training_shows_a_live_loss_chart_and_stops(page, scripted_training_url, screenshot, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "안녕?", "output": "안녕하세요!"}\n', encoding="utf-8")
    page.goto(scripted_training_url)
    page.wait_for_selector("#chat-input textarea", timeout=60_000)
    page.get_by_role("tab", name="미세조정 · Fine-tuning").click()
    page.locator("#ft-path textarea, #ft-path input").first.fill(str(data))
    page.locator("#ft-start").click()
    page.wait_for_function("() => document.querySelector('#ft-status').innerText.includes('running')",
                           timeout=30_000)
    # the chart grows while the job runs: two looks a few timer ticks apart
    page.wait_for_function(f"() => ({CHART_POINTS})() >= 5", timeout=30_000)
    first = page.evaluate(CHART_POINTS)
    page.wait_for_function(f"() => ({CHART_POINTS})() > {first}", timeout=30_000)
    assert "scripted trainer" in page.locator("#ft-log textarea").input_value()
    screenshot("finetune-live-loss")
    page.locator("#ft-stop").click()
    page.wait_for_function("() => document.querySelector('#ft-status').innerText.includes('stopped')",
                           timeout=30_000)
    status = page.locator("#ft-status").inner_text()
    assert "/runs/web-" in status
    drawn = page.evaluate(CHART_POINTS)
    assert 5 <= drawn < 300  # stopped well before the end
    page.wait_for_timeout(2500)  # the timer is off now: the chart no longer changes
    assert page.evaluate(CHART_POINTS) == drawn
    # the output folder is offered for comparing and exporting; the scripted run wrote no adapter,
    # so export answers with the export function's own message
    page.get_by_text("전후 비교 · 내보내기 · Before / after · Export").click()
    assert "/runs/web-" in page.locator("#ft-tuned textarea, #ft-tuned input").first.input_value()
    page.locator("#ft-export").click()
    page.get_by_text("neither a LoRA adapter folder nor a model folder").first.wait_for(timeout=30_000)
    screenshot("finetune-stopped")
    _only_loopback(page)
