"""Every accepted Messenger / Instagram sample, posted through the real webhook URL with Meta's real
signature scheme, stored once and processed by the real pipeline (webhook_event_process, in-process).

Signed with the DERIVED vector's secret `fb_app_secret` over the byte-exact files, read in place from
../shared/platform-samples/messenger_instagram (never copied into the project).
"""

import json
from pathlib import Path

import pytest

from inbox.models import Message
from inbox.services.webhooks import webhook_event_process
from providers.fakes.meta import sign
from providers.models import WebhookEvent

from ..factories import (
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    MessageFactory,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples" / "messenger_instagram"
if not SAMPLES.is_dir():
    pytest.skip(f"platform samples not found at {SAMPLES} (../shared is absent)", allow_module_level=True)

pytestmark = [pytest.mark.conformance, pytest.mark.django_db]

VECTOR = json.loads((SAMPLES / "signature_vector_and_verification.json").read_text())
SECRET = VECTOR["secret"]  # fb_app_secret
ACCOUNT_ID = "1234567890"
BODIES = sorted(p.name for p in SAMPLES.glob("*.json") if p.name.startswith(("messenger_", "instagram_")))
# Samples whose customer writes something new: exactly one inbound message in the inbox afterwards.
NEW_MESSAGES = {
    "messenger_message_text.json": "Hello World",
    "messenger_duplicate_mid.json": "Hello World",
    "messenger_message_attachment.json": "",
    "messenger_message_location_attachment.json": "",
    "messenger_postback_with_referral.json": "postback title",
    "messenger_postback_get_started.json": "postback title",
    "messenger_referral.json": "Referral from referral source (ref referral id)",
    "messenger_thumbs_up_sticker.json": "\U0001f44d",
    "messenger_optin_notification_messages.json": "Opted in to notification messages: Bird Facts (DAILY)",
    "messenger_message_reel_attachment.json": "",
    "instagram_message_text.json": "Hello World",
    "instagram_duplicate_mid.json": "Hello World",
    "instagram_message_attachment.json": "",
    "instagram_story_mention.json": "",
    "instagram_like_heart.json": "\u2764\ufe0f",
    "instagram_icebreaker_postback.json": "icebreaker question",
}


def kind_of(name: str) -> str:
    return "instagram" if name.startswith("instagram_") else "messenger"


def make_channel(org, kind: str):
    key = "page_id" if kind == "messenger" else "instagram_account_id"
    channel = ChannelFactory(
        organization=org,
        kind=kind,
        config={key: ACCOUNT_ID},
        credentials={"page_access_token": "EAAP", "app_secret": SECRET, "verify_token": "fb_webhook_secret"},
    )
    channel.lookup_key = ACCOUNT_ID
    channel.save()
    return channel


def customer_conversation(channel, kind: str):
    contact = ContactFactory(organization=channel.organization)
    ContactIdentityFactory(contact=contact, kind=kind, value="5678")
    return ConversationFactory(organization=channel.organization, channel=channel, contact=contact)


@pytest.mark.parametrize("name", BODIES)
def test_sample_through_webhook_url(client, org, name):
    kind = kind_of(name)
    body = (SAMPLES / name).read_bytes()
    channel = make_channel(org, kind)
    sent = received = None
    if name == "messenger_delivery_receipt.json":
        sent = MessageFactory(
            conversation=customer_conversation(channel, kind),
            direction="out",
            status="sent",
            platform_message_id="mid.1458668856218:ed81099e15d3f4f233",
        )
    if name == "instagram_message_deleted_unsent.json":
        received = MessageFactory(
            conversation=customer_conversation(channel, kind),
            text="sent by mistake",
            platform_message_id="external_id",
        )

    url = f"/webhooks/{kind}/{channel.webhook_token}/"
    for _ in range(2):  # Meta redelivers until it gets a 200: stored once
        response = client.post(
            url, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(body, SECRET)
        )
        assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get(channel=channel)
    assert bytes(event.body) == body

    assert webhook_event_process(event_id=event.pk) == "processed"
    event.refresh_from_db()
    assert event.status == "processed", event.error

    inbound = Message.objects.filter(channel=channel, direction="in")
    if name in NEW_MESSAGES:
        (message,) = inbound
        assert message.text == NEW_MESSAGES[name]
        assert message.conversation.contact.identities.get().value == "5678"
        assert message.conversation.contact.identities.get().kind == kind
    if sent is not None:
        sent.refresh_from_db()
        assert sent.status == "delivered"
    if received is not None:
        received.refresh_from_db()
        assert received.text == ""
    if name.endswith(("_echo.json", "_unknown_messaging_entry.json")):
        assert not inbound.exists()
        assert not Message.objects.filter(channel=channel).exists()


def test_every_sample_body_has_a_case():
    handled = set(NEW_MESSAGES) | {
        "messenger_delivery_receipt.json",
        "instagram_message_deleted_unsent.json",
        "messenger_message_echo.json",
        "instagram_message_echo.json",
        "messenger_unknown_messaging_entry.json",
    }
    assert set(BODIES) == handled


def test_derived_vector_through_webhook_url(client, org):
    body = (SAMPLES / "messenger_message_text.json").read_bytes()
    channel = make_channel(org, "messenger")
    response = client.post(
        f"/webhooks/messenger/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=VECTOR["expected"],
    )
    assert response.status_code == 200
    assert WebhookEvent.objects.filter(channel=channel).count() == 1


@pytest.mark.parametrize("kind", ["messenger", "instagram"])
@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sign-with-other-secret"])
def test_bad_signature_is_refused_and_nothing_stored(client, org, kind, header):
    channel = make_channel(org, kind)
    body = (SAMPLES / f"{kind}_message_text.json").read_bytes()
    if header == "sign-with-other-secret":
        header = sign(body, "not-" + SECRET)
    extra = {"HTTP_X_HUB_SIGNATURE_256": header} if header else {}
    response = client.post(
        f"/webhooks/{kind}/{channel.webhook_token}/", data=body, content_type="application/json", **extra
    )
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_body_for_the_other_kind_is_400(client, org):
    channel = make_channel(org, "instagram")
    body = (SAMPLES / "messenger_message_text.json").read_bytes()
    response = client.post(
        f"/webhooks/instagram/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, SECRET),
    )
    assert response.status_code == 400
    assert "expected 'instagram'" in response.json()["error"]
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("kind", ["messenger", "instagram"])
def test_verification_handshake_through_url(client, org, kind):
    channel = make_channel(org, kind)
    url = f"/webhooks/{kind}/{channel.webhook_token}/"
    ok = client.get(
        url,
        {"hub.mode": "subscribe", "hub.verify_token": "fb_webhook_secret", "hub.challenge": "yarchallenge"},
    )
    assert (ok.status_code, ok.content) == (200, b"yarchallenge")
    bad = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "yarchallenge"}
    )
    assert bad.status_code == 403 and b"yarchallenge" not in bad.content
