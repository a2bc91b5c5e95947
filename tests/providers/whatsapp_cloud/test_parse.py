"""parse() and event_id() over our own fixtures in payloads/ (one test per fixture)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.base import DeliveryStatus, InboundAttachment, InboundMessage, StatusUpdate
from providers.errors import MalformedPayloadError
from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import Channel
from providers.whatsapp_cloud import WhatsAppCloudProvider, phone_number_ids
from tests.factories import DEFAULT_CONFIG

PAYLOADS = Path(__file__).parent / "payloads"
PHONE_NUMBER_ID = DEFAULT_CONFIG["whatsapp_cloud"][0]["phone_number_id"]
TESTED: set[str] = set()


def provider(phone_number_id: str = PHONE_NUMBER_ID) -> WhatsAppCloudProvider:
    channel = Channel(kind="whatsapp_cloud", config={"phone_number_id": phone_number_id})
    channel.credentials = dict(DEFAULT_CONFIG["whatsapp_cloud"][1])
    return WhatsAppCloudProvider(channel)


def parse(name: str) -> list:
    TESTED.add(name)
    body = (PAYLOADS / f"{name}.json").read_bytes()
    assert provider().event_id(body, {}) is None
    return provider().parse(body, {})


def only_message(name: str) -> InboundMessage:
    events = parse(name)
    assert len(events) == 1
    assert isinstance(events[0], InboundMessage)
    return events[0]


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# --- messages ---------------------------------------------------------------------------------------------
def test_message_text__plain():
    message = only_message("message_text__plain")
    assert message == InboundMessage(
        platform_message_id="wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABIYFjNFQjBBMUIyQzNENEU1RjZBN0I4AA==",
        sender_kind="phone",
        sender_value="+4915123456789",
        sender_name="Lena Vogel",
        timestamp=datetime(2024, 11, 12, 9, 0, tzinfo=UTC),
        type="text",
        text="Hallo, ist meine Bestellung schon unterwegs?",
    )
    assert message.timestamp.utcoffset().total_seconds() == 0


def test_message_text__reply_context():
    message = only_message("message_text__reply_context")
    assert message.sender_value == "+5511987654321"
    assert message.text == "Sim, pode ser amanha"
    assert message.reply_to_platform_id == "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ1QjlGQ0I3RjE2MEQ4MzFBNwA="
    assert message.content == {}


def test_message_text__ad_referral():
    message = only_message("message_text__ad_referral")
    assert message.type == "text"
    assert message.text == "Is the spring sale still on?"
    assert message.content["referral"]["source_id"] == "120208734561230045"
    assert message.content["referral"]["ctwa_clid"] == "ARAkLk3Xm9pQ2vT0"
    assert message.content["referral"]["headline"] == "Spring sale: 30% off"


def test_message_text__username_only():
    message = only_message("message_text__username_only")
    assert (message.sender_kind, message.sender_value) == ("whatsapp", "US.13491208655302741919")
    assert message.sender_name == "lena.v"


def test_message_image__caption():
    message = only_message("message_image__caption")
    assert message.type == "media"
    assert message.text == "El paquete llego asi"
    assert message.attachments == (
        InboundAttachment(kind="image", content_type="image/jpeg", platform_media_id="1083526743129987"),
    )


def test_message_audio__voice_note():
    message = only_message("message_audio__voice_note")
    assert message.type == "media"
    assert message.text == ""
    assert message.attachments == (
        InboundAttachment(
            kind="voice", content_type="audio/ogg; codecs=opus", platform_media_id="2210456678901234"
        ),
    )


def test_message_audio__file():
    (attachment,) = only_message("message_audio__file").attachments
    assert (attachment.kind, attachment.content_type, attachment.platform_media_id) == (
        "audio",
        "audio/mpeg",
        "2210456678905678",
    )


def test_message_video__caption():
    message = only_message("message_video__caption")
    assert message.text == "Noise when I turn it on"
    assert message.attachments[0].kind == "video"
    assert message.attachments[0].platform_media_id == "887766554433221"


def test_message_document__filename():
    message = only_message("message_document__filename")
    assert message.text == "Facture de mars"
    assert message.content == {"forwarded": True}
    assert message.reply_to_platform_id == ""
    assert message.attachments == (
        InboundAttachment(
            kind="document",
            content_type="application/pdf",
            filename="facture-2024-03.pdf",
            platform_media_id="3345566778899001",
        ),
    )


def test_message_sticker__animated():
    message = only_message("message_sticker__animated")
    assert message.type == "media"
    assert message.attachments[0].kind == "sticker"
    assert message.attachments[0].content_type == "image/webp"


def test_message_location__named():
    message = only_message("message_location__named")
    assert message.type == "location"
    assert message.content == {
        "latitude": 37.7793,
        "longitude": -122.4193,
        "name": "City Hall",
        "address": "1 Dr Carlton B Goodlett Pl, San Francisco, CA 94102",
        "url": "https://maps.google.com/?cid=1234500000000000001",
    }


def test_message_location__current():
    message = only_message("message_location__current")
    assert message.content == {
        "latitude": 37.7749295,
        "longitude": -122.4194155,
        "name": None,
        "address": None,
    }


def test_message_contacts__two_cards():
    message = only_message("message_contacts__two_cards")
    assert message.type == "contact"
    cards = message.content["contacts"]
    assert [c["name"]["formatted_name"] for c in cards] == ["Naledi Dlamini", "Sipho"]
    assert cards[0]["phones"][0]["wa_id"] == "27827654321"


def test_message_reaction__emoji():
    message = only_message("message_reaction__emoji")
    assert message.type == "reaction"
    assert message.content == {
        "emoji": "\U0001f44d",
        "message_id": "wamid.HBgMMzkwNjEyMzQ1Njc4FQIAERgSQjNBOUMxRDJFM0Y0QTVCNkM3AA==",
    }


def test_message_reaction__removed():
    message = only_message("message_reaction__removed")
    assert message.content["emoji"] == ""
    assert message.content["message_id"] == "wamid.HBgMMzkwNjEyMzQ1Njc4FQIAERgSQjNBOUMxRDJFM0Y0QTVCNkM3AA=="


def test_message_interactive__button_reply():
    message = only_message("message_interactive__button_reply")
    assert message.type == "interactive"
    assert message.text == "Confirmar"
    assert message.content == {
        "interactive_type": "button_reply",
        "id": "confirm_delivery_slot",
        "title": "Confirmar",
    }
    assert message.reply_to_platform_id == "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjk5ODg3NzY2NTU0NDMzMjIxMQA="


def test_message_interactive__list_reply():
    message = only_message("message_interactive__list_reply")
    assert message.text == "Wed 9-12"
    assert message.content == {
        "interactive_type": "list_reply",
        "id": "slot_2024_11_13_am",
        "title": "Wed 9-12",
        "description": "Morning delivery window",
    }


def test_message_interactive__nfm_reply():
    message = only_message("message_interactive__nfm_reply")
    assert message.type == "interactive"
    assert message.text == "Sent"
    assert message.content == {
        "interactive_type": "nfm_reply",
        "name": "flow",
        "response": {"flow_token": "survey-8841", "rating": "5", "comment": "Fast and friendly"},
    }


def test_message_button__template_quick_reply():
    message = only_message("message_button__template_quick_reply")
    assert message.type == "interactive"
    assert message.text == "Neuer Termin"
    assert message.content == {"interactive_type": "button", "id": "RESCHEDULE", "title": "Neuer Termin"}
    assert message.reply_to_platform_id == "wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABEYEjY2NTU0NDMzMjIxMTAwOTkA"


def test_message_order__cart():
    message = only_message("message_order__cart")
    assert message.type == "interactive"
    assert message.text == "Please deliver after 6pm"
    assert message.content["interactive_type"] == "order"
    assert message.content["order"]["catalog_id"] == "781234567890123"
    assert [i["product_retailer_id"] for i in message.content["order"]["product_items"]] == [
        "SKU-COFFEE-1KG",
        "SKU-MUG-BLUE",
    ]


def test_message_unsupported__unknown_type():
    message = only_message("message_unsupported__unknown_type")
    assert message.type == "unsupported"
    assert message.sender_value == "+48501234567"
    assert message.content == {
        "original_type": "unsupported",
        "error": {
            "code": "131051",
            "title": "Message type unknown",
            "details": "Message type is currently not supported.",
        },
    }


def test_message_system__number_changed(caplog):
    caplog.set_level("INFO", logger="providers.whatsapp_cloud")
    assert parse("message_system__number_changed") == []
    assert "skipping system message" in caplog.text


# --- deliveries -------------------------------------------------------------------------------------------
def test_messages__batch_two_entries():
    events = parse("messages__batch_two_entries")
    assert [type(e) for e in events] == [InboundMessage, InboundMessage, StatusUpdate]
    assert [(e.sender_value, e.sender_name, e.text) for e in events[:2]] == [
        ("+351912345678", "Ana Costa", "Bom dia"),
        ("+351934567890", "Rui Alves", "Preciso de ajuda"),
    ]
    assert events[2].status == DeliveryStatus.READ
    assert events[2].timestamp == at(1731405004)


def test_messages__duplicate_ids():
    events = parse("messages__duplicate_ids")
    assert [e.platform_message_id for e in events] == [
        "wamid.HBgMMzUxOTEyMzQ1Njc4FQIAEhgUM0FERDAwMTEyMjMzNDQ1NTY2NzcA"
    ]


def test_messages__other_phone_number(caplog):
    assert parse("messages__other_phone_number") == []
    assert "109876543210987" in caplog.text
    body = (PAYLOADS / "messages__other_phone_number.json").read_bytes()
    assert phone_number_ids(body) == ["109876543210987"]
    (message,) = provider("109876543210987").parse(body, {})
    assert message.text == "wrong number id"


def test_errors__value_level(caplog):
    caplog.set_level("INFO", logger="providers.whatsapp_cloud")
    assert parse("errors__value_level") == []
    assert "131000" in caplog.text


def test_field__template_status_update(caplog):
    caplog.set_level("INFO", logger="providers.whatsapp_cloud")
    assert parse("field__template_status_update") == []
    assert "message_template_status_update" in caplog.text


# --- statuses ---------------------------------------------------------------------------------------------
def test_status_sent__callback_data():
    (status,) = parse("status_sent__callback_data")
    assert status == StatusUpdate(
        platform_message_id="wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABEYEkE1QjZDN0Q4RTlGMEExQjJDMwA=",
        status=DeliveryStatus.SENT,
        timestamp=at(1731405200),
        our_reference="4821",
    )


def test_status_delivered__plain():
    (status,) = parse("status_delivered__plain")
    assert (status.status, status.timestamp, status.our_reference) == (
        DeliveryStatus.DELIVERED,
        at(1731405203),
        "",
    )


def test_status_read__foreign_callback_data():
    (status,) = parse("status_read__foreign_callback_data")
    assert status.status == DeliveryStatus.READ
    assert status.our_reference == ""


def test_status_failed__reengagement_131047():
    (status,) = parse("status_failed__reengagement_131047")
    assert status.status == DeliveryStatus.FAILED
    assert status.error_code == "131047"
    assert status.error_reason == (
        "Re-engagement message: Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number."
    )
    assert status.our_reference == "4822"


def test_status_failed__media_title_only():
    (status,) = parse("status_failed__media_title_only")
    assert (status.error_code, status.error_reason) == ("131053", "Media upload error")


def test_every_fixture_has_a_test():
    names = {p.stem for p in PAYLOADS.glob("*.json")}
    expected = {
        name[len("test_") :]
        for name, value in globals().items()
        if name.startswith("test_") and callable(value)
    }
    assert names <= expected, f"fixtures without a test: {sorted(names - expected)}"


# --- malformed bodies -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"object": "page", "entry": []}', "'page'"),
        (b'{"object": "whatsapp_business_account"}', '"entry"'),
        (b'{"object": "whatsapp_business_account", "entry": {}}', '"entry"'),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_bodies_raise_from_event_id_and_parse(body, reason):
    with pytest.raises(MalformedPayloadError, match=reason):
        provider().event_id(body, {})
    with pytest.raises(MalformedPayloadError, match=reason):
        provider().parse(body, {})


def broken(message: dict) -> bytes:
    value = {"metadata": {"phone_number_id": PHONE_NUMBER_ID}, "messages": [message]}
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            {"from": "4915123456789", "timestamp": "1731402000", "type": "text", "text": {"body": "x"}},
            "no id",
        ),
        ({"from": "4915123456789", "id": "wamid.A", "timestamp": "soon", "type": "text"}, "timestamp"),
        ({"id": "wamid.A", "timestamp": "1731402000", "type": "text", "text": {"body": "x"}}, "no sender"),
    ],
)
def test_broken_message_is_malformed(message, reason):
    with pytest.raises(MalformedPayloadError, match=reason):
        provider().parse(broken(message), {})


def test_unknown_message_type_is_kept_as_unsupported():
    message = {"from": "4915123456789", "id": "wamid.B", "timestamp": "1731402000", "type": "hologram"}
    (parsed,) = provider().parse(broken(message), {})
    assert parsed.type == "unsupported"
    assert parsed.content["original_type"] == "hologram"


# --- the fake's webhook builders produce bodies parse() accepts --------------------------------------------
def test_fake_inbound_text_payload_round_trips():
    body = json.dumps(
        FakeWhatsApp.inbound_text_payload(
            PHONE_NUMBER_ID, "4915123456789", "Hi", "Lena", wamid="wamid.F1", timestamp=5
        )
    ).encode()
    assert provider().parse(body, {}) == [
        InboundMessage(
            platform_message_id="wamid.F1",
            sender_kind="phone",
            sender_value="+4915123456789",
            sender_name="Lena",
            timestamp=at(5),
            text="Hi",
        )
    ]


def test_fake_status_payload_round_trips():
    payload = FakeWhatsApp.status_payload(
        PHONE_NUMBER_ID,
        "wamid.F2",
        "failed",
        "4915123456789",
        timestamp=9,
        error_code=131026,
        error_title="Message undeliverable",
        error_details="Recipient is not on WhatsApp",
        biz_opaque_callback_data="alexia:77",
    )
    (status,) = provider().parse(json.dumps(payload).encode(), {})
    assert status == StatusUpdate(
        platform_message_id="wamid.F2",
        status=DeliveryStatus.FAILED,
        timestamp=at(9),
        error_code="131026",
        error_reason="Message undeliverable: Recipient is not on WhatsApp",
        our_reference="77",
    )
