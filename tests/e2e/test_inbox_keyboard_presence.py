"""Keyboard shortcuts, presence between two agents, the SMS counter, live assignment and the dashboard."""

import pytest
from playwright.sync_api import expect

from inbox.models import Conversation
from organizations.models import Role
from providers import sms
from tests.factories import (
    ChannelFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
    UserFactory,
)

from .conftest import PHONE_NUMBER_ID, login, post_webhook
from .seed import seed_inbox

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_keyboard_moves_opens_resolves_and_searches(server, page, org, agent):
    seed_inbox(org, agent)
    login(page, server, agent.username)
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator(".conv-row.cursor")).to_contain_text("Jonas Weber")
    page.keyboard.press("k")
    expect(page.locator(".conv-row.cursor")).to_contain_text("Ana Souza")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.locator(".conv-name")).to_have_text("Jonas Weber")
    page.keyboard.press("n")
    expect(page.locator("#composer")).to_have_attribute("data-mode", "note")
    expect(page.locator("#composer-text")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    expect(page.locator("#conv-status")).to_have_text("Resolved")
    assert Conversation.objects.get(contact__name="Jonas Weber").status == "resolved"
    expect(page.locator(".conv-row", has_text="Jonas Weber")).to_have_count(0)  # the Open list no longer has it
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.type("VAT")
    expect(page.locator(".conv-row")).to_have_count(1)
    expect(page.locator(".conv-row")).to_contain_text("Tomás García")
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()


def test_two_agents_see_each_other_and_an_assignment_live(server, browser, org, agent, wa_channel):
    colleague = UserFactory(username="bo@acme.test", first_name="Bo", last_name="Berg")
    MembershipFactory(user=colleague, organization=org, role=Role.AGENT)
    conversation = ConversationFactory(organization=org, channel=wa_channel, contact__name="Eva Ortiz")
    MessageFactory(conversation=conversation, text="Hi there")
    ctx_1, ctx_2 = browser.new_context(), browser.new_context()
    p1, p2 = ctx_1.new_page(), ctx_2.new_page()
    login(p1, server, agent.username)
    login(p2, server, colleague.username)
    p1.goto(f"{server}/conversations/{conversation.pk}/")
    p2.goto(f"{server}/conversations/{conversation.pk}/")
    expect(p1.locator("#presence")).to_contain_text("Bo Berg is also viewing", timeout=15_000)
    p2.fill("#composer-text", "Let me check")
    expect(p1.locator("#presence")).to_contain_text("Bo Berg is typing a reply", timeout=15_000)

    p2.select_option("#assign-select", str(colleague.pk))
    expect(p1.locator("#assign-select")).to_have_value(str(colleague.pk), timeout=10_000)
    expect(p1.locator("#thread")).to_contain_text("Assigned to Bo Berg")
    expect(p1.locator(f"#conv-{conversation.pk} .assignee")).to_have_text("BB")
    ctx_1.close()
    ctx_2.close()


def test_sms_counter_matches_the_server_rules(server, page, org, agent):
    channel = ChannelFactory(organization=org, kind="twilio_sms", name="SMS")
    conversation = ConversationFactory(organization=org, channel=channel, contact__name="Sam")
    login(page, server, agent.username)
    page.goto(f"{server}/conversations/{conversation.pk}/")
    samples = ["", "Hello", "a" * 160, "a" * 161, "€" * 80, "€" * 81, "Olá 😀", "ü" * 70, "ł" * 70, "ł" * 71,
               "😀" * 34, "x" * 152 + "€", "[" * 77 + "a"]
    for text in samples:
        js = page.evaluate("(t) => window.AlexiaSMS.count(t)", text)
        assert js == {"encoding": sms.encoding(text), "units": sms.length_in_units(text),
                      "segments": sms.count_segments(text)}, text
    page.fill("#composer-text", "a" * 161)
    expect(page.locator("#sms-counter")).to_have_text("161 characters · 2 segments · GSM-7")


def test_dashboard_updates_live(server, worker, page, org, agent, wa_channel):
    login(page, server, agent.username)
    page.goto(f"{server}/dashboard/")
    expect(page.locator('[data-stat="open"]')).to_have_text("0")
    page.wait_for_selector('#live-dot[data-state="live"]')
    from providers.fakes.whatsapp import FakeWhatsApp

    post_webhook(server, wa_channel, FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15553330000", "Hi", "Lia"))
    expect(page.locator('[data-stat="open"]')).to_have_text("1", timeout=20_000)
    expect(page.locator('[data-stat="unassigned"]')).to_have_text("1")
    expect(page.locator(".card", has_text="Waiting longest")).to_contain_text("Lia")
