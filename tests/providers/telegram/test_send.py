import json
import socket
import threading
import traceback

import pytest

from providers.base import InboundAttachment, OutboundMessage
from providers.errors import (
    AmbiguousFailure,
    ConfigurationError,
    PermanentFailure,
    RateLimited,
    TransientFailure,
)
from providers.fakes.server import FakeResponse
from providers.fakes.telegram import FakeTelegram, params_of
from providers.telegram import ALLOWED_UPDATES, TelegramProvider, split_text

from .conftest import BOT_TOKEN, SECRET, payload, payload_bytes

CHAT = "781234560"
TOKEN_SECRET_PART = BOT_TOKEN.split(":", 1)[1]

pytestmark = pytest.mark.django_db


def out(text: str = "Your order shipped today.", **kwargs) -> OutboundMessage:
    return OutboundMessage(message_id=42, to=kwargs.pop("to", CHAT), text=text, **kwargs)


def assert_token_not_leaked(exc: BaseException) -> None:
    rendered = "".join(traceback.format_exception(exc))
    assert TOKEN_SECRET_PART not in rendered
    assert TOKEN_SECRET_PART not in repr(exc.__cause__)


# --- success ----------------------------------------------------------------------------------------------


def test_send_text_posts_send_message_and_returns_chat_scoped_ids(provider, fake_telegram):
    first = provider.send(out())
    second = provider.send(out("And here is the tracking link."))

    assert first.platform_message_id == f"{CHAT}:1"
    assert second.platform_message_id == f"{CHAT}:2"
    assert first.segments == 1
    (request, _) = fake_telegram.received(f"/bot{BOT_TOKEN}/sendMessage")
    assert request.method == "POST"
    assert request.json == {"chat_id": CHAT, "text": "Your order shipped today."}


def test_send_uses_the_chat_id_telegram_answers_with(provider, fake_telegram):
    fake_telegram.fail_next(
        1, FakeResponse(200, {"ok": True, "result": {"message_id": 9, "chat": {"id": -1001234567890}}})
    )
    assert provider.send(out(to="@acme_news")).platform_message_id == "-1001234567890:9"


def test_send_reply_quotes_the_original_message(provider, fake_telegram):
    provider.send(out(reply_to_platform_id=f"{CHAT}:17"))
    provider.send(out(reply_to_platform_id="-1001987654321:3301"))
    provider.send(out(reply_to_platform_id="cb:3355781200450012345"))

    same_chat, other_chat, callback = fake_telegram.sent("sendMessage")
    assert same_chat["reply_parameters"] == {"message_id": 17, "allow_sending_without_reply": True}
    assert other_chat["reply_parameters"] == {
        "message_id": 3301,
        "allow_sending_without_reply": True,
        "chat_id": -1001987654321,
    }
    assert "reply_parameters" not in callback


def test_send_splits_text_over_4096_characters(provider, fake_telegram):
    first_part = "a" * 3000
    second_part = "b " * 1500
    result = provider.send(out(first_part + "\n" + second_part, reply_to_platform_id=f"{CHAT}:5"))

    calls = fake_telegram.sent("sendMessage")
    assert [c["text"] for c in calls] == [first_part, second_part]
    assert calls[0]["reply_parameters"]["message_id"] == 5
    assert "reply_parameters" not in calls[1]
    assert result.platform_message_id == f"{CHAT}:1"
    assert result.segments == 2
    assert result.raw["message_ids"] == [f"{CHAT}:1", f"{CHAT}:2"]


def test_split_text_counts_utf16_units_and_cuts_at_spaces():
    emoji = "😀" * 3000  # 6000 UTF-16 units
    parts = split_text(emoji)
    assert [len(p) for p in parts] == [2048, 952]
    words = ("word " * 1000).strip()
    parts = split_text(words, limit=100)
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts) == words
    assert split_text(" \n ") == []
    assert split_text("x" * 250, limit=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_send_photo_by_url_with_caption(provider, fake_telegram):
    image = {"url": "https://cdn.example.com/receipt.png", "content_type": "image/png"}
    result = provider.send(out("Here is your receipt", attachments=(image,)))

    (call,) = fake_telegram.sent("sendPhoto")
    assert call == {"chat_id": CHAT, "caption": "Here is your receipt", "photo": image["url"]}
    assert fake_telegram.sent("sendMessage") == []
    assert result.platform_message_id == f"{CHAT}:1"


def test_send_document_uploads_a_local_file_as_multipart(provider, fake_telegram, tmp_path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.7 fake invoice")
    attachment = {"path": str(path), "filename": "invoice-2291.pdf", "content_type": "application/pdf"}
    provider.send(out("Invoice attached", attachments=(attachment,), reply_to_platform_id=f"{CHAT}:19"))

    (request,) = fake_telegram.received("sendDocument")
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    params, files = params_of(request)
    assert params["chat_id"] == CHAT
    assert params["caption"] == "Invoice attached"
    assert json.loads(params["reply_parameters"]) == {"message_id": 19, "allow_sending_without_reply": True}
    assert files["document"] == ("invoice-2291.pdf", b"%PDF-1.7 fake invoice", "application/pdf")


def test_send_text_too_long_for_a_caption_follows_the_attachment(provider, fake_telegram):
    text = "Details: " + "x" * 1100
    result = provider.send(out(text, attachments=({"url": "https://cdn.example.com/a.jpg"},)))

    (photo,) = fake_telegram.sent("sendPhoto")
    assert "caption" not in photo
    assert [m["text"] for m in fake_telegram.sent("sendMessage")] == [text]
    assert result.segments == 2


def test_send_with_nothing_to_send_fails_without_calling_telegram(provider, fake_telegram):
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out("   "))
    assert caught.value.code == "empty_message"
    assert fake_telegram.received() == []


def test_send_unreadable_attachment_is_permanent(provider, tmp_path):
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out(attachments=({"path": str(tmp_path / "missing.pdf")},)))
    assert caught.value.code == "attachment_unreadable"


# --- failures -----------------------------------------------------------------------------------------


def test_send_429_honours_retry_after(provider, fake_telegram):
    fake_telegram.fail_next(1, FakeTelegram.rate_limited(17))
    with pytest.raises(RateLimited) as caught:
        provider.send(out())
    assert caught.value.retry_after == 17.0
    assert caught.value.reason == "Too Many Requests: retry after 17"


def test_send_429_without_parameters_uses_the_retry_after_header(provider, fake_telegram):
    fake_telegram.fail_next(
        1, FakeResponse(429, "Too Many Requests", {"Retry-After": "5"}, content_type="text/plain")
    )
    with pytest.raises(RateLimited) as caught:
        provider.send(out())
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize(
    "response",
    [
        FakeTelegram.server_error(502),
        FakeResponse(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
    ],
)
def test_send_5xx_is_transient(provider, fake_telegram, response):
    fake_telegram.fail_next(1, response)
    with pytest.raises(TransientFailure) as caught:
        provider.send(out())
    assert not isinstance(caught.value, RateLimited | AmbiguousFailure)
    assert caught.value.code == str(response.status)


def test_send_read_timeout_is_ambiguous_and_does_not_leak_the_token(provider, fake_telegram, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.2
    fake_telegram.delay_next(1, 1.0)
    with pytest.raises(AmbiguousFailure) as caught:
        provider.send(out())
    assert caught.value.code == "read_timeout"
    assert_token_not_leaked(caught.value)


def test_send_connection_refused_is_transient_and_does_not_leak_the_token(channel):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel.config = {**channel.config, "api_base_url": f"http://127.0.0.1:{port}"}
    with pytest.raises(TransientFailure) as caught:
        TelegramProvider(channel).send(out())
    assert not isinstance(caught.value, AmbiguousFailure)
    assert caught.value.code == "connection_error"
    assert_token_not_leaked(caught.value)


def test_send_connection_dropped_after_sending_is_ambiguous(provider, fake_telegram):
    fake_telegram.drop_next(1)
    with pytest.raises(AmbiguousFailure) as caught:
        provider.send(out())
    assert caught.value.code == "connection_dropped"
    assert len(fake_telegram.received("sendMessage")) == 1
    assert_token_not_leaked(caught.value)


def test_send_to_a_user_who_blocked_the_bot(provider, fake_telegram):
    fake_telegram.blocked.add(CHAT)
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out())
    assert (caught.value.code, caught.value.reason) == ("403", "Forbidden: bot was blocked by the user")


def test_send_to_a_migrated_group_names_the_new_chat_id(provider, fake_telegram):
    fake_telegram.migrated["-4012345678"] = -1004012345678
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out(to="-4012345678"))
    assert caught.value.code == "400"
    assert "group chat was upgraded to a supergroup chat" in caught.value.reason
    assert "-1004012345678" in caught.value.reason


def test_send_bad_request_uses_telegram_description(provider):
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out(to="not-a-chat"))
    assert (caught.value.code, caught.value.reason) == ("400", "Bad Request: chat not found")


def test_send_with_a_revoked_token_is_permanent(provider, fake_telegram):
    fake_telegram.accepted_tokens = {"7000000001:another-token"}
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out())
    assert (caught.value.code, caught.value.reason) == ("401", "Unauthorized")
    assert TOKEN_SECRET_PART not in str(caught.value)


def test_send_failing_after_a_delivered_part_reports_a_partial_send(provider, fake_telegram):
    fake_telegram.fail_next(1, FakeTelegram.server_error(502), path_contains="sendMessage")
    with pytest.raises(PermanentFailure) as caught:
        provider.send(out("Details: " + "x" * 1100, attachments=({"url": "https://cdn.example.com/a.jpg"},)))
    assert caught.value.code == "partial_send"
    assert f"part 2 of 2 failed after {CHAT}:1 was delivered" in caught.value.reason
    assert isinstance(caught.value.__cause__, TransientFailure)


# --- webhook, polling, media, check -----------------------------------------------------------------


def test_on_activate_in_webhook_mode_sets_the_webhook(provider, fake_telegram, channel, settings):
    settings.PUBLIC_BASE_URL = "https://alexia.example.com"
    provider.on_activate()
    assert fake_telegram.webhook == {
        "url": channel.webhook_url,
        "secret_token": SECRET,
        "allowed_updates": ALLOWED_UPDATES,
    }
    assert channel.webhook_url.startswith("https://alexia.example.com/webhooks/telegram/")
    assert ALLOWED_UPDATES == [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
        "message_reaction",
    ]


def test_on_activate_with_a_plain_http_url_is_a_configuration_error(provider):
    with pytest.raises(ConfigurationError, match="HTTPS url must be provided for webhook"):
        provider.on_activate()


def test_on_activate_in_polling_mode_deletes_the_webhook(channel, fake_telegram):
    fake_telegram.webhook = {"url": "https://old.example.com/hook"}
    channel.config = {**channel.config, "mode": "polling"}
    TelegramProvider(channel).on_activate()
    assert fake_telegram.webhook is None
    assert fake_telegram.received("setWebhook") == []
    assert fake_telegram.sent("deleteWebhook") == [{"drop_pending_updates": False}]


def test_on_pause_deletes_the_webhook(provider, fake_telegram):
    fake_telegram.webhook = {"url": "https://alexia.example.com/hook"}
    provider.on_pause()
    assert fake_telegram.webhook is None


def test_get_updates_returns_each_update_as_its_own_json(provider, fake_telegram, built_provider):
    fake_telegram.enqueue_update(
        FakeTelegram.update_text(900, 781234560, "first", first_name="Lucía", date=1718000000)
    )
    fake_telegram.enqueue_update(payload("callback_query__button"))

    updates = provider.get_updates(offset=None, timeout=0)

    assert [update_id for update_id, _ in updates] == [900, 501200015]
    (message,) = built_provider.parse(updates[0][1], {})
    assert (message.platform_message_id, message.text, message.sender_name) == (
        "781234560:900",
        "first",
        "Lucía",
    )
    assert json.loads(updates[1][1]) == json.loads(payload_bytes("callback_query__button"))
    assert provider.get_updates(offset=501200016, timeout=0) == []


def test_get_updates_long_polls_until_an_update_arrives(provider, fake_telegram):
    update = FakeTelegram.update_text(901, 652000111, "hello?")
    timer = threading.Timer(0.2, fake_telegram.enqueue_update, args=(update,))
    timer.start()
    try:
        updates = provider.get_updates(offset=901, timeout=3)
    finally:
        timer.cancel()
    assert [u for u, _ in updates] == [901]
    assert fake_telegram.sent("getUpdates")[0] == {
        "timeout": 3,
        "allowed_updates": ALLOWED_UPDATES,
        "offset": 901,
    }


def test_get_updates_while_a_webhook_is_set_is_a_conflict(provider, fake_telegram):
    fake_telegram.webhook = {"url": "https://alexia.example.com/hook"}
    with pytest.raises(PermanentFailure) as caught:
        provider.get_updates(offset=None, timeout=0)
    assert caught.value.code == "409"
    assert caught.value.reason.startswith("Conflict: can't use getUpdates method while webhook is active")


def test_download_media_fetches_the_file_by_file_id(provider, fake_telegram, built_provider):
    (message,) = built_provider.parse(payload_bytes("message__photo_caption"), {})
    (attachment,) = message.attachments
    fake_telegram.add_file(attachment.platform_media_id, b"\xff\xd8jpeg-bytes", "photos/file_12.jpg")

    assert provider.download_media(attachment) == (b"\xff\xd8jpeg-bytes", "image/jpeg")
    assert fake_telegram.sent("getFile") == [{"file_id": "AgACAgQAAxkBAAIBQ2ZlargeAAE"}]


def test_download_media_guesses_the_type_from_the_file_path(provider, fake_telegram):
    fake_telegram.add_file("BQACAgQAAxkBAAIBRGZdocAAE", b"%PDF", "documents/file_3.pdf")
    attachment = InboundAttachment(kind="document", platform_media_id="BQACAgQAAxkBAAIBRGZdocAAE")
    assert provider.download_media(attachment) == (b"%PDF", "application/pdf")


def test_download_media_with_an_unknown_file_id(provider):
    with pytest.raises(PermanentFailure) as caught:
        provider.download_media(InboundAttachment(kind="image", platform_media_id="AgAC-unknown"))
    assert (caught.value.code, caught.value.reason) == ("400", "Bad Request: invalid file id")


def test_check_reports_the_bot_username(provider):
    result = provider.check()
    assert (result.ok, result.detail) == (True, "Connected as @alexia_test_bot")


def test_check_reports_telegram_description_on_a_bad_token(provider, fake_telegram):
    fake_telegram.accepted_tokens = set()
    result = provider.check()
    assert (result.ok, result.detail) == (False, "Unauthorized")


def test_lookup_key_is_the_bot_id(provider):
    assert provider.lookup_key() == "7000000001"
