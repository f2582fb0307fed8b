"""The API docs (/docs) render in Chromium with every request outside this server blocked."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_swagger_ui_renders_offline(webui_url, page):
    host = urlparse(webui_url).netloc
    blocked: list[str] = []

    def gate(route):
        if urlparse(route.request.url).netloc == host or route.request.url.startswith("data:"):
            route.continue_()
        else:  # the network is off: anything else would be a CDN
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", gate)
    page.goto(webui_url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
    assert "llmlab" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock-summary-path", has_text="/v1/chat/completions").count() >= 1
    assert blocked == [], f"/docs asked the internet for {blocked}"
