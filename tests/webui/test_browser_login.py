"""Logging in through the page: on a server with keys the browser is sent to the login page, a key
signs it in with an HttpOnly, SameSite=Strict cookie that Gradio's own calls carry, the key's role
shows, and logging out ends it."""
from __future__ import annotations

import pytest

from .conftest import USER_KEY

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.timeout(240)
def test_log_in_use_the_ui_as_a_user_and_log_out(page, keyed_url, screenshot):
    page.goto(keyed_url)
    page.wait_for_selector("#login")
    assert page.url.startswith(f"{keyed_url}/login")
    page.fill("#key", "sk-not-a-key-at-all")
    page.click("#login")
    page.wait_for_selector(".msg")
    assert "not valid" in page.inner_text(".msg")
    screenshot("login-wrong-key")

    page.fill("#key", USER_KEY)
    page.click("#login")
    page.wait_for_selector("#chat-input textarea", timeout=60_000)  # the UI, its config and API calls all passed
    cookie, = [c for c in page.context.cookies() if c["name"] == "llmlab_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "llmlab_session" not in page.evaluate("document.cookie")  # scripts cannot read it
    page.wait_for_selector("#signed-in", state="visible")
    assert "user" in page.inner_text("#signed-in")
    screenshot("login-signed-in")

    # a user key may not load models: the screen says so
    page.get_by_role("tab", name="모델 · Models").click()
    page.get_by_role("button", name="불러오기 · Load").click()
    page.wait_for_selector("text=needs an admin key", timeout=30_000)
    screenshot("login-user-cannot-load")

    page.get_by_role("tab", name="채팅 · Chat").click()
    page.get_by_role("link", name="로그아웃 · Log out").click()
    page.wait_for_selector("#logout")
    page.click("#logout")
    page.wait_for_selector("#login")
    assert not [c for c in page.context.cookies() if c["name"] == "llmlab_session"]
    page.goto(keyed_url + "/")
    page.wait_for_selector("#login")  # signed out: back to the login page
