import pytest
from django.test import RequestFactory

from providers.errors import MalformedPayloadError, WebhookVerificationError
from providers.telegram import TelegramProvider
from tests.factories import ChannelFactory

from .conftest import BOT_TOKEN, SECRET, payload_bytes

BODY = payload_bytes("message__text")


def webhook_request(secret: str | None, content_type: str = "application/json", body: bytes = BODY):
    headers = {} if secret is None else {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret}
    return RequestFactory().post("/webhooks/telegram/tok/", data=body, content_type=content_type, **headers)


def test_verify_accepts_the_configured_secret(built_provider):
    built_provider.verify(webhook_request(SECRET))


def test_verify_rejects_a_missing_secret(built_provider):
    with pytest.raises(WebhookVerificationError, match="^Request did not include the secret token$"):
        built_provider.verify(webhook_request(None))


def test_verify_rejects_an_empty_secret_header(built_provider):
    with pytest.raises(WebhookVerificationError, match="did not include the secret token"):
        built_provider.verify(webhook_request(""))


def test_verify_rejects_a_wrong_secret(built_provider):
    with pytest.raises(WebhookVerificationError, match="^Request had the wrong secret token$"):
        built_provider.verify(webhook_request(SECRET + "x"))


def test_verify_rejects_a_secret_with_non_ascii_characters(built_provider):
    request = webhook_request(None)
    request.META["HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN"] = "tg-secret_ü"
    with pytest.raises(WebhookVerificationError, match="wrong secret token"):
        built_provider.verify(request)


def test_verify_rejects_a_non_json_content_type(built_provider):
    with pytest.raises(WebhookVerificationError, match="Content-Type application/json"):
        built_provider.verify(webhook_request(SECRET, content_type="text/plain"))


def test_verify_rejects_everything_when_the_channel_has_no_secret():
    channel = ChannelFactory.build(kind="telegram", credentials={"bot_token": BOT_TOKEN})
    with pytest.raises(WebhookVerificationError, match="no secret_token"):
        TelegramProvider(channel).verify(webhook_request(""))


def test_event_id_is_the_update_id(built_provider):
    assert built_provider.event_id(BODY, {}) == "501200001"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"update_id=5", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"message": {}}', "no integer update_id"),
        (b'{"update_id": "5"}', "no integer update_id"),
        (b'{"update_id": true}', "no integer update_id"),
    ],
)
def test_event_id_rejects_bodies_that_are_not_updates(built_provider, body, reason):
    with pytest.raises(MalformedPayloadError, match=reason):
        built_provider.event_id(body, {})
