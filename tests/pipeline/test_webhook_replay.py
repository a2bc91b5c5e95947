import json

import pytest
from django.core.management import CommandError, call_command

from inbox.models import Message
from inbox.services.webhooks import webhook_event_process
from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import WebhookEvent
from providers.whatsapp_cloud import sign

from ..factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_a_failed_event_keeps_its_error_and_replays_once_fixed(client, org):
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    payload = FakeWhatsApp.inbound_text_payload("106540352242922", "15550002222", "hello", "Zoe")
    body = json.dumps(payload).encode()
    url = f"/webhooks/whatsapp_cloud/{channel.webhook_token}/"
    assert (
        client.post(
            url,
            data=body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=sign(body, "test-app-secret"),
        ).status_code
        == 200
    )
    event = WebhookEvent.objects.get()
    # Break the stored body the way a bug in a parser would see it: processing fails and says why.
    WebhookEvent.objects.filter(pk=event.pk).update(
        body=b'{"object": "whatsapp_business_account", "entry": 5}'
    )
    assert webhook_event_process(event_id=event.pk) == "failed"
    event.refresh_from_db()
    assert "malformed" in event.error
    assert Message.objects.count() == 0

    WebhookEvent.objects.filter(pk=event.pk).update(body=body)
    call_command("webhook_replay", "--failed", "--now")
    event.refresh_from_db()
    assert event.status == "processed" and event.error == ""
    assert Message.objects.get().text == "hello"
    # Replaying a processed event again stores nothing twice.
    call_command("webhook_replay", str(event.pk), "--now")
    assert Message.objects.count() == 1


def test_replay_needs_ids_or_failed(db):
    with pytest.raises(CommandError):
        call_command("webhook_replay")
    with pytest.raises(CommandError):
        call_command("webhook_replay", "999999")
