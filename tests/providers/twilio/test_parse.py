"""parse() and event_id() over our own Twilio fixtures, one test per file.

These tests carry no django_db mark on purpose: pytest-django refuses database access, so parse()
touching the ORM would fail here.
"""

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.base import ContactEvent, DeliveryStatus, InboundMessage, StatusUpdate
from providers.errors import MalformedPayloadError
from providers.registry import provider_class
from providers.twilio import EPOCH, TwilioSmsProvider, TwilioWhatsAppProvider
from tests.factories import ChannelFactory

from .conftest import PAYLOADS, payload

RECEIVED = "2025-01-15T10:32:07.250000+00:00"
HEADERS = {"x-alexia-received-at": RECEIVED}
RECEIVED_DT = datetime(2025, 1, 15, 10, 32, 7, 250000, tzinfo=UTC)


@pytest.fixture
def sms() -> TwilioSmsProvider:
    return TwilioSmsProvider(ChannelFactory.build(kind="twilio_sms"))


@pytest.fixture
def wa() -> TwilioWhatsAppProvider:
    return TwilioWhatsAppProvider(ChannelFactory.build(kind="twilio_whatsapp"))


def load(name: str) -> bytes:
    return payload(name)


def test_registry_points_at_both_providers():
    assert provider_class("twilio_sms") is TwilioSmsProvider
    assert provider_class("twilio_whatsapp") is TwilioWhatsAppProvider
    assert TwilioWhatsAppProvider.kind == "twilio_whatsapp"
    assert TwilioSmsProvider.rate_limit_per_second == TwilioWhatsAppProvider.rate_limit_per_second == 10.0


# --- inbound SMS -----------------------------------------------------------------------------------------
def test_inbound_sms_text(sms):
    body = load("inbound__sms_text.urlencoded")
    assert sms.event_id(body, HEADERS) == "SM3f8a1c6e0b2d4f6a8c0e2a4c6e8a0b2d:received"
    [msg] = sms.parse(body, HEADERS)
    assert msg == InboundMessage(
        platform_message_id="SM3f8a1c6e0b2d4f6a8c0e2a4c6e8a0b2d",
        sender_kind="phone",
        sender_value="+15105550123",
        timestamp=RECEIVED_DT,
        type="text",
        text="Hi, is my order #4411 ready for pickup?",
    )


def test_inbound_sms_mms_two_images(sms):
    [msg] = sms.parse(load("inbound__sms_mms_two_images.urlencoded"), HEADERS)
    assert msg.platform_message_id == "MM41c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1"
    assert msg.type == "media"
    assert msg.text == "Both photos of the damage"
    assert [(a.kind, a.content_type) for a in msg.attachments] == [
        ("image", "image/jpeg"),
        ("image", "image/png"),
    ]
    assert msg.attachments[0].url.endswith("/Media/ME0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    assert msg.attachments[1].url.endswith("/Media/ME9a8b7c6d5e4f30211203f4e5d6c7b8a9")


def test_inbound_sms_stop_emits_message_and_opt_out(sms):
    msg, event = sms.parse(load("inbound__sms_stop.urlencoded"), HEADERS)
    assert isinstance(msg, InboundMessage) and msg.text == " Stop "
    assert event == ContactEvent(
        sender_kind="phone",
        sender_value="+15105550188",
        event="opted_out",
        timestamp=RECEIVED_DT,
        reason="keyword STOP",
    )


def test_inbound_sms_start_emits_opt_in(sms):
    msg, event = sms.parse(load("inbound__sms_start.urlencoded"), HEADERS)
    assert msg.text == "unstop"
    assert isinstance(event, ContactEvent)
    assert (event.event, event.sender_value) == ("opted_in", "+15105550188")


def test_inbound_sms_help_is_only_a_message(sms):
    events = sms.parse(load("inbound__sms_help.urlencoded"), HEADERS)
    assert [type(e) for e in events] == [InboundMessage]
    assert events[0].text == "HELP"


def test_inbound_sms_advanced_opt_out_custom_keyword(sms):
    msg, event = sms.parse(load("inbound__sms_advanced_optout.urlencoded"), HEADERS)
    assert msg.sender_value == "+33612345678"
    assert msg.text == "ARRET"
    assert (event.event, event.sender_value, event.reason) == ("opted_out", "+33612345678", "OptOutType STOP")


def test_inbound_sms_to_short_code(sms):
    [msg] = sms.parse(load("inbound__sms_shortcode.urlencoded"), HEADERS)
    assert (msg.sender_value, msg.text, msg.type) == ("+12125550111", "JOIN", "text")


# --- inbound WhatsApp ------------------------------------------------------------------------------------
def test_inbound_whatsapp_text(wa):
    body = load("inbound__whatsapp_text.urlencoded")
    assert wa.event_id(body, {}) == "SMd1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6:received"
    [msg] = wa.parse(body, HEADERS)
    assert msg.sender_kind == "phone"
    assert msg.sender_value == "+34612000777"
    assert msg.sender_name == "Marta Ruiz"
    assert msg.text == "Hola, ¿tienen la talla M? 👕"
    assert msg.type == "text"


def test_inbound_whatsapp_image(wa):
    [msg] = wa.parse(load("inbound__whatsapp_image.urlencoded"), HEADERS)
    assert msg.type == "media"
    assert msg.text == ""
    [attachment] = msg.attachments
    assert (attachment.kind, attachment.content_type) == ("image", "image/jpeg")
    assert attachment.url.endswith(
        "/Messages/MMe2d4f6a8c0b2d4f6a8c0e2b4d6f8a0c2/Media/ME77aa55cc33ee11bb99dd77ff55aa33cc"
    )


def test_inbound_whatsapp_location(wa):
    [msg] = wa.parse(load("inbound__whatsapp_location.urlencoded"), HEADERS)
    assert msg.type == "location"
    assert msg.content == {
        "latitude": 40.416775,
        "longitude": -3.70379,
        "address": "Puerta del Sol, 28013 Madrid",
        "name": "Tienda Centro",
    }


def test_inbound_whatsapp_button(wa):
    [msg] = wa.parse(load("inbound__whatsapp_button.urlencoded"), HEADERS)
    assert msg.type == "interactive"
    assert msg.text == "Yes, confirm"
    assert msg.content == {
        "interactive_type": "button",
        "id": "confirm_booking_8812",
        "title": "Yes, confirm",
    }


def test_inbound_whatsapp_reply_keeps_replied_sid(wa):
    [msg] = wa.parse(load("inbound__whatsapp_reply.urlencoded"), HEADERS)
    assert msg.reply_to_platform_id == "SM2b3c4d5e6f708192a3b4c5d6e7f80912"
    assert msg.text == "Perfect, thanks"


# --- status callbacks ------------------------------------------------------------------------------------
def test_status_sent(sms):
    body = load("status__sent.urlencoded")
    assert sms.event_id(body, HEADERS) == "SM2b3c4d5e6f708192a3b4c5d6e7f80912:sent"
    assert sms.parse(body, HEADERS) == [
        StatusUpdate(
            platform_message_id="SM2b3c4d5e6f708192a3b4c5d6e7f80912",
            status=DeliveryStatus.SENT,
            timestamp=RECEIVED_DT,
        )
    ]


def test_status_delivered(sms):
    body = load("status__delivered.urlencoded")
    assert sms.event_id(body, HEADERS) == "SM2b3c4d5e6f708192a3b4c5d6e7f80912:delivered"
    [update] = sms.parse(body, HEADERS)
    assert (update.status, update.error_code, update.error_reason) == (DeliveryStatus.DELIVERED, "", "")


def test_status_queued_is_skipped_with_a_log(sms, caplog):
    body = load("status__queued.urlencoded")
    assert sms.event_id(body, HEADERS) == "SM2b3c4d5e6f708192a3b4c5d6e7f80912:queued"
    with caplog.at_level(logging.INFO, logger="providers.twilio"):
        assert sms.parse(body, HEADERS) == []
    assert "queued" in caplog.text


def test_status_read_whatsapp(wa):
    [update] = wa.parse(load("status__read_whatsapp.urlencoded"), HEADERS)
    assert (update.platform_message_id, update.status) == (
        "SM8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b",
        DeliveryStatus.READ,
    )


def test_status_failed_21610_also_opts_out(sms):
    update, event = sms.parse(load("status__failed_21610.urlencoded"), HEADERS)
    assert update == StatusUpdate(
        platform_message_id="SM4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d",
        status=DeliveryStatus.FAILED,
        timestamp=RECEIVED_DT,
        error_code="21610",
        error_reason="Attempt to send to unsubscribed recipient",
    )
    assert (event.event, event.sender_kind, event.sender_value) == ("opted_out", "phone", "+15105550188")


def test_status_undelivered_30003(sms):
    [update] = sms.parse(load("status__undelivered_30003.urlencoded"), HEADERS)
    assert (update.status, update.error_code, update.error_reason) == (
        DeliveryStatus.FAILED,
        "30003",
        "Unreachable destination handset",
    )


def test_status_failed_63016_whatsapp_window(wa):
    [update] = wa.parse(load("status__failed_63016_whatsapp.urlencoded"), HEADERS)
    assert update.status is DeliveryStatus.FAILED
    assert update.error_code == "63016"
    assert "outside the allowed window" in update.error_reason


def test_status_unlisted_code_uses_twilio_error_message(sms):
    [update] = sms.parse(load("status__undelivered_unlisted_code.urlencoded"), HEADERS)
    assert (update.error_code, update.error_reason) == ("30034", "Message from an unregistered number")


def test_every_fixture_has_its_test():
    source = Path(__file__).read_text()
    untested = sorted(p.name for p in PAYLOADS.iterdir() if f'load("{p.name}")' not in source)
    assert untested == []


# --- edge cases (not fixtures) ---------------------------------------------------------------------------
def test_unknown_status_is_logged_and_skipped(sms, caplog):
    body = b"MessageSid=SM0000000000000000000000000000aaaa&MessageStatus=teleported"
    with caplog.at_level(logging.INFO, logger="providers.twilio"):
        assert sms.parse(body, HEADERS) == []
    assert "teleported" in caplog.text


def test_failed_without_error_code(sms):
    [update] = sms.parse(b"MessageSid=SM0000000000000000000000000000bbbb&MessageStatus=failed", HEADERS)
    assert (update.status, update.error_code, update.error_reason) == (
        DeliveryStatus.FAILED,
        "",
        "Message failed",
    )


def test_missing_received_at_header_falls_back_to_epoch(sms):
    [msg] = sms.parse(payload("inbound__sms_text.urlencoded"), {})
    assert msg.timestamp == EPOCH


def test_received_at_header_is_case_insensitive_and_converted_to_utc(sms):
    [msg] = sms.parse(
        payload("inbound__sms_text.urlencoded"), {"X-Alexia-Received-At": "2025-01-15T11:32:07+01:00"}
    )
    assert msg.timestamp == datetime(2025, 1, 15, 10, 32, 7, tzinfo=UTC)
    assert msg.timestamp.utcoffset().total_seconds() == 0


def test_media_without_content_type_guesses_kind_from_url(sms):
    body = (
        b"MessageSid=MMx&From=%2B15105550123&NumMedia=2"
        b"&MediaUrl0=https%3A%2F%2Fx.test%2Fa.mp4&MediaUrl1=https%3A%2F%2Fx.test%2Fb"
    )
    [msg] = sms.parse(body, HEADERS)
    assert [(a.kind, a.content_type) for a in msg.attachments] == [("video", ""), ("document", "")]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"MessageSid": "SM1", "Body": "hi"}', "form-urlencoded"),
        (b"", "without MessageSid"),
        (b"Body=hello&From=%2B15105550123", "without MessageSid"),
        (b"\xff\xfe=1", "form-urlencoded"),
    ],
)
def test_not_a_twilio_form_is_malformed_in_event_id_and_parse(sms, body, reason):
    with pytest.raises(MalformedPayloadError, match=reason):
        sms.event_id(body, HEADERS)
    with pytest.raises(MalformedPayloadError, match=reason):
        sms.parse(body, HEADERS)


def test_inbound_without_from_is_malformed(sms):
    with pytest.raises(MalformedPayloadError, match="without From"):
        sms.parse(b"MessageSid=SM1&SmsStatus=received&Body=hi", HEADERS)


def test_sms_sid_alone_is_enough_for_event_id(sms):
    assert sms.event_id(b"SmsSid=SM42&SmsStatus=sent", HEADERS) == "SM42:sent"
