"""The messaging pipeline end to end with a real Celery worker, PostgreSQL, Redis and a fake platform."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Contact, Conversation, Message
from inbox.services.messages import message_create_outbound, message_sweep
from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import WebhookEvent
from providers.whatsapp_cloud import sign

from ..factories import ContactIdentityFactory, ConversationFactory
from .conftest import wait_until

APP_SECRET = "test-app-secret"  # tests/factories.py DEFAULT_CONFIG
PHONE_NUMBER_ID = "106540352242922"


def _post(client, channel, payload: dict):
    body = json.dumps(payload).encode()
    return client.post(
        f"/webhooks/whatsapp_cloud/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, APP_SECRET),
    )


def _conversation(channel, digits="15551230001"):
    identity = ContactIdentityFactory(contact__organization=channel.organization, value=f"+{digits}")
    return ConversationFactory(
        organization=channel.organization,
        channel=channel,
        contact=identity.contact,
        last_inbound_at=timezone.now(),
    )


def _sends(fake):
    return [r for r in fake.received("/messages", method="POST") if r.json.get("type")]


def test_same_webhook_posted_five_times_gives_one_message(worker, client, wa_channel):
    payload = FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15551234567", "Hello there", "Ana")
    for _ in range(5):
        assert _post(client, wa_channel, payload).status_code == 200
    event = wait_until(
        lambda: WebhookEvent.objects.filter(channel=wa_channel, status="processed").first(), what="processing"
    )
    time.sleep(1)  # give any wrongly queued duplicate a chance to show up
    assert WebhookEvent.objects.filter(channel=wa_channel).count() == 1
    assert Message.objects.filter(channel=wa_channel).count() == 1
    message = Message.objects.get(channel=wa_channel)
    assert message.text == "Hello there"
    assert message.direction == "in"
    assert message.conversation.contact.name == "Ana"
    assert message.conversation.unread_count == 1
    assert Contact.objects.filter(organization=wa_channel.organization).count() == 1
    assert event.processing_ms is not None


def test_bad_signature_stores_nothing(worker, client, wa_channel):
    body = json.dumps(FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15551234567", "x", "Ana")).encode()
    response = client.post(
        f"/webhooks/whatsapp_cloud/{wa_channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, "wrong-secret"),
    )
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_reply_reaches_platform_once_and_statuses_in_reverse_order_end_at_read(
    worker, client, wa_channel, fake_whatsapp
):
    conversation = _conversation(wa_channel)
    message, _ = message_create_outbound(conversation=conversation, text="Your order shipped")
    message = wait_until(
        lambda: Message.objects.filter(pk=message.pk, status="sent").first(), what="the send to complete"
    )
    sends = _sends(fake_whatsapp)
    assert len(sends) == 1
    assert sends[0].json["text"]["body"] == "Your order shipped"
    assert sends[0].json["to"] == "15551230001"
    wamid = message.platform_message_id
    assert wamid.startswith("wamid.")
    assert message.attempts == 1

    now = int(time.time())
    read, delivered, sent = (
        FakeWhatsApp.status_payload(PHONE_NUMBER_ID, wamid, status, "15551230001", ts)
        for status, ts in (("read", now + 20), ("delivered", now + 10), ("sent", now + 1))
    )
    # Reverse order, and the delivered callback redelivered by the platform.
    for payload in (read, delivered, sent, delivered):
        assert _post(client, wa_channel, payload).status_code == 200
    wait_until(
        lambda: WebhookEvent.objects.filter(channel=wa_channel, status="processed").count() == 3,
        what="three distinct status events processed",
    )
    message.refresh_from_db()
    assert message.status == "read"
    assert message.read_at is not None and message.delivered_at is not None
    assert message.delivered_at < message.read_at


def test_429_then_200_delivers_exactly_once_after_the_advised_wait(worker, wa_channel, fake_whatsapp):
    fake_whatsapp.fail_next(
        1,
        FakeWhatsApp.error(130429, "(#130429) Rate limit hit", status=429, headers={"Retry-After": "2"}),
        path_contains="/messages",
    )
    conversation = _conversation(wa_channel)
    message, _ = message_create_outbound(conversation=conversation, text="Hi again")
    wait_until(lambda: Message.objects.filter(pk=message.pk, status="sent").exists(), what="sent after 429")
    sends = _sends(fake_whatsapp)
    assert len(sends) == 2  # the refused one and the accepted one: never a third
    assert sends[1].at - sends[0].at >= 2.0
    message.refresh_from_db()
    assert message.error_code == "" and message.status == "sent"


def test_permanent_error_marks_failed_with_the_platform_reason(worker, wa_channel, fake_whatsapp):
    fake_whatsapp.fail_next(
        1,
        FakeWhatsApp.error(
            131047,
            "(#131047) Re-engagement message",
            details="Message failed to send because more than 24 hours have passed since the customer last replied.",
        ),
        path_contains="/messages",
    )
    conversation = _conversation(wa_channel)
    message, _ = message_create_outbound(conversation=conversation, text="Hello?")
    message = wait_until(
        lambda: Message.objects.filter(pk=message.pk, status="failed").first(), what="failure"
    )
    assert message.error_code == "131047"
    assert "24 hours" in message.error_reason
    assert len(_sends(fake_whatsapp)) == 1


def test_transient_5xx_is_retried_with_backoff(worker, wa_channel, fake_whatsapp):
    fake_whatsapp.fail_next(
        1, FakeWhatsApp.error(1, "An unknown error occurred", status=500), path_contains="/messages"
    )
    conversation = _conversation(wa_channel)
    message, _ = message_create_outbound(conversation=conversation, text="Retry me")
    message = wait_until(
        lambda: Message.objects.filter(pk=message.pk, status="sent").first(), timeout=30, what="retry"
    )
    assert message.attempts == 2
    assert len(_sends(fake_whatsapp)) == 2


def test_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    worker, client, wa_channel, fake_whatsapp
):
    fake_whatsapp.delay_next(1, 6.0, path_contains="/messages")
    conversation = _conversation(wa_channel)
    message, _ = message_create_outbound(conversation=conversation, text="Important")
    wait_until(lambda: len(_sends(fake_whatsapp)) == 1, what="the platform to receive the send")
    worker.kill()
    message.refresh_from_db()
    assert message.status == "sending"

    # A new worker does not send it again by itself...
    worker.start()
    time.sleep(8)
    assert len(_sends(fake_whatsapp)) == 1
    # ...and the sweeper resolves it without sending: WhatsApp has no lookup, so it is marked
    # unconfirmed, and the platform's status (carrying our reference) confirms it later.
    counts = message_sweep(stuck_after=timedelta(seconds=0))
    assert counts["unconfirmed"] == 1
    message.refresh_from_db()
    assert message.status == "failed" and message.error_code == "send_unconfirmed"

    sent_body = _sends(fake_whatsapp)[0].json
    reference = sent_body["biz_opaque_callback_data"]
    assert reference == f"alexia:{message.pk}"
    status = FakeWhatsApp.status_payload(
        PHONE_NUMBER_ID, "wamid.LATE", "delivered", "15551230001", biz_opaque_callback_data=reference
    )
    assert _post(client, wa_channel, status).status_code == 200
    message = wait_until(
        lambda: Message.objects.filter(pk=message.pk, status="delivered").first(), what="late confirmation"
    )
    assert message.platform_message_id == "wamid.LATE"
    assert message.error_code == ""
    assert len(_sends(fake_whatsapp)) == 1


def test_message_queued_while_no_worker_runs_is_sent_once_when_one_starts(
    worker_env, tmp_path, wa_channel, fake_whatsapp
):
    from .conftest import WorkerProcess

    conversation = _conversation(wa_channel)
    message, _ = message_create_outbound(conversation=conversation, text="Queued")
    time.sleep(0.5)
    assert Message.objects.get(pk=message.pk).status == "pending"
    proc = WorkerProcess(worker_env, tmp_path / "late-worker.log").start()
    try:
        wait_until(lambda: Message.objects.filter(pk=message.pk, status="sent").exists(), what="late send")
    finally:
        proc.stop()
    assert len(_sends(fake_whatsapp)) == 1


def test_resolved_conversation_reopens_on_new_inbound(worker, client, wa_channel):
    first = FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15559990000", "first", "Bo")
    _post(client, wa_channel, first)
    conversation = wait_until(
        lambda: Conversation.objects.filter(channel=wa_channel).first(), what="conversation"
    )
    Conversation.objects.filter(pk=conversation.pk).update(status="resolved")
    second = FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15559990000", "second", "Bo")
    _post(client, wa_channel, second)
    wait_until(
        lambda: Message.objects.filter(channel=wa_channel, text="second").exists(), what="second message"
    )
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert Conversation.objects.filter(channel=wa_channel).count() == 1
    assert conversation.messages.filter(type="system", text__icontains="reopened").exists()


@pytest.mark.parametrize("paused", [True])
def test_event_for_paused_channel_is_stored_and_ignored(worker, client, wa_channel, paused):
    wa_channel.status = "paused"
    wa_channel.save()
    _post(client, wa_channel, FakeWhatsApp.inbound_text_payload(PHONE_NUMBER_ID, "15550001111", "hi", "Cy"))
    event = wait_until(
        lambda: WebhookEvent.objects.filter(channel=wa_channel, status="ignored").first(), what="ignored"
    )
    assert event.error == "channel paused"
    assert Message.objects.count() == 0
