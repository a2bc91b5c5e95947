"""E-mail (Mailgun, SendGrid, Postmark through django-anymail) against ../shared/platform-samples.

Every accepted file is read in place and POSTed to the channel's real webhook URL (inbound or
tracking) with that ESP's real security scheme: Mailgun's HMAC signature carried in the body, the
SendGrid Signed Event Webhook (ECDSA) vector with its public key, and basic auth (`webhook_secret`)
where the ESP signs nothing. The stored event is then parsed by EmailProvider.parse() exactly as the
worker does, and the result is compared with what the file says. Inbound mails also run through the
whole pipeline (webhook_event_process) into a conversation.
"""

import base64
import json
from pathlib import Path

import pytest
from django.test.client import encode_multipart

from inbox.models import Conversation, Message
from inbox.services.webhooks import webhook_event_process
from providers.base import ContactEvent, InboundMessage, StatusUpdate
from providers.models import WebhookEvent
from providers.registry import get_provider
from tests.factories import ChannelFactory

pytestmark = [pytest.mark.conformance, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples"
if not ROOT.is_dir():
    pytest.skip(f"platform samples not found at {ROOT}", allow_module_level=True)

MAILGUN_KEY = "TEST_WEBHOOK_SIGNING_KEY"  # the key every Mailgun sample is signed with (SOURCES.md)
BASIC = ("alexia", "s3cret-hook")
BOUNDARY = "AlexiaTestBoundary"
NOT_WEBHOOKS = {"SOURCES.md", "outbound_send_api.json", "signature_vectors.json", "signature_vector.json"}

# What each file must parse to: ("status", platform id, status) / ("contact", address, event) /
# ("inbound", sender, Message-ID or None, display text) / ("malformed", fragment of the reason).
EXPECTED: dict[str, list[tuple]] = {
    # --- Mailgun ---
    "mailgun/event_accepted_no_delivery_status.json": [],
    "mailgun/event_clicked.json": [],  # no message id in anymail's sample: nothing to attach it to
    "mailgun/event_complained.json": [("contact", "recipient@example.com", "undeliverable")],
    "mailgun/event_delivered.json": [
        ("status", "<20180812211713.1.DF5966851B4BAA99@example.org>", "delivered")
    ],
    "mailgun/event_failed_greylisted.json": [],  # temporary: Mailgun retries, nothing changes yet
    "mailgun/event_failed_permanent.json": [
        ("status", "<20180812214658.1.0DF563D0B3597700@example.org>", "failed"),
        ("contact", "invalid@example.com", "undeliverable"),
    ],
    "mailgun/event_failed_temporary.json": [],
    "mailgun/event_opened.json": [("status", "<20180812213139.1.BC6694A917BB7E6A@example.org>", "read")],
    "mailgun/event_rejected.json": [
        ("status", "<20180622220256.1.B31A451A2E5422BB@sandbox55887.mailgun.org>", "failed")
    ],
    "mailgun/event_unsubscribed.json": [("contact", "recipient@example.com", "opted_out")],
    "mailgun/inbound_route_forward_basic": [
        ("inbound", "from+test@example.org", "<CAEPk3R+4Zr@mail.example.org>", "stripped plaintext body")
    ],
    "mailgun/inbound_route_forward_mime": [
        ("inbound", "test@example.org", "<CAEPk3RKEx@mail.example.org>", "It's a body…")
    ],
    "mailgun/inbound_route_store_notification": [("malformed", "store() action")],
    "mailgun/legacy_form_bounced_invalid_mailbox": [("contact", "noreply@example.com", "undeliverable")],
    "mailgun/legacy_form_delivered": [
        ("status", "<20160421175529.19495.89030.B3AE3728@example.com>", "delivered")
    ],
    "mailgun/legacy_form_dropped_bounce": [
        ("status", "<20160421180324.70521.79375.96884DDB@example.com>", "failed"),
        ("contact", "bounce@example.com", "undeliverable"),
    ],
    "mailgun/legacy_form_dropped_spam": [],
    # --- SendGrid ---
    "sendgrid/event_batch_all_types.json": [
        ("status", "4ab185c2-0171-492f-9ce0-27de258efc99", "delivered"),
        ("status", "c74002d9-7ccb-4f67-8b8c-766cec03c9a6", "failed"),
        ("contact", "invalid@invalid", "undeliverable"),
        ("status", "<14c5d75ce93.dfd.64b469@ismtpd-555>", "failed"),
        ("contact", "example@example.com", "undeliverable"),
        ("status", "a36ec0f9-aabe-45c7-9a84-3e17afb5cb65", "failed"),
        ("contact", "unsubscribe@example.com", "opted_out"),
        ("status", "de212213-bb66-4302-8f3f-20acdb7a104e", "failed"),
        ("contact", "noreply@example.com", "undeliverable"),
        ("status", "44920b35-3e31-478b-bb67-b4f5e0c85ebc", "read"),
        ("status", "75de5af9-a090-4325-87f9-8c599ad66f60", "read"),
    ],
    "sendgrid/event_bounce.json": [
        ("status", "de212213-bb66-4302-8f3f-20acdb7a104e", "failed"),
        ("contact", "noreply@example.com", "undeliverable"),
    ],
    "sendgrid/event_click.json": [("status", "75de5af9-a090-4325-87f9-8c599ad66f60", "read")],
    "sendgrid/event_deferred.json": [],
    "sendgrid/event_delivered.json": [("status", "4ab185c2-0171-492f-9ce0-27de258efc99", "delivered")],
    "sendgrid/event_dropped_bounced_address.json": [
        ("status", "<14c5d75ce93.dfd.64b469@ismtpd-555>", "failed"),
        ("contact", "example@example.com", "undeliverable"),
    ],
    "sendgrid/event_dropped_invalid.json": [
        ("status", "c74002d9-7ccb-4f67-8b8c-766cec03c9a6", "failed"),
        ("contact", "invalid@invalid", "undeliverable"),
    ],
    "sendgrid/event_dropped_unsubscribed.json": [
        ("status", "a36ec0f9-aabe-45c7-9a84-3e17afb5cb65", "failed"),
        ("contact", "unsubscribe@example.com", "opted_out"),
    ],
    "sendgrid/event_open.json": [("status", "44920b35-3e31-478b-bb67-b4f5e0c85ebc", "read")],
    "sendgrid/event_processed.json": [],
    "sendgrid/inbound_parse_basics.json": [
        ("inbound", "from+test@example.org", "<CAEPk3R+4Zr@mail.example.org>", "Test body plain")
    ],
    "sendgrid/inbound_parse_charsets.multipart": [
        ("inbound", "sender@example.com", None, "Test the ESP’s inbound charset handling…")
    ],
    "sendgrid/inbound_parse_mime.json": [
        ("inbound", "test@example.org", "<CAEPk3RKEx@mail.example.org>", "It's a body…")
    ],
    "sendgrid/signed_event_body.raw": [
        ("status", "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>", "failed"),
        ("contact", "hello@world.com", "undeliverable"),
    ],
    # --- Postmark ---
    "postmark/inbound_anymail_inbound_basics.json": [
        ("inbound", "from+test@example.org", "<CAEPk3R+4Zr@mail.example.org>", "stripped plaintext body")
    ],
    "postmark/inbound_test_payload.json": [
        ("inbound", "support@postmarkapp.com", None, "This is the reply text")
    ],
    "postmark/inbound_test_payload_with_raw_email.json": [
        ("inbound", "support@postmarkapp.com", None, "This is the reply text")
    ],
    "postmark/webhook_bounce_event.json": [
        ("status", "2706ee8a-737c-4285-b032-ccd317af53ed", "failed"),
        ("contact", "bounce@example.com", "undeliverable"),
    ],
    "postmark/webhook_bounce_unsubscribe_variant.json": [],  # no Email field: no one to mark
    "postmark/webhook_click_event.json": [("status", "f4830d10-9c35-4f0c-bca3-3d9b459821f8", "read")],
    "postmark/webhook_delivered_event.json": [
        ("status", "883953f4-6105-42a2-a16a-77a8eac79483", "delivered")
    ],
    "postmark/webhook_open_event.json": [("status", "f4830d10-9c35-4f0c-bca3-3d9b459821f8", "read")],
    "postmark/webhook_resubscribe.json": [("contact", "john@example.com", "opted_in")],
    "postmark/webhook_spam_event.json": [("contact", "spam@example.com", "undeliverable")],
    "postmark/webhook_subscription_change_bounce.json": [
        ("status", "b4cb783d-78ed-43f2-983b-63f55c712dc8", "failed"),
        ("contact", "john@example.com", "undeliverable"),
    ],
    "postmark/webhook_unsubscribe.json": [("contact", "john@example.com", "opted_out")],
}


def _sample_files() -> list[str]:
    files = []
    for esp in ("mailgun", "sendgrid", "postmark"):
        folder = ROOT / esp
        if folder.is_dir():
            files += [f"{esp}/{p.name}" for p in sorted(folder.iterdir()) if p.name not in NOT_WEBHOOKS]
    return files


def _expected_key(name: str) -> str:
    # A Mailgun form sample exists twice, as the posted body (.urlencoded) and as its fields (.json).
    esp, file = name.split("/")
    if esp == "mailgun" and (file.startswith("legacy_form") or file.startswith("inbound_route")):
        return name.rsplit(".", 1)[0]
    return name


def _channel(esp: str, **credentials):
    # Mailgun signs its webhooks itself; the others are protected by basic auth in the URL.
    creds = {"api_key": "key", **({"webhook_signing_key": MAILGUN_KEY} if esp == "mailgun" else {})}
    if esp != "mailgun":
        creds["webhook_secret"] = ":".join(BASIC)
    creds.update(credentials)
    return ChannelFactory(
        kind="email",
        config={"esp": esp, "from_email": "support@acme.example", "domain": "acme.example"},
        credentials=creds,
    )


def _request(name: str) -> tuple[bytes, str, str]:
    """(body, content type, endpoint) exactly as the ESP posts this sample."""
    esp, file = name.split("/")
    path = ROOT / name
    raw = path.read_bytes()
    inbound = file.startswith("inbound")
    endpoint = "inbound" if inbound else "tracking"
    if path.suffix == ".urlencoded":
        return raw, "application/x-www-form-urlencoded", endpoint
    if path.suffix == ".multipart":
        return raw, "multipart/form-data; boundary=xYzZY", endpoint
    if (esp == "mailgun" and file.startswith(("legacy_form", "inbound_route"))) or (
        esp == "sendgrid" and inbound
    ):
        # Field dicts: Mailgun and SendGrid post these as multipart/form-data.
        fields = json.loads(raw)
        return encode_multipart(BOUNDARY, fields), f"multipart/form-data; boundary={BOUNDARY}", endpoint
    return raw, "application/json", endpoint


def _summary(items) -> list[tuple]:
    out = []
    for item in items:
        if isinstance(item, StatusUpdate):
            out.append(("status", item.platform_message_id, item.status.value))
        elif isinstance(item, ContactEvent):
            out.append(("contact", item.sender_value, item.event))
        elif isinstance(item, InboundMessage):
            out.append(("inbound", item.sender_value, item.platform_message_id, item.text))
    return out


def _post(client, channel, body: bytes, content_type: str, endpoint: str, **extra):
    url = channel.tracking_webhook_url if endpoint == "tracking" else channel.webhook_url
    path = url.removeprefix("http://testserver")
    return client.generic("POST", path, body, content_type=content_type, **extra)


def _auth(user_pass=BASIC) -> dict:
    token = base64.b64encode(":".join(user_pass).encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


@pytest.mark.parametrize("name", _sample_files())
def test_sample_through_the_webhook_url(name, client):
    esp = name.split("/")[0]
    assert _expected_key(name) in EXPECTED, f"{name} has no expectation: add one"
    expected = EXPECTED[_expected_key(name)]
    body, content_type, endpoint = _request(name)
    extra = {}
    credentials = {}
    if name == "sendgrid/signed_event_body.raw":
        vector = json.loads((ROOT / "sendgrid" / "signature_vector.json").read_text())
        credentials = {"webhook_verification_key": vector["public_key_base64_der_spki"], "webhook_secret": ""}
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in vector["headers"].items()}
    elif esp != "mailgun":
        extra = _auth()
    channel = _channel(esp, **credentials)

    response = _post(client, channel, body, content_type, endpoint, **extra)
    assert response.status_code == 200, response.content

    event = WebhookEvent.objects.get(channel=channel)
    assert event.endpoint == endpoint
    assert bytes(event.body) == body
    provider = get_provider(channel)
    if expected and expected[0][0] == "malformed":
        status = webhook_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert status == WebhookEvent.Status.FAILED
        assert expected[0][1] in event.error
        return
    items = provider.parse(bytes(event.body), dict(event.headers))
    got = _summary(items)
    for row, want in zip(got, expected, strict=True):
        if want[0] == "inbound" and want[2] is None:
            # No Message-ID header in the mail: a stable id of our own stands in for it.
            assert row[2].startswith("<") and row[2].endswith("@alexia.invalid>")
            want = (*want[:2], row[2], want[3])
        assert row == want
    if any(isinstance(item, InboundMessage) for item in items):
        assert webhook_event_process(event_id=event.pk) == WebhookEvent.Status.PROCESSED
        message = Message.objects.get(channel=channel, direction="in")
        conversation = Conversation.objects.get(channel=channel)
        assert message.conversation == conversation
        assert message.text == expected[0][3]
        assert conversation.contact.identities.get().value == expected[0][1]


@pytest.mark.parametrize("name", [n for n in _sample_files() if not n.startswith("sendgrid/signed")])
def test_sample_without_credentials_is_refused(name, client):
    esp = name.split("/")[0]
    body, content_type, endpoint = _request(name)
    channel = _channel(esp, webhook_signing_key="another-key") if esp == "mailgun" else _channel(esp)
    extra = {} if esp == "mailgun" else _auth(("alexia", "wrong"))
    response = _post(client, channel, body, content_type, endpoint, **extra)
    assert response.status_code == 403
    assert not WebhookEvent.objects.filter(channel=channel).exists()


def _mailgun_vectors() -> list[dict]:
    path = ROOT / "mailgun" / "signature_vectors.json"
    return json.loads(path.read_text())["vectors"] if path.exists() else []


@pytest.mark.parametrize("vector", _mailgun_vectors(), ids=lambda v: v["file"])
def test_mailgun_signature_vector(vector, client):
    """Each vector's signature is the one carried by its file, and anymail accepts exactly it."""
    name = f"mailgun/{vector['file']}"
    body, content_type, endpoint = _request(name)
    text = body.decode("latin-1")
    assert vector["expected"] in text and vector["token"] in text
    assert vector["signed_string"] == vector["timestamp"] + vector["token"]
    good = _channel("mailgun", webhook_signing_key=vector["secret"])
    assert _post(client, good, body, content_type, endpoint).status_code == 200
    tampered = body.replace(vector["expected"].encode(), vector["expected"][::-1].encode())
    assert _post(client, good, tampered, content_type, endpoint).status_code == 403


def test_sendgrid_signed_event_vector_and_its_negative_cases(client):
    path = ROOT / "sendgrid" / "signature_vector.json"
    if not path.exists():
        pytest.skip("no SendGrid signature vector")
    vector = json.loads(path.read_text())
    body = (ROOT / "sendgrid" / "signed_event_body.raw").read_bytes()
    assert body.decode() == vector["body"]
    headers = dict(vector["headers"])

    def post(public_key, body, signature, timestamp):
        channel = _channel("sendgrid", webhook_verification_key=public_key, webhook_secret="")
        extra = {
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": signature,
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp,
        }
        return _post(client, channel, body, "application/json", "tracking", **extra).status_code

    sig, ts = (
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )
    assert post(vector["public_key_base64_der_spki"], body, sig, ts) == (
        200 if vector["expected_valid"] else 403
    )
    for case in vector["negative_cases"]:
        status = post(
            case.get("public_key_base64_der_spki", vector["public_key_base64_der_spki"]),
            case["body"].encode() if "body" in case else body,
            case.get("signature", sig),
            case.get("timestamp", ts),
        )
        assert status == (200 if case["expected_valid"] else 403), case["desc"]
    # Without any key or basic auth the tracking URL refuses rather than trusting the body.
    channel = _channel("sendgrid", webhook_secret="")
    assert _post(client, channel, body, "application/json", "tracking").status_code == 403
