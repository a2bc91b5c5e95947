"""verify() refuses what it cannot check: no secret configured, a mailbox channel, a wrong password."""

import base64

import pytest

from providers.models import WebhookEvent
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db
BODY = b'{"RecordType": "Delivery", "MessageID": "883953f4", "Recipient": "a@b.example", "DeliveredAt": "2014-08-01T13:28:10Z"}'


def channel(esp: str, **credentials):
    config = {"esp": esp, "from_email": "support@acme.example", "domain": "acme.example"}
    return ChannelFactory(kind="email", config=config, credentials=credentials)


def post(client, ch, auth: str | None = None):
    extra = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    path = ch.tracking_webhook_url.removeprefix("http://testserver")
    return client.generic("POST", path, BODY, content_type="application/json", **extra)


def test_postmark_without_webhook_secret_is_refused(client):
    assert post(client, channel("postmark", api_key="k"), "any:thing").status_code == 403


def test_postmark_basic_auth(client):
    ch = channel("postmark", api_key="k", webhook_secret="hook:pw")
    assert post(client, ch, "hook:wrong").status_code == 403
    assert post(client, ch).status_code == 403
    assert post(client, ch, "hook:pw").status_code == 200
    assert WebhookEvent.objects.get(channel=ch).endpoint == "tracking"


def test_mailgun_without_signing_key_and_mailbox_channels_are_refused(client):
    assert post(client, channel("mailgun", api_key="k")).status_code == 403
    assert post(client, channel("imap", username="u", password="p")).status_code == 403
