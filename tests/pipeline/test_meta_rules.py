"""Messenger/Instagram rules in the pipeline: read watermarks and the HUMAN_AGENT 7-day window."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.errors import InboxError
from inbox.models import ContactIdentity, Message
from inbox.services.messages import message_create_outbound
from inbox.services.webhooks import webhook_event_process
from providers.fakes.meta import FakeMeta, sign
from providers.models import WebhookEvent

from ..factories import ChannelFactory, ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db
PAGE_ID = "1234567890"  # tests/factories.py DEFAULT_CONFIG


@pytest.fixture
def conversation(org):
    channel = ChannelFactory(organization=org, kind="messenger")
    contact = ContactFactory(organization=org)
    ContactIdentity.objects.create(
        organization=org, contact=contact, kind="messenger", value="PSID-1", channel=channel
    )
    return ConversationFactory(organization=org, channel=channel, contact=contact)


def _post(client, channel, payload):
    body = json.dumps(payload).encode()
    response = client.post(
        f"/webhooks/messenger/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, "s"),
    )
    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.filter(channel=channel).order_by("-id").first()
    assert webhook_event_process(event_id=event.pk) == "processed"


def test_read_watermark_marks_every_earlier_outbound_message_read(client, conversation):
    now = timezone.now()
    older = [
        MessageFactory(
            conversation=conversation,
            direction="out",
            status=s,
            platform_message_id=f"m_{i}",
            created_at=now - timedelta(minutes=10 - i),
        )
        for i, s in enumerate(["sent", "delivered", "sent"])
    ]
    later = MessageFactory(
        conversation=conversation,
        direction="out",
        status="sent",
        platform_message_id="m_late",
        created_at=now + timedelta(minutes=5),
    )
    _post(
        client,
        conversation.channel,
        FakeMeta.read_payload(PAGE_ID, "PSID-1", watermark=int(now.timestamp() * 1000)),
    )
    for message in older:
        message.refresh_from_db()
        assert message.status == "read"
    later.refresh_from_db()
    assert later.status == "sent"
    # Redelivered: nothing moves again, nothing moves backwards.
    _post(
        client,
        conversation.channel,
        FakeMeta.delivery_payload(PAGE_ID, "PSID-1", watermark=int(now.timestamp() * 1000)),
    )
    assert {m.status for m in Message.objects.filter(pk__in=[m.pk for m in older])} == {"read"}


def test_human_agent_tag_extends_the_window_to_seven_days(conversation):
    conversation.last_inbound_at = timezone.now() - timedelta(days=3)
    conversation.save()
    message, _ = message_create_outbound(conversation=conversation, text="Sorry for the wait")
    assert message.content["human_agent"] is True

    conversation.last_inbound_at = timezone.now() - timedelta(days=8)
    conversation.save()
    with pytest.raises(InboxError) as refused:
        message_create_outbound(conversation=conversation, text="Anyone there?")
    assert refused.value.code == "window_closed"


def test_within_24_hours_no_tag_is_used(conversation):
    message, _ = message_create_outbound(conversation=conversation, text="Hi")
    assert "human_agent" not in message.content
