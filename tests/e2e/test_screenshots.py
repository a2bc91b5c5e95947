"""Screenshots of the inbox, a conversation and the dashboard (docs/screenshots/, see docs/inbox.md).

Written to $ALEXIA_SCREENSHOTS_DIR when set (`make screenshots`-style runs point it at docs/screenshots),
else to a temporary folder; the assertions run either way.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import login
from .seed import seed_inbox

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("ALEXIA_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_screenshots_of_inbox_conversation_and_dashboard(server, browser, org, agent, shots):
    showcase = seed_inbox(org, agent)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
    page = context.new_page()
    login(page, server, agent.username)
    expect(page.locator(".conv-row")).to_have_count(7)
    page.screenshot(path=str(shots / "inbox.png"))

    page.locator(".conv-row", has_text="Ana Souza").locator("a.row-link").click()
    expect(page.locator("#thread img")).to_be_visible()
    expect(page.locator("#contact-panel")).to_contain_text("+5511987654321")
    expect(page.locator(".msg-note")).to_contain_text("Private note")
    expect(page.locator(".msg-error")).to_contain_text("131026")
    page.evaluate("document.querySelector('#thread').scrollTop = 1e6")
    page.fill("#composer-text", "/")
    expect(page.locator("#canned-menu")).to_be_visible()
    page.screenshot(path=str(shots / "conversation.png"))
    page.fill("#composer-text", "")

    page.goto(f"{server}/dashboard/")
    expect(page.locator('[data-stat="open"]')).to_have_text("7")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    login(mobile, server, agent.username)
    mobile.goto(f"{server}/conversations/{showcase.pk}/")
    expect(mobile.locator("#thread img")).to_be_visible()
    mobile.evaluate("document.querySelector('#thread').scrollTop = 1e6")
    mobile.screenshot(path=str(shots / "conversation-phone.png"))
    phone.close()
    context.close()
