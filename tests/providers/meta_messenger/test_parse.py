"""parse() and event_id() over our own fixtures in payloads/ (one test per fixture), written from Meta's
webhook reference: https://developers.facebook.com/docs/messenger-platform/reference/webhook-events and
https://developers.facebook.com/docs/messenger-platform/instagram/features/webhook
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.base import ContactEvent, DeliveryStatus, InboundAttachment, InboundMessage, StatusUpdate
from providers.errors import MalformedPayloadError
from providers.fakes.meta import FakeMeta
from providers.meta_messenger import (
    DELIVERED_WATERMARK,
    READ_WATERMARK,
    InstagramProvider,
    MessengerProvider,
    entry_ids,
)
from providers.models import Channel
from tests.factories import DEFAULT_CONFIG

PAYLOADS = Path(__file__).parent / "payloads"
PAGE_ID = DEFAULT_CONFIG["messenger"][0]["page_id"]
IG_ID = DEFAULT_CONFIG["instagram"][0]["instagram_account_id"]
PSID = "24683579135792468"
IGSID = "6543210987654321"


def provider(kind: str = "messenger", account_id: str | None = None) -> MessengerProvider:
    config = dict(DEFAULT_CONFIG[kind][0])
    if account_id is not None:
        config["page_id" if kind == "messenger" else "instagram_account_id"] = account_id
    channel = Channel(kind=kind, config=config)
    channel.credentials = dict(DEFAULT_CONFIG[kind][1])
    return (InstagramProvider if kind == "instagram" else MessengerProvider)(channel)


def parse(name: str) -> list:
    body = (PAYLOADS / f"{name}.json").read_bytes()
    prov = provider("instagram" if name.startswith("instagram_") else "messenger")
    assert prov.event_id(body, {}) is None
    return prov.parse(body, {})


def only_message(name: str) -> InboundMessage:
    events = parse(name)
    assert len(events) == 1
    assert isinstance(events[0], InboundMessage)
    return events[0]


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


AT = datetime(2024, 11, 12, 9, 0, 0, 123000, tzinfo=UTC)  # 1731402000123 ms


# --- Messenger messages -----------------------------------------------------------------------------------
def test_message_text__reply_to():
    message = only_message("message_text__reply_to")
    assert message == InboundMessage(
        platform_message_id="m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P",
        sender_kind="messenger",
        sender_value=PSID,
        timestamp=AT,
        type="text",
        text="Is the blue one still available?",
        reply_to_platform_id="m_1PlzqYcWiS2kbRIx0R4yLJ6vKdTXZbXqOxDbn6dvMBbnn41h5W6uXWyZ4Ss0yqF1l4iLwLk6rSHzNZd6Fh5Q",
    )
    assert message.timestamp.utcoffset().total_seconds() == 0


def test_message_quick_reply__payload():
    message = only_message("message_quick_reply__payload")
    assert (message.type, message.text) == ("interactive", "Red")
    assert message.content == {"interactive_type": "quick_reply", "payload": "COLOR_RED", "title": "Red"}


def test_message_attachments__two_images():
    message = only_message("message_attachments__two_images")
    assert message.type == "media"
    assert message.text == ""
    assert [(a.kind, a.url.split("?")[0]) for a in message.attachments] == [
        ("image", "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo-1.jpg"),
        ("image", "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo-2.jpg"),
    ]


def test_message_attachment__file_and_text():
    message = only_message("message_attachment__file_and_text")
    assert (message.type, message.text) == ("media", "Here is the invoice")
    (attachment,) = message.attachments
    assert attachment.kind == "document"
    assert attachment.url.startswith("https://cdn.fbsbx.com/v/t59.2708-21/invoice-2024-118.pdf/")


def test_message_attachment__audio():
    (attachment,) = only_message("message_attachment__audio").attachments
    assert attachment == InboundAttachment(
        kind="audio",
        url="https://cdn.fbsbx.com/v/t59.3654-21/audioclip-1731402000-2391.mp4/audioclip.mp4?_nc_cat=1",
    )


def test_message_sticker__custom():
    message = only_message("message_sticker__custom")
    assert message.type == "media"
    assert message.content == {"sticker_id": "369239266556155"}
    assert [a.kind for a in message.attachments] == ["sticker"]


def test_message_fallback__shared_link():
    message = only_message("message_fallback__shared_link")
    url = "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.com%2Fspring&h=AT0x"
    assert (message.type, message.text) == ("text", url)
    assert message.content == {"links": [{"url": url, "title": "Alexia Shop — Spring collection"}]}
    assert message.attachments == ()


def test_message_edit__text():
    message = only_message("message_edit__text")
    assert message.is_edit is True
    assert message.platform_message_id.startswith("m_AG5Hz2Uq7tuw")
    assert message.text == "Is the navy one still available?"
    assert message.content == {"edited": True, "num_edit": 1}


def test_postback__button_with_mid():
    message = only_message("postback__button_with_mid")
    assert message.platform_message_id == "m_pb4Tx0sQ"
    assert (message.type, message.text) == ("interactive", "Track my order")
    assert message.content == {
        "interactive_type": "postback",
        "payload": "TRACK_ORDER",
        "title": "Track my order",
    }


def test_reaction__react():
    message = only_message("reaction__react")
    assert message.type == "reaction"
    assert message.content == {
        "emoji": "\u2764\ufe0f",
        "message_id": "m_out7Zr2",
        "reaction": "love",
        "action": "react",
    }
    assert message.platform_message_id == f"reaction:{PSID}:m_out7Zr2:react:1731402000123"


def test_reaction__unreact():
    message = only_message("reaction__unreact")
    assert message.content == {"emoji": "", "message_id": "m_out7Zr2", "reaction": "", "action": "unreact"}
    assert message.platform_message_id != only_message("reaction__react").platform_message_id


def test_referral__ad_open_thread():
    message = only_message("referral__ad_open_thread")
    assert message.type == "interactive"
    assert message.text == "Referral from ADS (ref spring-sale)"
    assert message.content["interactive_type"] == "referral"
    assert message.content["referral"]["ad_id"] == "120208734561230045"
    assert message.content["referral"]["ads_context_data"]["ad_title"] == "Spring sale: 30% off"
    assert message.platform_message_id == f"referral:{PSID}:1731402000123"


def test_optin__stop_notifications():
    message = only_message("optin__stop_notifications")
    assert message.text == "Stopped notification messages: Weekly deals"
    assert message.content["optin"]["notification_messages_status"] == "STOP_NOTIFICATIONS"


# --- receipts ---------------------------------------------------------------------------------------------
def test_delivery__watermark_only():
    assert parse("delivery__watermark_only") == [
        ContactEvent(
            sender_kind="messenger", sender_value=PSID, event=DELIVERED_WATERMARK, timestamp=ms(1731401990456)
        )
    ]


def test_read__watermark():
    (event,) = parse("read__watermark")
    assert event == ContactEvent(
        sender_kind="messenger", sender_value=PSID, event=READ_WATERMARK, timestamp=ms(1731401995789)
    )
    assert event.timestamp == datetime(2024, 11, 12, 8, 59, 55, 789000, tzinfo=UTC)


def test_echo__text_from_our_app():
    message = only_message("echo__text_from_our_app")
    assert message.is_echo is True
    # The Page is the sender of an echo: the customer is the recipient.
    assert (message.sender_kind, message.sender_value) == ("messenger", PSID)
    assert message.platform_message_id == "m_echo0ZtY9"
    assert message.text == "Your order shipped today."
    assert message.content == {"app_id": 1517776481860111, "metadata": "alexia"}


def test_entry__other_page():
    assert parse("entry__other_page") == []
    body = (PAYLOADS / "entry__other_page.json").read_bytes()
    assert entry_ids(body) == ["9988776655"]
    (message,) = provider(account_id="9988776655").parse(body, {})
    assert message.text == "wrong page"


def test_entries__standby_and_message():
    message = only_message("entries__standby_and_message")
    assert (message.platform_message_id, message.text) == ("m_after_standby", "Hello again")
    assert message.timestamp == ms(1731402001000)


# --- Instagram --------------------------------------------------------------------------------------------
def test_instagram_message__story_reply():
    message = only_message("instagram_message__story_reply")
    assert (message.sender_kind, message.sender_value) == ("instagram", IGSID)
    assert (message.type, message.text) == ("text", "Love this look!")
    assert message.content["story_reply"]["id"] == "17962231051412345"
    assert message.reply_to_platform_id == ""


def test_instagram_message__share():
    message = only_message("instagram_message__share")
    url = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17890000111222333&signature=Def"
    assert message.type == "media"
    assert message.content == {"share": url}
    assert message.attachments == (InboundAttachment(kind="image", url=url),)


def test_instagram_message__unsupported():
    message = only_message("instagram_message__unsupported")
    assert message.type == "unsupported"
    assert message.content == {"original_type": "unsupported"}


def test_instagram_reaction__react():
    message = only_message("instagram_reaction__react")
    assert message.type == "reaction"
    assert message.content["emoji"] == "\u2764"
    assert message.content["message_id"] == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwOUT"


def test_instagram_read__mid():
    assert parse("instagram_read__mid") == [
        StatusUpdate(
            platform_message_id="aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwOUT",
            status=DeliveryStatus.READ,
            timestamp=AT,
        )
    ]


def test_instagram_postback__with_mid():
    message = only_message("instagram_postback__with_mid")
    assert message.platform_message_id == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwPB"
    assert message.content["payload"] == "ICEBREAKER_HOURS"
    assert message.text == "What are your opening hours?"


def test_instagram_changes__comment():
    """Comments arrive as entry[].changes[]: not direct messages, skipped."""
    assert parse("instagram_changes__comment") == []


@pytest.mark.parametrize("name", sorted(p.stem for p in PAYLOADS.glob("*.json")))
def test_every_fixture_has_its_test(name):
    assert callable(globals().get(f"test_{name}")), f"payloads/{name}.json has no test_{name}"


# --- envelope checks (no fixture) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("messenger", b"not json", "not JSON"),
        ("messenger", b"[]", "not a JSON object"),
        ("messenger", b'{"object": "instagram", "entry": []}', "expected 'page'"),
        ("instagram", b'{"object": "page", "entry": []}', "expected 'instagram'"),
        ("messenger", b'{"object": "whatsapp_business_account", "entry": []}', "expected 'page'"),
        ("messenger", b'{"object": "page"}', '"entry"'),
        ("messenger", b'{"object": "page", "entry": ["x"]}', "entry is not an object"),
    ],
)
def test_malformed_bodies_are_refused(kind, body, reason):
    prov = provider(kind)
    with pytest.raises(MalformedPayloadError, match=reason):
        prov.event_id(body, {})
        prov.parse(body, {})


def test_message_without_mid_is_malformed():
    payload = FakeMeta.text_payload(PAGE_ID, PSID, "hi")
    del payload["entry"][0]["messaging"][0]["message"]["mid"]
    with pytest.raises(MalformedPayloadError, match="no mid"):
        provider().parse(json.dumps(payload).encode(), {})


def test_seconds_timestamp_is_accepted():
    payload = FakeMeta.text_payload(PAGE_ID, PSID, "hi", mid="m_1", timestamp=1731402000)
    (message,) = provider().parse(json.dumps(payload).encode(), {})
    assert message.timestamp == datetime(2024, 11, 12, 9, 0, tzinfo=UTC)


def test_fake_helpers_build_bodies_the_provider_reads():
    delivery = FakeMeta.delivery_payload(PAGE_ID, PSID, mids=["m_a", "m_a", "m_b"], watermark=1731402000000)
    events = provider().parse(json.dumps(delivery).encode(), {})
    assert events == [
        StatusUpdate(
            platform_message_id="m_a", status=DeliveryStatus.DELIVERED, timestamp=events[0].timestamp
        ),
        StatusUpdate(
            platform_message_id="m_b", status=DeliveryStatus.DELIVERED, timestamp=events[0].timestamp
        ),
        ContactEvent(
            sender_kind="messenger", sender_value=PSID, event=DELIVERED_WATERMARK, timestamp=ms(1731402000000)
        ),
    ]
    read = FakeMeta.read_payload(IG_ID, IGSID, mid="m_c", object_type="instagram")
    (status,) = provider("instagram").parse(json.dumps(read).encode(), {})
    assert (status.platform_message_id, status.status) == ("m_c", DeliveryStatus.READ)
    echo = FakeMeta.echo_payload(PAGE_ID, PSID, mid="m_e", text="hello")
    (message,) = provider().parse(json.dumps(echo).encode(), {})
    assert (message.is_echo, message.sender_value, message.text) == (True, PSID, "hello")
