"""Twilio providers against ../shared/platform-samples/twilio, read in place at test time.

Every `.urlencoded` webhook body must parse to the values asserted below (the `.fields.json` twin of
each body is the source of the ids and addresses), and every signature vector must validate, both with
twilio's RequestValidator and through TwilioSmsProvider.verify() on a Django request.
"""

import json
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.http import QueryDict
from django.test import RequestFactory
from twilio.request_validator import RequestValidator

from providers.base import ContactEvent, DeliveryStatus, InboundMessage, StatusUpdate
from providers.twilio import TwilioSmsProvider, TwilioWhatsAppProvider
from tests.factories import ChannelFactory

pytestmark = pytest.mark.conformance

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples" / "twilio"
if not SAMPLES.is_dir():
    pytest.skip(f"platform samples not found at {SAMPLES}", allow_module_level=True)

HEADERS = {"x-alexia-received-at": "2025-03-04T05:06:07+00:00"}
BODIES = sorted(p.name for p in SAMPLES.glob("*.urlencoded"))
VECTORS_FILE = json.loads((SAMPLES / "signature_vectors.json").read_text())
VECTORS = VECTORS_FILE["vectors"] + VECTORS_FILE.get("derived_vectors", [])

# Per sample: the expected parse, beyond what the .fields.json twin already pins (ids, sender).
EXPECTED: dict[str, dict] = {
    "inbound_mms_image_real_capture.urlencoded": {
        "type": "media",
        "text": "Test",
        "attachments": [("image", "image/jpeg")],
    },
    "inbound_sms_media_two_urls.urlencoded": {
        "type": "media",
        "text": "Msg",
        "attachments": [("image", ""), ("image", "")],  # no MediaContentTypeN: kind guessed from .jpg
    },
    "inbound_sms_shortcode_messaging_service.urlencoded": {"type": "text", "text": "John Cruz"},
    "inbound_sms_text.urlencoded": {"type": "text", "text": "Msg"},
    "inbound_whatsapp_button_courier.urlencoded": {
        "type": "interactive",
        "text": "Msg",
        "content": {"interactive_type": "button", "id": "", "title": "Confirm"},
    },
    "inbound_whatsapp_image.urlencoded": {
        "type": "media",
        "text": "",
        "attachments": [("image", "image/jpeg")],
    },
    "inbound_whatsapp_location.urlencoded": {
        "type": "location",
        "text": "",
        "content": {
            "latitude": 52.303897857666016,
            "longitude": 4.750025749206543,
            "address": "Evert van de Beekstraat 354, Schiphol, North Holland 1118 CZ",
            "name": "Microsoft",
        },
    },
    "inbound_whatsapp_text.urlencoded": {"type": "text", "text": "test"},
    "inbound_whatsapp_text_courier.urlencoded": {"type": "text", "text": "Msg"},
    "status_delivered.urlencoded": {"status": DeliveryStatus.DELIVERED},
    "status_failed_21610_unsubscribed.urlencoded": {
        "status": DeliveryStatus.FAILED,
        "error_code": "21610",
        "error_reason": "Attempt to send to unsubscribed recipient",
        "opted_out": "+12028831111",
    },
    "status_failed_63018_rate_limit.urlencoded": {
        "status": DeliveryStatus.FAILED,
        "error_code": "63018",
        "error_reason": "Rate limit exceeded for Channel",
    },
    "status_read_whatsapp.urlencoded": {"status": DeliveryStatus.READ},
    "status_sent_messaging_service.urlencoded": {"status": DeliveryStatus.SENT},
    "status_undelivered_30003_COMPOSED.urlencoded": {
        "status": DeliveryStatus.FAILED,
        "error_code": "30003",
        "error_reason": "Unreachable destination handset",
    },
    "status_whatsapp_delivered.urlencoded": {"status": DeliveryStatus.DELIVERED},
    "status_whatsapp_sent.urlencoded": {"status": DeliveryStatus.SENT},
}


def fields_of(name: str) -> dict[str, str]:
    pairs = json.loads((SAMPLES / name.replace(".urlencoded", ".fields.json")).read_text())
    return {key: value for key, value in pairs}


def provider_for(fields: dict[str, str]) -> TwilioSmsProvider:
    whatsapp = fields.get("To", "").startswith("whatsapp:") or fields.get("From", "").startswith("whatsapp:")
    kind = "twilio_whatsapp" if whatsapp else "twilio_sms"
    cls = TwilioWhatsAppProvider if whatsapp else TwilioSmsProvider
    return cls(ChannelFactory.build(kind=kind))


def test_every_sample_body_has_expectations():
    assert BODIES, f"no .urlencoded samples in {SAMPLES}"
    assert sorted(EXPECTED) == BODIES


@pytest.mark.parametrize("name", BODIES)
def test_sample_parses(name):
    body = (SAMPLES / name).read_bytes()
    fields = fields_of(name)
    expected = EXPECTED[name]
    provider = provider_for(fields)
    sid = fields["MessageSid"]
    status = fields.get("MessageStatus") or fields.get("SmsStatus") or "received"

    assert provider.event_id(body, HEADERS) == f"{sid}:{status}"
    events = provider.parse(body, HEADERS)

    if name.startswith("inbound_"):
        [msg] = events
        assert isinstance(msg, InboundMessage)
        assert msg.platform_message_id == sid
        assert msg.sender_kind == "phone"
        assert msg.sender_value == fields["From"].removeprefix("whatsapp:")
        assert msg.sender_value.startswith("+")
        assert msg.type == expected["type"]
        assert msg.text == expected["text"]
        assert msg.timestamp.isoformat() == HEADERS["x-alexia-received-at"]
        attachments = [(a.kind, a.content_type) for a in msg.attachments]
        assert attachments == expected.get("attachments", [])
        for index, attachment in enumerate(msg.attachments):
            assert attachment.url == fields[f"MediaUrl{index}"]
        if "content" in expected:
            assert msg.content == expected["content"]
    else:
        update = events[0]
        assert isinstance(update, StatusUpdate)
        assert update.platform_message_id == sid
        assert update.status is expected["status"]
        assert update.error_code == expected.get("error_code", "")
        assert update.error_reason == expected.get("error_reason", "")
        if "opted_out" in expected:
            [event] = events[1:]
            assert isinstance(event, ContactEvent)
            assert (event.event, event.sender_value) == ("opted_out", expected["opted_out"])
        else:
            assert len(events) == 1


def test_outbound_success_sample_has_the_fields_send_reads():
    sample = json.loads((SAMPLES / "response_messages_create_201.json").read_text())
    assert sample["sid"].startswith("SM")
    assert int(sample["num_segments"]) == 1
    errors = json.loads((SAMPLES / "outbound_messages_create.json").read_text())["errors"]
    envelopes = [e["body"] for e in errors if "body" in e]
    assert envelopes and all(set(b) == {"code", "message", "more_info", "status"} for b in envelopes)


# --- signature vectors -----------------------------------------------------------------------------------
def vector_id(vector: dict) -> str:
    return vector["name"][:60]


def vector_params(vector: dict):
    if "body" in vector:
        return vector["body"]
    if "raw_form_body" in vector:
        return QueryDict(vector["raw_form_body"])
    return vector["params"]


def vector_signature(vector: dict) -> str:
    return vector.get("expected") or vector["expected_header"]


def vector_request_url(vector: dict) -> str:
    """The URL our server sees: the received one, or the signed one without an explicit default port."""
    if "url_received" in vector:
        return vector["url_received"]
    return vector["url"].replace(":443/", "/").replace(":80/", "/")


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_signature_vector_with_request_validator(vector):
    validator = RequestValidator(vector["auth_token"])
    params = vector_params(vector)
    signature = vector_signature(vector)
    assert validator.validate(vector_request_url(vector), params, signature) is vector.get(
        "expected_valid", True
    )
    if "url" in vector and "body" not in vector:
        assert validator.compute_signature(vector["url"], params) == signature
    forged = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert not validator.validate(vector_request_url(vector), params, forged)


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_signature_vector_through_verify(vector, settings):
    url = urlsplit(vector_request_url(vector))
    settings.PUBLIC_BASE_URL = f"{url.scheme}://{url.netloc}"
    path = url.path + (f"?{url.query}" if url.query else "")
    if "body" in vector:
        data, content_type = vector["body"], "application/json"
    elif "raw_form_body" in vector:
        data, content_type = vector["raw_form_body"], "application/x-www-form-urlencoded"
    else:
        data, content_type = urlencode(vector["params"]), "application/x-www-form-urlencoded"
    channel = ChannelFactory.build(kind="twilio_sms", credentials={"auth_token": vector["auth_token"]})
    provider = TwilioSmsProvider(channel)

    request = RequestFactory().post(
        path, data=data, content_type=content_type, HTTP_X_TWILIO_SIGNATURE=vector_signature(vector)
    )
    provider.verify(request)
