import logging
from datetime import UTC, datetime

import pytest

from providers.base import ContactEvent, InboundAttachment, InboundMessage
from providers.errors import MalformedPayloadError
from providers.telegram import NO_DATE

from .conftest import PAYLOADS, payload_bytes

FIXTURES_TESTED = {
    "message__text",
    "message__start_command",
    "message__photo_caption",
    "message__document",
    "message__video",
    "message__voice",
    "message__audio",
    "message__sticker",
    "message__location",
    "message__venue",
    "message__contact",
    "message__web_app_data",
    "message__group_reply",
    "message__service_new_members",
    "message__poll_unsupported",
    "edited_message__text",
    "callback_query__button",
    "callback_query__inline_message",
    "message_reaction__emoji",
    "my_chat_member__blocked",
    "my_chat_member__unblocked",
    "my_chat_member__added_to_group",
    "channel_post__text",
    "inline_query__unknown",
}


def parse_one(provider, name: str):
    events = provider.parse(payload_bytes(name), {"Content-Type": "application/json"})
    assert len(events) == 1
    return events[0]


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def test_every_payload_fixture_has_a_test():
    assert {p.stem for p in PAYLOADS.glob("*.json")} == FIXTURES_TESTED


def test_message_text(built_provider):
    msg = parse_one(built_provider, "message__text")
    assert msg == InboundMessage(
        platform_message_id="781234560:17",
        sender_kind="telegram",
        sender_value="781234560",
        sender_name="Lucía Gómez",
        timestamp=at(1718000000),
        type="text",
        text="Hola, ¿mi pedido ya salió?",
    )
    assert msg.timestamp.tzinfo is UTC


def test_message_start_command(built_provider):
    msg = parse_one(built_provider, "message__start_command")
    assert (msg.type, msg.text, msg.sender_value, msg.sender_name) == (
        "text",
        "/start promo_summer",
        "652000111",
        "Omar",
    )
    assert msg.content == {"command": "/start"}


def test_message_photo_takes_the_largest_size_and_the_caption(built_provider):
    msg = parse_one(built_provider, "message__photo_caption")
    assert msg.type == "media"
    assert msg.text == "The box arrived like this"
    assert msg.attachments == (
        InboundAttachment(
            kind="image",
            content_type="image/jpeg",
            platform_media_id="AgACAgQAAxkBAAIBQ2ZlargeAAE",
            size=88213,
        ),
    )


def test_message_document(built_provider):
    msg = parse_one(built_provider, "message__document")
    assert msg.type == "media"
    assert msg.sender_name == "Lucía"
    assert msg.attachments == (
        InboundAttachment(
            kind="document",
            content_type="application/pdf",
            filename="invoice-2291.pdf",
            platform_media_id="BQACAgQAAxkBAAIBRGZdocAAE",
            size=53311,
        ),
    )


def test_message_video(built_provider):
    msg = parse_one(built_provider, "message__video")
    (att,) = msg.attachments
    assert (msg.type, att.kind, att.content_type, att.platform_media_id) == (
        "media",
        "video",
        "video/mp4",
        "BAACAgQAAxkBAAIBRWZvidAAE",
    )


def test_message_voice(built_provider):
    msg = parse_one(built_provider, "message__voice")
    (att,) = msg.attachments
    assert (att.kind, att.content_type, att.platform_media_id, att.size) == (
        "voice",
        "audio/ogg",
        "AwACAgQAAxkBAAIBRmZvoiceAAE",
        18440,
    )


def test_message_audio_with_caption(built_provider):
    msg = parse_one(built_provider, "message__audio")
    (att,) = msg.attachments
    assert msg.text == "is this your hold music?"
    assert (att.kind, att.content_type, att.filename) == ("audio", "audio/mpeg", "hold.mp3")


def test_message_sticker(built_provider):
    msg = parse_one(built_provider, "message__sticker")
    (att,) = msg.attachments
    assert msg.type == "media"
    assert msg.content == {"emoji": "👍"}
    assert (att.kind, att.content_type, att.platform_media_id) == (
        "sticker",
        "image/webp",
        "CAACAgIAAxkBAAIBSGZstickerAAE",
    )


def test_message_location(built_provider):
    msg = parse_one(built_provider, "message__location")
    assert msg.type == "location"
    assert msg.content == {"latitude": 52.520008, "longitude": 13.404954, "title": "", "address": ""}


def test_message_venue(built_provider):
    msg = parse_one(built_provider, "message__venue")
    assert msg.type == "location"
    assert msg.content == {
        "latitude": 48.858370,
        "longitude": 2.294481,
        "title": "Tour Eiffel",
        "address": "Champ de Mars, 5 Av. Anatole France",
    }


def test_message_contact(built_provider):
    msg = parse_one(built_provider, "message__contact")
    assert msg.type == "contact"
    assert msg.content == {
        "name": "Greta Lind",
        "phone_number": "+4915123456789",
        "first_name": "Greta",
        "last_name": "Lind",
        "user_id": "99001122",
    }


def test_message_web_app_data(built_provider):
    msg = parse_one(built_provider, "message__web_app_data")
    assert msg.type == "interactive"
    assert msg.text == '{"size": "M", "color": "teal"}'
    assert msg.content == {"kind": "web_app_data", "data": msg.text, "button_text": "Choose size"}


def test_message_group_reply_answers_the_group(built_provider):
    msg = parse_one(built_provider, "message__group_reply")
    assert msg.platform_message_id == "-1001987654321:3301"
    assert msg.sender_value == "-1001987654321"
    assert msg.sender_name == "Acme Customers"
    assert msg.reply_to_platform_id == "-1001987654321:3290"
    assert msg.content == {
        "chat_type": "supergroup",
        "from": {"id": "440055660", "name": "Priya", "username": "priya_k"},
    }


def test_service_message_is_skipped_with_a_log_line(built_provider, caplog):
    with caplog.at_level(logging.INFO, logger="providers.telegram"):
        assert built_provider.parse(payload_bytes("message__service_new_members"), {}) == []
    assert "service message (new_chat_members)" in caplog.text


def test_poll_message_is_unsupported(built_provider):
    msg = parse_one(built_provider, "message__poll_unsupported")
    assert (msg.type, msg.text, msg.platform_message_id) == ("unsupported", "", "652000111:31")
    assert msg.content == {"fields": ["poll"]}


def test_edited_message_keeps_the_original_id(built_provider):
    msg = parse_one(built_provider, "edited_message__text")
    original = parse_one(built_provider, "message__text")
    assert msg.is_edit is True and original.is_edit is False
    assert msg.platform_message_id == original.platform_message_id == "781234560:17"
    assert msg.text == "Hola, ¿mi pedido #2291 ya salió?"
    assert msg.timestamp == at(1718000045)


def test_callback_query_on_a_chat_message(built_provider):
    msg = parse_one(built_provider, "callback_query__button")
    assert msg.platform_message_id == "cb:3355781200450012345"
    assert (msg.type, msg.text, msg.sender_value, msg.sender_name) == (
        "interactive",
        "csat:yes",
        "652000111",
        "Omar",
    )
    assert msg.reply_to_platform_id == "652000111:30"
    assert msg.timestamp == at(1718001300)
    assert msg.content == {
        "callback_query_id": "3355781200450012345",
        "data": "csat:yes",
        "message_id": "652000111:30",
        "chat_instance": "-4400918273645500112",
        "from": {"id": "652000111", "name": "Omar"},
    }


def test_callback_query_on_an_inline_message_answers_the_user(built_provider):
    msg = parse_one(built_provider, "callback_query__inline_message")
    assert msg.platform_message_id == "cb:3355781200450099999"
    assert (msg.sender_value, msg.sender_name, msg.text) == ("440055660", "Priya", "track:2291")
    assert msg.content["inline_message_id"] == "AQAAAGx0AAB3x9kK"
    assert msg.timestamp == NO_DATE
    assert msg.reply_to_platform_id == ""


def test_message_reaction(built_provider):
    msg = parse_one(built_provider, "message_reaction__emoji")
    assert msg.platform_message_id == "reaction:501200017"
    assert (msg.type, msg.text, msg.sender_value) == ("reaction", "❤", "-1001987654321")
    assert msg.reply_to_platform_id == "-1001987654321:3305"
    assert msg.content["emoji"] == "❤"
    assert msg.content["from"] == {"id": "440055660", "name": "Priya", "username": "priya_k"}


def test_my_chat_member_kicked_means_blocked(built_provider):
    event = parse_one(built_provider, "my_chat_member__blocked")
    assert event == ContactEvent(
        sender_kind="telegram",
        sender_value="781234560",
        event="blocked",
        timestamp=at(1718002000),
        reason="bot status in private chat changed from member to kicked",
    )


def test_my_chat_member_back_to_member_means_unblocked(built_provider):
    event = parse_one(built_provider, "my_chat_member__unblocked")
    assert isinstance(event, ContactEvent)
    assert (event.event, event.sender_value, event.timestamp) == ("unblocked", "781234560", at(1718090000))


def test_my_chat_member_added_to_a_group_is_skipped(built_provider, caplog):
    with caplog.at_level(logging.INFO, logger="providers.telegram"):
        assert built_provider.parse(payload_bytes("my_chat_member__added_to_group"), {}) == []
    assert "left -> member" in caplog.text


def test_channel_post_is_skipped_with_a_log_line(built_provider, caplog):
    with caplog.at_level(logging.INFO, logger="providers.telegram"):
        assert built_provider.parse(payload_bytes("channel_post__text"), {}) == []
    assert "channel_post is not handled" in caplog.text


def test_unknown_update_kind_is_skipped_with_a_log_line(built_provider, caplog):
    with caplog.at_level(logging.INFO, logger="providers.telegram"):
        assert built_provider.parse(payload_bytes("inline_query__unknown"), {}) == []
    assert "501200022 skipped: inline_query is not handled" in caplog.text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b'"hello"', "JSON object"),
        (b'{"message": {"message_id": 1}}', "no integer update_id"),
        (b'{"update_id": 7, "message": {"message_id": 1, "date": 1}}', "message in update 7 is malformed"),
        (b'{"update_id": 8, "callback_query": {"data": "x"}}', "callback_query in update 8 is malformed"),
    ],
)
def test_parse_rejects_bodies_that_are_not_updates(built_provider, body, reason):
    with pytest.raises(MalformedPayloadError, match=reason):
        built_provider.parse(body, {})
