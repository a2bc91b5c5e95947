"""The inbox live, end to end: webhook -> worker -> websocket -> browser; composer -> worker -> platform;
status webhooks -> ticks; another organization sees nothing; a failed send shows why and retries."""

import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox.models import Conversation, Message
from providers.fakes.whatsapp import FakeWhatsApp
from tests.factories import ChannelFactory, ContactIdentityFactory, ConversationFactory, MessageFactory
from tests.pipeline.conftest import wait_until

from .conftest import PHONE_NUMBER_ID, login, post_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sends(fake):
    return [r for r in fake.received("/messages", method="POST") if r.json.get("type")]


def test_inbound_reply_ticks_live_and_invisible_to_another_organization(
    server, worker, browser, wa_channel, fake_whatsapp, agent, other_owner, other_org
):
    # Another organization with its own WhatsApp conversation, which org A must never see either.
    other_channel = ChannelFactory(organization=other_org, kind="whatsapp_cloud", name="Globex WhatsApp",
                                   config={"phone_number_id": "999", "business_account_id": "998"})
    ConversationFactory(organization=other_org, channel=other_channel, contact__name="Globex Customer",
                        last_message_preview="Globex secret")

    ctx_a, ctx_b = browser.new_context(), browser.new_context()
    page_a, page_b = ctx_a.new_page(), ctx_b.new_page()
    login(page_a, server, agent.username)
    login(page_b, server, other_owner.username)
    expect(page_b.locator("#conversation-list")).to_contain_text("Globex Customer")
    expect(page_a.locator("#conversation-list")).not_to_contain_text("Globex Customer")

    post_webhook(server, wa_channel, FakeWhatsApp.inbound_text_payload(
        PHONE_NUMBER_ID, "15551234567", "Hello, is my order on its way?", "Ana Souza"))
    row = page_a.locator(".conv-row", has_text="Ana Souza")
    expect(row).to_be_visible(timeout=20_000)
    expect(row).to_contain_text("Hello, is my order on its way?")
    expect(row.locator(".unread-badge")).to_have_text("1")

    row.locator("a.row-link").click()
    thread = page_a.locator("#thread")
    expect(thread).to_contain_text("Hello, is my order on its way?")
    assert re.search(r"/conversations/\d+/", page_a.url)
    expect(page_a.locator("#contact-panel")).to_contain_text("+15551234567")
    expect(row.locator(".unread-badge")).to_have_count(0)  # opening it marked it read, live

    # A second customer message appears in the open thread without a reload.
    post_webhook(server, wa_channel, FakeWhatsApp.inbound_text_payload(
        PHONE_NUMBER_ID, "15551234567", "Order number is 4417", "Ana Souza"))
    expect(thread).to_contain_text("Order number is 4417", timeout=20_000)

    # Reply with the composer (Ctrl+Enter); it reaches the fake platform.
    page_a.fill("#composer-text", "It left our warehouse this morning.")
    page_a.press("#composer-text", "Control+Enter")
    reply = page_a.locator("article.msg-out", has_text="It left our warehouse this morning.")
    expect(reply).to_be_visible()
    expect(page_a.locator("#composer-text")).to_have_value("")
    sends = wait_until(lambda: _sends(fake_whatsapp), what="the reply to reach the platform")
    assert sends[0].json["text"]["body"] == "It left our warehouse this morning."
    assert sends[0].json["to"] == "15551234567"
    expect(reply).to_have_attribute("data-status", "sent", timeout=20_000)

    message = Message.objects.get(text="It left our warehouse this morning.")
    wamid = message.platform_message_id
    now = int(time.time())
    post_webhook(server, wa_channel, FakeWhatsApp.status_payload(PHONE_NUMBER_ID, wamid, "delivered", "15551234567", now))
    expect(reply).to_have_attribute("data-status", "delivered", timeout=20_000)
    expect(reply.locator(".ticks")).to_have_attribute("title", "Delivered")
    post_webhook(server, wa_channel, FakeWhatsApp.status_payload(PHONE_NUMBER_ID, wamid, "read", "15551234567", now + 5))
    expect(reply).to_have_attribute("data-status", "read", timeout=20_000)

    # Org B saw none of it, live or on reload, and cannot open it.
    expect(page_b.locator("#conversation-list")).not_to_contain_text("Ana Souza")
    page_b.reload()
    expect(page_b.locator("#conversation-list")).to_contain_text("Globex Customer")
    expect(page_b.locator("body")).not_to_contain_text("Ana Souza")
    conversation = Conversation.objects.get(organization=wa_channel.organization)
    assert page_b.goto(f"{server}/conversations/{conversation.pk}/").status == 404
    assert page_b.goto(f"{server}/fragments/messages/{message.pk}/").status == 404
    ctx_a.close()
    ctx_b.close()


def test_failed_send_shows_the_platform_reason_and_retry_delivers(server, worker, page, wa_channel, fake_whatsapp, agent):
    identity = ContactIdentityFactory(contact__organization=wa_channel.organization, contact__name="Bruno Lima",
                                      value="+15557654321")
    conversation = ConversationFactory(organization=wa_channel.organization, channel=wa_channel,
                                       contact=identity.contact, last_inbound_at=timezone.now())
    MessageFactory(conversation=conversation, text="Can you call me?")
    fake_whatsapp.fail_next(
        1,
        FakeWhatsApp.error(131026, "Message Undeliverable.", details="Receiver is incapable of receiving this message"),
        path_contains="/messages",
    )
    login(page, server, agent.username)
    page.goto(f"{server}/conversations/{conversation.pk}/")
    page.fill("#composer-text", "Sure, what number?")
    page.click("#send-btn")
    failed = page.locator("article.msg-out", has_text="Sure, what number?")
    expect(failed).to_have_attribute("data-status", "failed", timeout=20_000)
    expect(failed.locator(".msg-error")).to_contain_text("131026")
    expect(failed.locator(".msg-error")).to_contain_text("Receiver is incapable of receiving this message")

    failed.get_by_role("button", name="Retry").click()
    expect(failed).to_have_attribute("data-status", "sent", timeout=20_000)
    expect(failed.locator(".msg-error")).to_have_count(0)
    assert len(_sends(fake_whatsapp)) == 2


def test_reconnects_after_a_network_drop_and_catches_up(server, worker, browser, wa_channel, agent):
    context = browser.new_context()
    page = context.new_page()
    login(page, server, agent.username)
    post_webhook(server, wa_channel, FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15550001111", "First", "Cara"))
    row = page.locator(".conv-row", has_text="Cara")
    expect(row).to_be_visible(timeout=20_000)
    row.locator("a.row-link").click()
    expect(page.locator("#thread")).to_contain_text("First")

    context.set_offline(True)
    page.evaluate("window.AlexiaLive.ws.close()")
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "offline")
    post_webhook(server, wa_channel, FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15550001111", "Sent while you were offline", "Cara"))
    post_webhook(server, wa_channel, FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15550002222", "A new customer", "Dario"))
    wait_until(lambda: Message.objects.filter(text="A new customer").exists(), what="processing while offline")
    time.sleep(0.5)
    expect(page.locator("#thread")).not_to_contain_text("Sent while you were offline")

    context.set_offline(False)
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "live", timeout=40_000)
    expect(page.locator("#thread")).to_contain_text("Sent while you were offline", timeout=10_000)
    expect(page.locator(".conv-row", has_text="Dario")).to_be_visible(timeout=10_000)
    context.close()
