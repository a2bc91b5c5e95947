"""Inbound attachments are downloaded from the platform into our storage, with retries."""

import json
import time

import pytest

from inbox.models import Attachment
from inbox.services.attachments import attachment_download
from inbox.services.webhooks import webhook_event_process
from providers.errors import TransientFailure
from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import WebhookEvent
from providers.whatsapp_cloud import sign

from ..factories import ChannelFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def fake():
    with FakeWhatsApp() as fake:
        yield fake


@pytest.fixture
def channel(org, fake, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    channel.config = {**channel.config, "api_base_url": fake.base_url + "/v21.0"}
    channel.save()
    return channel


def _image_payload(media_id: str) -> dict:
    payload = FakeWhatsApp.inbound_text_payload("106540352242922", "15557770000", "", "Ivy")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update({"type": "image", "image": {"id": media_id, "mime_type": "image/png", "sha256": "x", "caption": "my receipt"}})
    return payload


def _receive(client, channel, payload) -> Attachment:
    body = json.dumps(payload).encode()
    response = client.post(
        f"/webhooks/whatsapp_cloud/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, "test-app-secret"),
    )
    assert response.status_code == 200
    assert webhook_event_process(event_id=WebhookEvent.objects.get(channel=channel).pk) == "processed"
    return Attachment.objects.get(message__channel=channel)


def test_inbound_image_is_downloaded_into_storage(client, channel, fake):
    fake.add_media("1234567890", PNG, "image/png")
    attachment = _receive(client, channel, _image_payload("1234567890"))
    assert attachment.status == "pending"
    assert attachment.message.text == "my receipt"

    assert attachment_download(attachment_id=attachment.pk) == "stored"
    attachment.refresh_from_db()
    assert attachment.status == "stored"
    assert attachment.size == len(PNG)
    assert attachment.content_type == "image/png"
    with attachment.file.open("rb") as fh:
        assert fh.read() == PNG
    # Both calls carried the channel's token (the fake refuses others).
    assert len(fake.received("/1234567890")) == 1
    # Running again (a redelivered task) downloads nothing more.
    assert attachment_download(attachment_id=attachment.pk) == "skipped"


def test_platform_5xx_is_transient_and_a_later_try_succeeds(client, channel, fake):
    fake.add_media("555", PNG, "image/png")
    attachment = _receive(client, channel, _image_payload("555"))
    fake.fail_next(1, FakeWhatsApp.error(2, "Service temporarily unavailable", status=503))
    with pytest.raises(TransientFailure):
        attachment_download(attachment_id=attachment.pk)
    attachment.refresh_from_db()
    assert attachment.status == "pending"
    time.sleep(0.01)
    assert attachment_download(attachment_id=attachment.pk) == "stored"


def test_unknown_media_fails_permanently_with_the_reason(client, channel, fake):
    attachment = _receive(client, channel, _image_payload("does-not-exist"))
    assert attachment_download(attachment_id=attachment.pk) == "failed"
    attachment.refresh_from_db()
    assert attachment.status == "failed"
    assert attachment.error


def test_signed_link_serves_the_file_without_login_and_refuses_tampering(client, channel, fake):
    from inbox.attachment_links import attachment_signed_url

    fake.add_media("777", PNG, "image/png")
    attachment = _receive(client, channel, _image_payload("777"))
    attachment_download(attachment_id=attachment.pk)
    attachment.refresh_from_db()
    url = attachment_signed_url(attachment).removeprefix("http://testserver")
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert client.get(url[:-3] + "xyz/").status_code == 404
