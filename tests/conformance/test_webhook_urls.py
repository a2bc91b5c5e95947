"""Every accepted platform sample, posted through the real webhook URL with the platform's real
signature scheme, stored once and processed by the real pipeline (WhatsApp, Telegram, Twilio).

The samples are read in place from ../shared/platform-samples (never copied into the project).
"""

import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from inbox.models import Message
from inbox.services.webhooks import webhook_event_process
from providers.fakes.twilio import sign as twilio_sign
from providers.models import WebhookEvent
from providers.whatsapp_cloud import phone_number_ids
from providers.whatsapp_cloud import sign as meta_sign

from ..factories import ChannelFactory, ConversationFactory, MessageFactory

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples"
if not SAMPLES.is_dir():
    pytest.skip(f"platform samples not found at {SAMPLES} (../shared is absent)", allow_module_level=True)

pytestmark = [pytest.mark.conformance, pytest.mark.django_db]

WA = SAMPLES / "whatsapp"
TG = SAMPLES / "telegram"
TW = SAMPLES / "twilio"

WA_BODIES = sorted(
    p.name for p in WA.glob("*.json") if p.name.startswith(("inbound_", "courier_", "status_"))
)
TG_BODIES = sorted(p.name for p in TG.glob("update_*.json"))
TW_BODIES = sorted(p.name for p in TW.glob("*.urlencoded"))


def _status_ids(payload: dict) -> list[str]:
    return [
        s["id"]
        for e in payload.get("entry", [])
        for c in e.get("changes", [])
        for s in c.get("value", {}).get("statuses", []) or []
    ]


def _outbound(channel, platform_message_id: str) -> Message:
    conversation = ConversationFactory(organization=channel.organization, channel=channel)
    return MessageFactory(
        conversation=conversation, direction="out", status="sending", platform_message_id=platform_message_id
    )


def _process_and_check(event: WebhookEvent) -> str:
    status = webhook_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert status in ("processed",), f"{event.event_id}: {status} {event.error}"
    return status


# --- WhatsApp Cloud ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", WA_BODIES)
def test_whatsapp_sample_through_webhook_url(client, org, name):
    body = (WA / name).read_bytes()
    payload = json.loads(body)
    numbers = phone_number_ids(body)
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    channel.config = {**channel.config, "phone_number_id": numbers[0] if numbers else "1"}
    channel.save()
    outbound = [_outbound(channel, wamid) for wamid in dict.fromkeys(_status_ids(payload))]

    url = f"/webhooks/whatsapp_cloud/{channel.webhook_token}/"
    headers = {"HTTP_X_HUB_SIGNATURE_256": meta_sign(body, "test-app-secret")}
    for _ in range(2):  # Meta redelivers: stored once
        response = client.post(url, data=body, content_type="application/json", **headers)
        assert response.status_code == 200, response.content
    assert WebhookEvent.objects.filter(channel=channel).count() == 1
    _process_and_check(WebhookEvent.objects.get(channel=channel))
    for message in outbound:
        message.refresh_from_db()
        assert message.status in ("sent", "delivered", "read", "failed")
        if message.status == "failed":
            assert message.error_code and message.error_reason


def test_real_meta_signed_vector_through_webhook_url(client, org):
    vector = json.loads((WA / "signature_vector.json").read_text())
    body = (WA / "signature_body.raw").read_bytes()
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    creds = channel.credentials
    creds["app_secret"] = vector["secret"]
    channel.credentials = creds
    channel.save()
    url = f"/webhooks/whatsapp_cloud/{channel.webhook_token}/"
    good = client.post(
        url, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=vector["expected"]
    )
    assert good.status_code == 200
    assert WebhookEvent.objects.filter(channel=channel).count() == 1


@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sha1=abc"])
def test_whatsapp_bad_signature_is_refused_and_nothing_stored(client, org, header):
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    body = (WA / "inbound_text.json").read_bytes()
    extra = {"HTTP_X_HUB_SIGNATURE_256": header} if header else {}
    response = client.post(
        f"/webhooks/whatsapp_cloud/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_whatsapp_malformed_body_is_400_with_reason(client, org):
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    body = b'{"not": "a whatsapp body"'
    response = client.post(
        f"/webhooks/whatsapp_cloud/{channel.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=meta_sign(body, "test-app-secret"),
    )
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]
    assert WebhookEvent.objects.count() == 0


def test_whatsapp_verification_handshake_through_url(client, org):
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud")
    url = f"/webhooks/whatsapp_cloud/{channel.webhook_token}/"
    ok = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    )
    assert ok.status_code == 200 and ok.content == b"1158201444"
    bad = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1158201444"}
    )
    assert bad.status_code == 403 and b"1158201444" not in bad.content


def test_unknown_token_is_404(client, db):
    assert (
        client.post(
            "/webhooks/whatsapp_cloud/no-such-token/", data=b"{}", content_type="application/json"
        ).status_code
        == 404
    )


# --- Telegram ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TG_BODIES)
def test_telegram_sample_through_webhook_url(client, org, name):
    body = (TG / name).read_bytes()
    channel = ChannelFactory(organization=org, kind="telegram")
    secret = channel.credentials["secret_token"]
    url = f"/webhooks/telegram/{channel.webhook_token}/"
    for _ in range(3):  # Telegram redelivers until it gets a 2xx: stored once
        response = client.post(
            url, data=body, content_type="application/json", HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=secret
        )
        assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get(channel=channel)
    assert event.event_id == str(json.loads(body)["update_id"])
    _process_and_check(event)


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
def test_telegram_wrong_secret_is_refused(client, org, secret):
    channel = ChannelFactory(organization=org, kind="telegram")
    extra = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret} if secret else {}
    body = (TG / "update_message_text.json").read_bytes()
    response = client.post(
        f"/webhooks/telegram/{channel.webhook_token}/", data=body, content_type="application/json", **extra
    )
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


# --- Twilio --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TW_BODIES)
def test_twilio_sample_through_webhook_url(client, org, name):
    body = (TW / name).read_bytes()
    fields = parse_qs(body.decode(), keep_blank_values=True)
    is_whatsapp = fields.get("From", [""])[0].startswith("whatsapp:") or fields.get("To", [""])[0].startswith(
        "whatsapp:"
    )
    kind = "twilio_whatsapp" if is_whatsapp else "twilio_sms"
    channel = ChannelFactory(organization=org, kind=kind)
    sid = fields.get("MessageSid", fields.get("SmsSid", [""]))[0]
    outbound = (
        _outbound(channel, sid)
        if "MessageStatus" in fields and fields["MessageStatus"][0] != "received"
        else None
    )

    path = f"/webhooks/{kind}/{channel.webhook_token}/"
    signature = twilio_sign(
        f"http://testserver{path}",
        {k: v if len(v) > 1 else v[0] for k, v in fields.items()},
        "twilio-auth-token",
    )
    for _ in range(2):
        response = client.post(
            path,
            data=body,
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=signature,
        )
        assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get(channel=channel)
    _process_and_check(event)
    if outbound is not None:
        outbound.refresh_from_db()
        expected = {
            "sent": "sent",
            "delivered": "delivered",
            "read": "read",
            "failed": "failed",
            "undelivered": "failed",
        }
        assert outbound.status == expected[fields["MessageStatus"][0]]
        if outbound.status == "failed":
            assert outbound.error_code == fields["ErrorCode"][0]
    else:
        assert Message.objects.filter(channel=channel, direction="in").count() == 1


def test_twilio_signature_over_another_url_is_refused(client, org):
    channel = ChannelFactory(organization=org, kind="twilio_sms")
    body = (TW / "inbound_sms_text.urlencoded").read_bytes()
    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    signature = twilio_sign("https://elsewhere.example.com/hook", fields, "twilio-auth-token")
    response = client.post(
        f"/webhooks/twilio_sms/{channel.webhook_token}/",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0
