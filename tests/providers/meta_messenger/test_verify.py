"""X-Hub-Signature-256 verification and the hub.challenge GET handshake, signed in the tests."""

import hashlib
import hmac
import json

import pytest

from providers.errors import WebhookVerificationError
from providers.fakes.meta import FakeMeta, sign
from providers.meta_messenger import InstagramProvider, MessengerProvider
from providers.models import Channel

APP_SECRET = "9b1f2e7c4a6d48e0b3c5d7f9a1e3c5b7"
VERIFY_TOKEN = "hub-token-Mq27"
PAGE_ID = "1234567890"
IG_ID = "17841400000000000"


def make(kind: str, **credentials) -> MessengerProvider:
    config = {"page_id": PAGE_ID} if kind == "messenger" else {"instagram_account_id": IG_ID}
    channel = Channel(kind=kind, config=config)
    channel.credentials = credentials or {
        "page_access_token": "EAAP-x",
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    }
    return (InstagramProvider if kind == "instagram" else MessengerProvider)(channel)


@pytest.fixture(params=["messenger", "instagram"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def body(kind) -> bytes:
    account, object_type = (PAGE_ID, "page") if kind == "messenger" else (IG_ID, "instagram")
    payload = FakeMeta.text_payload(
        account, "24683579135792468", "Grüße 👋", mid="m_1", object_type=object_type
    )
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def post(rf, kind: str, body: bytes, **headers):
    return rf.post(f"/webhooks/{kind}/some-token/", data=body, content_type="application/json", **headers)


def test_sign_is_hmac_sha256_hex_with_prefix(body):
    assert (
        sign(body, APP_SECRET) == "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    )


def test_good_signature_passes(rf, kind, body):
    make(kind).verify(post(rf, kind, body, HTTP_X_HUB_SIGNATURE_256=sign(body, APP_SECRET)))


def test_missing_signature_is_refused(rf, kind, body):
    with pytest.raises(WebhookVerificationError, match="missing"):
        make(kind).verify(post(rf, kind, body))


def test_wrong_secret_is_refused(rf, kind, body):
    with pytest.raises(WebhookVerificationError, match="does not match"):
        make(kind).verify(post(rf, kind, body, HTTP_X_HUB_SIGNATURE_256=sign(body, "other-app-secret")))


def test_tampered_body_is_refused(rf, kind, body):
    signature = sign(body, APP_SECRET)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        make(kind).verify(post(rf, kind, body.replace(b"m_1", b"m_2"), HTTP_X_HUB_SIGNATURE_256=signature))


def test_signature_without_prefix_is_refused(rf, kind, body):
    bare = sign(body, APP_SECRET).removeprefix("sha256=")
    with pytest.raises(WebhookVerificationError, match="sha256="):
        make(kind).verify(post(rf, kind, body, HTTP_X_HUB_SIGNATURE_256=bare))


def test_legacy_sha1_header_alone_is_refused(rf, kind, body):
    legacy = "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()
    with pytest.raises(WebhookVerificationError, match="missing"):
        make(kind).verify(post(rf, kind, body, HTTP_X_HUB_SIGNATURE=legacy))


def test_channel_without_app_secret_refuses_everything(rf, kind, body):
    prov = make(kind, page_access_token="EAAP-x", verify_token=VERIFY_TOKEN)
    with pytest.raises(WebhookVerificationError, match="app_secret"):
        prov.verify(post(rf, kind, body, HTTP_X_HUB_SIGNATURE_256=sign(body, "")))


# --- GET handshake ----------------------------------------------------------------------------------------
def test_handshake_echoes_the_challenge(rf, kind):
    request = rf.get(
        "/", {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8675309"}
    )
    response = make(kind).handshake(request)
    assert (response.status_code, response.content) == (200, b"8675309")
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "8675309"},
        {"hub.mode": "subscribe", "hub.challenge": "8675309"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8675309"},
    ],
)
def test_handshake_refuses_without_echo(rf, kind, params):
    response = make(kind).handshake(rf.get("/", params))
    assert response.status_code == 403
    assert b"8675309" not in response.content


def test_get_without_hub_params_is_not_a_handshake(rf, kind):
    assert make(kind).handshake(rf.get("/")) is None
