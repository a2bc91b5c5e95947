"""Conformance: every Telegram sample of ../shared/platform-samples/telegram, read in place.

Updates go through event_id() and parse(); the secret-token vectors through verify(); the recorded
API responses (errors, successes, the teloxide error-description catalog) are served by the local fake
Telegram and driven through send(), so the error mapping is checked against the platform's own bodies.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import RequestFactory

from providers.base import ContactEvent, InboundAttachment, InboundMessage, OutboundMessage
from providers.errors import PermanentFailure, RateLimited, WebhookVerificationError
from providers.fakes.server import FakeResponse
from providers.fakes.telegram import FakeTelegram
from providers.telegram import ALLOWED_UPDATES, NO_DATE, TelegramProvider
from tests.factories import ChannelFactory

pytestmark = pytest.mark.conformance

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples"
if not SAMPLES.is_dir():
    pytest.skip(f"platform samples not found at {SAMPLES}", allow_module_level=True)
TELEGRAM = SAMPLES / "telegram"
BOT_TOKEN = "5550001111:AAE-conformanceToken_123"


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


NIC = {"sender_kind": "telegram", "sender_value": "3527065", "sender_name": "Nic Pottier"}
WAFFLE = {"sender_kind": "telegram", "sender_value": "218485655", "sender_name": "Waffle"}

# sample file -> the one event it must parse to (attributes checked one by one).
UPDATES: dict[str, dict] = {
    "update_message_text.json": {
        **NIC,
        "platform_message_id": "3527065:41",
        "type": "text",
        "text": "Hello World",
        "timestamp": at(1454119029),
    },
    "update_message_start_command.json": {
        **NIC,
        "platform_message_id": "3527065:41",
        "type": "text",
        "text": "/start",
        "timestamp": at(1454119029),
    },
    "update_message_sticker.json": {
        **NIC,
        "platform_message_id": "3527065:44",
        "type": "media",
        "attachments": (
            InboundAttachment(
                kind="sticker",
                content_type="image/webp",
                platform_media_id="BQADAwADRQADyIsGAAHtBskMy6GoLAI",
                size=38440,
            ),
        ),
    },
    "update_message_photo.json": {
        **NIC,
        "platform_message_id": "3527065:85",
        "type": "media",
        "text": "Photo Caption",
        "attachments": (
            InboundAttachment(
                kind="image",
                content_type="image/jpeg",
                platform_media_id="AgADAQADtKcxG4LRUUQSQVUjfJIiiF8G6C8ABA9NJzFdXskaincBAAEC",
                size=104737,
            ),
        ),
    },
    "update_message_video.json": {
        **NIC,
        "platform_message_id": "3527065:86",
        "type": "media",
        "attachments": (
            InboundAttachment(
                kind="video",
                content_type="video/mp4",
                platform_media_id="BAADAQADBgADgtFRRPFTAAHxLVw76wI",
                size=257507,
            ),
        ),
    },
    "update_message_voice.json": {
        **NIC,
        "platform_message_id": "3527065:91",
        "type": "media",
        "attachments": (
            InboundAttachment(
                kind="voice",
                content_type="audio/ogg",
                platform_media_id="AwADAQADCQADgtFRRGn8KrC-0D_MAg",
                size=4288,
            ),
        ),
    },
    "update_message_document.json": {
        **NIC,
        "platform_message_id": "3527065:92",
        "type": "media",
        "attachments": (
            InboundAttachment(
                kind="document",
                content_type="application/vnd.ms-excel",
                filename="TabFig2015prel.xls",
                platform_media_id="BQADAQADCgADgtFRRPrv9GQ95f8eAg",
                size=4540928,
            ),
        ),
    },
    "update_message_location.json": {
        **NIC,
        "platform_message_id": "3527065:94",
        "type": "location",
        "content": {"latitude": -2.890287, "longitude": -79.004333, "title": "", "address": ""},
    },
    "update_message_venue.json": {
        **NIC,
        "platform_message_id": "3527065:95",
        "type": "location",
        "content": {
            "latitude": -2.898944,
            "longitude": -79.006835,
            "title": "Cuenca",
            "address": "Provincia del Azuay",
        },
    },
    "update_message_contact.json": {
        **NIC,
        "platform_message_id": "3527065:96",
        "type": "contact",
        "content": {
            "name": "Adolf Taxi",
            "phone_number": "0788531373",
            "first_name": "Adolf Taxi",
            "last_name": "",
        },
    },
    "update_message_web_app_data.json": {
        **NIC,
        "platform_message_id": "3527065:97",
        "type": "interactive",
        "text": '{"first_name": "Bob", "age": "32"}',
        "content": {
            "kind": "web_app_data",
            "data": '{"first_name": "Bob", "age": "32"}',
            "button_text": "Register",
        },
    },
    "update_message_text_teloxide.json": {
        **WAFFLE,
        "platform_message_id": "218485655:6557",
        "type": "text",
        "text": "hello there",
        "timestamp": at(1569518342),
        "is_edit": False,
    },
    "update_edited_message.json": {
        **WAFFLE,
        "platform_message_id": "218485655:6557",
        "type": "text",
        "text": "hello there (edited)",
        "timestamp": at(1569518400),
        "is_edit": True,
    },
    "update_supergroup_bot_command_reply.json": {
        "sender_value": "-1001293752024",
        "sender_name": "CryptoInside Chat",
        "platform_message_id": "-1001293752024:134546",
        "type": "text",
        "text": "/report",
        "reply_to_platform_id": "-1001293752024:134545",
        "content": {
            "chat_type": "supergroup",
            "from": {"id": "5964236329", "name": "the Cable Guy", "username": "spacewhaleblues"},
            "command": "/report",
        },
    },
    "update_message_reaction.json": {
        "sender_value": "-1002184233434",
        "sender_name": "Test",
        "platform_message_id": "reaction:71651249",
        "type": "reaction",
        "text": "🌭",
        "reply_to_platform_id": "-1002184233434:35",
        "timestamp": at(1721306082),
    },
    "update_callback_query_chat_message.json": {
        **WAFFLE,
        "platform_message_id": "cb:4382bfdwdsb323b2d9",
        "type": "interactive",
        "text": "yes",
        "reply_to_platform_id": "218485655:6558",
        "timestamp": at(1569518400),
    },
    "update_callback_query_inline.json": {
        "sender_value": "12345",
        "sender_name": "firstName",
        "platform_message_id": "cb:id",
        "type": "interactive",
        "text": "some_data",
        "timestamp": NO_DATE,
        "content": {
            "callback_query_id": "id",
            "data": "some_data",
            "inline_message_id": "i_m_id",
            "chat_instance": "123456",
            "game_short_name": "game_name",
            "from": {"id": "12345", "name": "firstName"},
        },
    },
    "update_my_chat_member_kicked_bot_blocked.json": {
        "event_class": ContactEvent,
        "sender_kind": "telegram",
        "sender_value": "0",
        "event": "blocked",
        "timestamp": at(1644677726),
    },
}

# sample file -> (HTTP status the fake answers with, expected error class, code, text in the reason).
# The two python-telegram-bot bodies are served with 400, as in PTB's own tests: `parameters` decide.
ERRORS: dict[str, tuple[int, type[Exception], str, str]] = {
    "response_error_400_bad_request.json": (400, PermanentFailure, "400", "Bad Request"),
    "response_error_400_chat_migrated.json": (400, PermanentFailure, "400", "chat id 123"),
    "response_error_403_bot_blocked.json": (
        403,
        PermanentFailure,
        "403",
        "Forbidden: bot was blocked by the user",
    ),
    "response_error_429_retry_after.json": (429, RateLimited, "429", "Too Many Requests: retry after 30"),
    "response_error_retry_after_ptb.json": (400, RateLimited, "429", "Too Many Requests"),
}
RETRY_AFTER = {"response_error_429_retry_after.json": 30.0, "response_error_retry_after_ptb.json": 42.0}

SUCCESSES = {
    "response_sendMessage_ok_minimal.json": "3527065:133",
    "response_sendMessage_ok_full_real_capture.json": "-1001234567890:9",
}
OTHER = {
    "webhook_secret_token_vector.json",
    "error_descriptions_teloxide_catalog.json",
    "outbound_api.json",
    "SOURCES.md",
}

STATUS_BY_PREFIX = {"Bad Request": 400, "Unauthorized": 401, "Forbidden": 403, "Conflict": 409}


def read(name: str) -> bytes:
    return (TELEGRAM / name).read_bytes()


def make_provider(api_base: str = "http://127.0.0.1:9", secret: str = "SecretToken") -> TelegramProvider:
    channel = ChannelFactory.build(
        kind="telegram",
        config={"mode": "webhook", "api_base_url": api_base},
        credentials={"bot_token": BOT_TOKEN, "secret_token": secret},
    )
    return TelegramProvider(channel)


@pytest.fixture(scope="module")
def fake():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def provider(fake) -> TelegramProvider:
    fake.reset()
    return make_provider(fake.base_url)


def test_every_sample_file_is_covered():
    covered = set(UPDATES) | set(ERRORS) | set(SUCCESSES) | OTHER
    assert {p.name for p in TELEGRAM.iterdir()} == covered


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_update_sample(name):
    body = read(name)
    expected = dict(UPDATES[name])
    event_class = expected.pop("event_class", InboundMessage)
    provider = make_provider()

    assert provider.event_id(body, {}) == str(json.loads(body)["update_id"])
    (event,) = provider.parse(body, {"Content-Type": "application/json"})
    assert isinstance(event, event_class)
    assert {key: getattr(event, key) for key in expected} == expected


@pytest.mark.parametrize(
    "case",
    json.loads(read("webhook_secret_token_vector.json"))["cases"],
    ids=lambda c: f"{c['header_value']}-{c.get('content_type', 'json')}",
)
def test_secret_token_vector(case):
    vector = json.loads(read("webhook_secret_token_vector.json"))
    headers = {}
    if case["header_value"] is not None:
        headers["HTTP_" + vector["header"].upper().replace("-", "_")] = case["header_value"]
    request = RequestFactory().post(
        "/webhooks/telegram/t/",
        data=vector["body"].encode(),
        content_type=case.get("content_type", "application/json"),
        **headers,
    )
    provider = make_provider(secret=case["configured_secret"])
    if case["expected"].startswith("accept"):
        provider.verify(request)
        (message,) = provider.parse(request.body, {})
        assert (message.platform_message_id, message.text) == ("218485655:6557", "hello there")
    else:
        with pytest.raises(WebhookVerificationError) as caught:
            provider.verify(request)
        quoted = case["expected"].split("'")[1] if "'" in case["expected"] else ""
        assert quoted in str(caught.value)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_response_sample(name, provider, fake):
    status, error_class, code, reason_part = ERRORS[name]
    fake.fail_next(1, FakeResponse(status, read(name)))
    with pytest.raises(error_class) as caught:
        provider.send(OutboundMessage(message_id=1, to="3527065", text="Simple Message"))
    assert caught.value.code == code
    assert reason_part in caught.value.reason
    if error_class is RateLimited:
        assert caught.value.retry_after == RETRY_AFTER[name]


@pytest.mark.parametrize("name", sorted(SUCCESSES))
def test_send_message_success_sample(name, provider, fake):
    fake.fail_next(1, FakeResponse(200, read(name)))
    result = provider.send(OutboundMessage(message_id=1, to="3527065", text="Hello World"))
    assert result.platform_message_id == SUCCESSES[name]


@pytest.mark.parametrize(
    "entry", json.loads(read("error_descriptions_teloxide_catalog.json")), ids=lambda e: e["teloxide_variant"]
)
def test_error_description_catalog(entry, provider, fake):
    description = entry["description"]
    status = STATUS_BY_PREFIX[description.split(":", 1)[0]]
    fake.fail_next(1, FakeResponse(status, {"ok": False, "error_code": status, "description": description}))
    with pytest.raises(PermanentFailure) as caught:
        provider.send(OutboundMessage(message_id=1, to="3527065", text="hi"))
    assert (caught.value.code, caught.value.reason) == (str(status), description)


def test_outbound_api_set_webhook_and_send_photo_shapes(provider, fake):
    api = json.loads(read("outbound_api.json"))
    fake.fail_next(1, FakeResponse(200, api["setWebhook"]["success_response"]), path_contains="setWebhook")
    assert provider.set_webhook("https://example.com/telegram/webhook", "SecretToken") is True
    (sent,) = fake.sent("setWebhook")
    assert set(sent) <= set(api["setWebhook"]["request"])
    assert set(api["setWebhook"]["request"]["allowed_updates"]) <= set(ALLOWED_UPDATES)
    assert (sent["url"], sent["secret_token"]) == ("https://example.com/telegram/webhook", "SecretToken")

    example = api["sendPhoto"]["request_form_example"]
    fake.fail_next(1, FakeResponse(200, api["sendPhoto"]["success_response"]), path_contains="sendPhoto")
    result = provider.send(
        OutboundMessage(
            message_id=2,
            to=example["chat_id"],
            text=example["caption"],
            attachments=({"url": example["photo"], "content_type": "image/jpeg"},),
        )
    )
    assert result.platform_message_id == f"{example['chat_id']}:133"
    (photo,) = fake.sent("sendPhoto")
    assert photo == {k: example[k] for k in ("chat_id", "photo", "caption")}
