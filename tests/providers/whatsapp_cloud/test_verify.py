"""X-Hub-Signature-256 verification and the hub.challenge GET handshake, signed in the tests."""

import hashlib
import hmac
import json

import pytest

from providers.errors import WebhookVerificationError
from providers.fakes.whatsapp import FakeWhatsApp, sign
from providers.models import Channel
from providers.whatsapp_cloud import WhatsAppCloudProvider

APP_SECRET = "4f1c0a9e7b2d48c6a1e3f5d7b9c0e2a4"
VERIFY_TOKEN = "hub-token-Zx81"
PATH = "/webhooks/whatsapp_cloud/some-token/"


@pytest.fixture
def provider() -> WhatsAppCloudProvider:
    channel = Channel(kind="whatsapp_cloud", config={"phone_number_id": "106540352242922"})
    channel.credentials = {"access_token": "EAAG-x", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}
    return WhatsAppCloudProvider(channel)


@pytest.fixture
def body() -> bytes:
    payload = FakeWhatsApp.inbound_text_payload(
        "106540352242922", "4915123456789", "Grüße 👋", "Lena", timestamp=1
    )
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def post(rf, body: bytes, **headers):
    return rf.post(PATH, data=body, content_type="application/json", **headers)


def test_sign_is_hmac_sha256_hex_with_prefix(body):
    expected = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, APP_SECRET) == f"sha256={expected}"


def test_good_signature_passes(rf, provider, body):
    provider.verify(post(rf, body, HTTP_X_HUB_SIGNATURE_256=sign(body, APP_SECRET)))


def test_uppercase_hex_passes(rf, provider, body):
    signature = "sha256=" + sign(body, APP_SECRET).removeprefix("sha256=").upper()
    provider.verify(post(rf, body, HTTP_X_HUB_SIGNATURE_256=signature))


def test_missing_signature_is_refused(rf, provider, body):
    with pytest.raises(WebhookVerificationError, match="missing"):
        provider.verify(post(rf, body))


def test_wrong_secret_is_refused(rf, provider, body):
    with pytest.raises(WebhookVerificationError, match="does not match"):
        provider.verify(post(rf, body, HTTP_X_HUB_SIGNATURE_256=sign(body, "another-app-secret")))


def test_tampered_body_is_refused(rf, provider, body):
    signature = sign(body, APP_SECRET)
    tampered = body.replace(b"Lena", b"Lenz")
    with pytest.raises(WebhookVerificationError, match="does not match"):
        provider.verify(post(rf, tampered, HTTP_X_HUB_SIGNATURE_256=signature))


def test_reserialized_body_is_refused(rf, provider, body):
    """The signature covers the raw bytes: the same JSON with other spacing does not verify."""
    signature = sign(body, APP_SECRET)
    respaced = json.dumps(json.loads(body)).encode()
    with pytest.raises(WebhookVerificationError):
        provider.verify(post(rf, respaced, HTTP_X_HUB_SIGNATURE_256=signature))


def test_signature_without_prefix_is_refused(rf, provider, body):
    bare = sign(body, APP_SECRET).removeprefix("sha256=")
    with pytest.raises(WebhookVerificationError, match="sha256="):
        provider.verify(post(rf, body, HTTP_X_HUB_SIGNATURE_256=bare))


def test_legacy_sha1_header_alone_is_refused(rf, provider, body):
    legacy = "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()
    with pytest.raises(WebhookVerificationError, match="missing"):
        provider.verify(post(rf, body, HTTP_X_HUB_SIGNATURE=legacy))


def test_channel_without_app_secret_refuses_everything(rf, body):
    channel = Channel(kind="whatsapp_cloud", config={"phone_number_id": "106540352242922"})
    channel.credentials = {"access_token": "EAAG-x", "verify_token": VERIFY_TOKEN}
    with pytest.raises(WebhookVerificationError, match="app_secret"):
        WhatsAppCloudProvider(channel).verify(post(rf, body, HTTP_X_HUB_SIGNATURE_256=sign(body, "")))


# --- GET handshake ----------------------------------------------------------------------------------------
def test_handshake_echoes_the_challenge(rf, provider):
    request = rf.get(
        PATH, {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    response = provider.handshake(request)
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    ],
)
def test_handshake_refuses_without_echo(rf, provider, params):
    response = provider.handshake(rf.get(PATH, params))
    assert response.status_code == 403
    assert b"1158201444" not in response.content


def test_get_without_hub_params_is_not_a_handshake(rf, provider):
    assert provider.handshake(rf.get(PATH)) is None
    assert provider.handshake(rf.get(PATH, {"foo": "bar"})) is None


def test_handshake_with_no_verify_token_configured_is_refused(rf):
    channel = Channel(kind="whatsapp_cloud", config={"phone_number_id": "1"})
    channel.credentials = {"app_secret": APP_SECRET}
    request = rf.get(PATH, {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"})
    assert WhatsAppCloudProvider(channel).handshake(request).status_code == 403
