"""The WhatsApp Cloud provider against ../shared/platform-samples/whatsapp, read in place.

Every webhook body there is parsed with concrete expectations, the real Meta-signed vector is verified
byte-exact, the GET handshake cases are replayed, and the courier/pywa request bodies and error answers
of outbound_api.json are compared with what send() builds and how its errors are classified.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from providers.base import DeliveryStatus, InboundMessage, OutboundMessage, StatusUpdate
from providers.errors import PermanentFailure, RateLimited, TransientFailure, WebhookVerificationError
from providers.models import Channel
from providers.whatsapp_cloud import WhatsAppCloudProvider, error_from_graph, phone_number_ids

pytestmark = pytest.mark.conformance

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples" / "whatsapp"
if not SAMPLES.is_dir():
    pytest.skip(f"platform samples not found at {SAMPLES}", allow_module_level=True)


def provider(phone_number_id: str = "1", **credentials: str) -> WhatsAppCloudProvider:
    channel = Channel(kind="whatsapp_cloud", config={"phone_number_id": phone_number_id})
    channel.credentials = {"access_token": "EAAG", "app_secret": "s", "verify_token": "v", **credentials}
    return WhatsAppCloudProvider(channel)


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def msg(**fields):
    return ("message", fields)


def status(**fields):
    return ("status", fields)


PYWA = {"sender_kind": "phone", "sender_value": "+972987654321", "sender_name": "Test Name"}
COURIER = {
    "platform_message_id": "external_id",
    "sender_value": "+5678",
    "sender_name": "Kerry Fisher",
    "timestamp": at(1454119029),
}
COURIER_MEDIA = "Check out my new phone!"

# sample file -> the events parse() must return, in order (only the listed fields are compared).
EXPECTED: dict[str, list[tuple[str, dict]]] = {
    "inbound_text.json": [
        msg(
            **PYWA,
            platform_message_id="wamid.xyzxyz",
            timestamp=at(1697043223),
            type="text",
            text="Body Text",
        )
    ],
    "inbound_image.json": [
        msg(**PYWA, type="media", text="", attachments=[("image", "image/jpeg", "", "65463453")])
    ],
    "inbound_document.json": [
        msg(
            **PYWA,
            type="media",
            text="caption",
            content={"forwarded": True},
            attachments=[("document", "application/pdf", "filename.pdf", "1234567890987654321")],
        )
    ],
    "inbound_audio.json": [
        msg(type="media", attachments=[("audio", "audio/ogg; codecs=opus", "", "1234567890987654321")])
    ],
    "inbound_voice.json": [
        msg(type="media", attachments=[("voice", "audio/ogg; codecs=opus", "", "1234567890987654321")])
    ],
    "inbound_video.json": [
        msg(type="media", text="caption", attachments=[("video", "video/mp4", "", "765756756")])
    ],
    "inbound_sticker.json": [
        msg(type="media", attachments=[("sticker", "image/webp", "", "1234567890987654321")])
    ],
    "inbound_reaction.json": [
        msg(**PYWA, type="reaction", content={"emoji": "\U0001f62e", "message_id": "wamid.yzxyzx="})
    ],
    "inbound_location_current.json": [
        msg(
            type="location",
            content={
                "latitude": 12.25089,
                "longitude": 43.90539,
                "name": None,
                "address": None,
                "forwarded": True,
            },
        )
    ],
    "inbound_location_chosen.json": [
        msg(
            type="location",
            content={
                "latitude": 37.4611978,
                "longitude": -122.2164385,
                "name": "Facebook HQ",
                "address": "1 Hacker Way, Menlo Park, CA 94025",
                "url": "https://maps.google.com/?cid=2000000000000000000",
                "forwarded": True,
            },
        )
    ],
    "inbound_contacts.json": [msg(type="contact", contact_names=["Chandler Bing", "Monica", "Rachel Green"])],
    "inbound_order.json": [
        msg(type="interactive", interactive_type="order", order_items=["HAMBURGER", "FRENCH_FRIES", "SODA"])
    ],
    "inbound_unsupported.json": [
        msg(
            **PYWA,
            type="unsupported",
            content={
                "original_type": "unsupported",
                "error": {
                    "code": "131051",
                    "title": "Message type unknown",
                    "details": "Message type is currently not supported.",
                },
            },
        )
    ],
    "inbound_text_reply_with_context.json": [
        msg(type="text", text="replied text", reply_to_platform_id="wamid.xyzxyz==")
    ],
    "inbound_text_click_to_whatsapp_referral.json": [
        msg(platform_message_id="wamid.ID", type="text", text="BODY", referral_source_id="ADID")
    ],
    "inbound_interactive_with_errors.json": [
        msg(
            platform_message_id="wamid.wegrchytvwcggt=",
            type="unsupported",
            reply_to_platform_id="wamid.gvwegfretge==",
            content={
                "original_type": "interactive",
                "error": {
                    "code": "131000",
                    "title": "Something went wrong",
                    "details": "Unsupported webhook payload",
                },
            },
        )
    ],
    "inbound_interactive_button_reply.json": [
        msg(
            type="interactive",
            text="title",
            reply_to_platform_id="wamid.xyzxyz",
            content={"interactive_type": "button_reply", "id": "callback_data", "title": "title"},
        )
    ],
    "inbound_template_quick_reply_button.json": [
        msg(
            platform_message_id="wamid.xsidjw",
            type="interactive",
            text="title",
            reply_to_platform_id="wamid.xyzxyz==",
            content={"interactive_type": "button", "id": "callback_data", "title": "title"},
        )
    ],
    "inbound_interactive_list_reply.json": [
        msg(
            platform_message_id="wamid.zyzxyz",
            type="interactive",
            text="title",
            content={"interactive_type": "list_reply", "id": "callback_data", "title": "title"},
        )
    ],
    "status_sent.json": [
        status(platform_message_id="wamid.xyzxyz", status=DeliveryStatus.SENT, timestamp=at(1698266945))
    ],
    "status_delivered.json": [
        status(status=DeliveryStatus.DELIVERED, timestamp=at(1698266945), error_code="")
    ],
    "status_read.json": [status(status=DeliveryStatus.READ, timestamp=at(1689380458))],
    "status_group.json": [status(platform_message_id="<WHATSAPP_MESSAGE_ID>", status=DeliveryStatus.READ)],
    "status_failed_130472.json": [
        status(
            status=DeliveryStatus.FAILED,
            error_code="130472",
            error_reason="User's number is part of an experiment: Failed to send message because this user's "
            "phone number is part of an experiment",
        )
    ],
    "status_failed_131047_reengagement.json": [
        status(
            status=DeliveryStatus.FAILED,
            error_code="131047",
            error_reason="Re-engagement message: Message failed to send because more than 24 hours have "
            "passed since the customer last replied to this number.",
        )
    ],
    "status_failed_131026_undeliverable.json": [
        status(status=DeliveryStatus.FAILED, error_code="131026", error_reason="Message undeliverable")
    ],
    "status_failed_130429_rate_limit.json": [
        status(
            status=DeliveryStatus.FAILED,
            error_code="130429",
            error_reason="Rate limit hit: Cloud API message throughput has been reached.",
        )
    ],
    "courier_inbound_text.json": [msg(**COURIER, type="text", text="Hello World")],
    "courier_inbound_duplicate_message_ids.json": [msg(**COURIER, type="text", text="Hello World")],
    "courier_inbound_image_with_caption.json": [
        msg(
            **COURIER, type="media", text=COURIER_MEDIA, attachments=[("image", "image/jpeg", "", "id_image")]
        )
    ],
    "courier_inbound_video.json": [
        msg(
            **COURIER, type="media", text=COURIER_MEDIA, attachments=[("video", "image/jpeg", "", "id_video")]
        )
    ],
    "courier_inbound_audio.json": [
        msg(
            **COURIER, type="media", text=COURIER_MEDIA, attachments=[("audio", "image/jpeg", "", "id_audio")]
        )
    ],
    "courier_inbound_voice.json": [
        msg(
            **COURIER,
            type="media",
            text="",
            attachments=[("voice", "audio/ogg; codecs=opus", "", "id_voice")],
        )
    ],
    "courier_inbound_document.json": [
        msg(
            **COURIER,
            type="media",
            text="80skaraokesonglistartist",
            attachments=[("document", "application/pdf", "", "id_document")],
        )
    ],
    "courier_inbound_location_named.json": [
        msg(
            **COURIER,
            type="location",
            content={
                "latitude": 0.0,
                "longitude": 1.0,
                "name": "Main Street Beach",
                "address": "Main Street Beach, Santa Cruz, CA",
                "url": "https://foursquare.com/v/4d7031d35b5df7744",
            },
        )
    ],
    "courier_inbound_interactive_button_reply.json": [
        msg(
            **COURIER,
            type="interactive",
            text="Yes",
            content={"interactive_type": "button_reply", "id": "id_button_reply", "title": "Yes"},
        )
    ],
    "courier_inbound_interactive_list_reply.json": [
        msg(
            **COURIER,
            type="interactive",
            text="Yes",
            content={"interactive_type": "list_reply", "id": "id_list_reply", "title": "Yes"},
        )
    ],
    "courier_inbound_template_button.json": [
        msg(
            **COURIER,
            type="interactive",
            text="No",
            reply_to_platform_id="gBGGFmkiWVVPAgkgQkwi7IORac0",
            content={"interactive_type": "button", "id": "No-Button-Payload", "title": "No"},
        )
    ],
    "courier_inbound_flow_nfm_reply.json": [
        msg(
            **COURIER,
            type="interactive",
            text="Sent",
            content={
                "interactive_type": "nfm_reply",
                "name": "flow",
                "response": {"flow_token": "fl0w+t0k3n", "first_name": "Bob", "age": "32"},
            },
        )
    ],
    "courier_inbound_message_with_errors.json": [
        msg(
            **COURIER,
            type="unsupported",
            content={
                "original_type": "unsupported",
                "error": {
                    "code": "131051",
                    "title": "Unsupported message type",
                    "details": "Message type is not currently supported",
                },
            },
        )
    ],
    "courier_status_sent.json": [
        status(platform_message_id="external_id", status=DeliveryStatus.SENT, timestamp=at(1454119029))
    ],
    "courier_status_failed_131014.json": [
        status(
            platform_message_id="external_id",
            status=DeliveryStatus.FAILED,
            error_code="131014",
            error_reason="Request for url https://URL.jpg failed with error: 404 (Not Found)",
        )
    ],
    "courier_value_level_errors.json": [],
}
# Files of the folder that are not webhook bodies; each is exercised by a dedicated test below.
NOT_WEBHOOK_BODIES = {
    "SOURCES.md",
    "signature_body.raw",
    "signature_vector.json",
    "verification_get.json",
    "outbound_api.json",
    "error_codes_pywa_catalog.json",
}


def test_every_sample_file_is_covered():
    files = {p.name for p in SAMPLES.iterdir() if p.is_file()}
    assert files - set(EXPECTED) - NOT_WEBHOOK_BODIES == set(), "new sample files need an expectation"
    assert set(EXPECTED) - files == set(), "expected samples missing from the folder"


def check_message(event, fields: dict) -> None:
    assert isinstance(event, InboundMessage)
    fields = dict(fields)
    if "attachments" in fields:
        got = [(a.kind, a.content_type, a.filename, a.platform_media_id) for a in event.attachments]
        assert got == fields.pop("attachments")
    if "contact_names" in fields:
        names = [c["name"]["formatted_name"] for c in event.content["contacts"]]
        assert names == fields.pop("contact_names")
    if "interactive_type" in fields:
        assert event.content["interactive_type"] == fields.pop("interactive_type")
    if "order_items" in fields:
        items = [i["product_retailer_id"] for i in event.content["order"]["product_items"]]
        assert items == fields.pop("order_items")
    if "referral_source_id" in fields:
        assert event.content["referral"]["source_id"] == fields.pop("referral_source_id")
    assert {key: getattr(event, key) for key in fields} == fields


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses(name):
    body = (SAMPLES / name).read_bytes()
    numbers = phone_number_ids(body)
    assert len(numbers) == 1
    prov = provider(numbers[0])
    assert prov.event_id(body, {}) is None
    events = prov.parse(body, {})
    expected = EXPECTED[name]
    assert len(events) == len(expected)
    for event, (kind, fields) in zip(events, expected, strict=True):
        if kind == "message":
            check_message(event, fields)
        else:
            assert isinstance(event, StatusUpdate)
            assert {key: getattr(event, key) for key in fields} == fields
            assert event.timestamp.tzinfo is UTC
    # The same delivery reaching another number's channel yields nothing for it.
    assert provider("000000000000000").parse(body, {}) == []


# --- signatures -------------------------------------------------------------------------------------------
VECTOR = json.loads((SAMPLES / "signature_vector.json").read_text())


def signed_request(rf, body: bytes, header_value: str | None):
    headers = {} if header_value is None else {"HTTP_X_HUB_SIGNATURE_256": header_value}
    return rf.post("/webhooks/whatsapp_cloud/t/", data=body, content_type="application/json", **headers)


def test_real_meta_vector_raw_file_verifies(rf):
    body = (SAMPLES / "signature_body.raw").read_bytes()
    assert body == VECTOR["body"].encode()
    provider(app_secret=VECTOR["secret"]).verify(signed_request(rf, body, VECTOR["expected"]))
    (message,) = provider("277321005464405").parse(body, {})
    assert (message.sender_value, message.sender_name, message.text) == (
        "+972544401243",
        "PyWa Tests",
        "Hey there! I am using PyWa.",
    )


def test_real_meta_vector_with_other_secret_is_refused(rf):
    body = (SAMPLES / "signature_body.raw").read_bytes()
    with pytest.raises(WebhookVerificationError):
        provider(app_secret=VECTOR["secret"][::-1]).verify(signed_request(rf, body, VECTOR["expected"]))


@pytest.mark.parametrize("case", VECTOR["negative_cases"], ids=lambda c: c["desc"])
def test_signature_negative_cases(rf, case):
    body = case.get("body", VECTOR["body"]).encode()
    header = case.get("header_value", VECTOR["expected"])
    # "header without sha256= prefix" is implementation-defined; Meta always sends the prefix, so we refuse.
    with pytest.raises(WebhookVerificationError):
        provider(app_secret=VECTOR["secret"]).verify(signed_request(rf, body, header))


# --- GET handshake ----------------------------------------------------------------------------------------
HANDSHAKE = json.loads((SAMPLES / "verification_get.json").read_text())["webhook_verification_get"]


def handshake_request(rf, sample_request: str):
    query = urlsplit(sample_request.split(" ", 1)[1]).query
    return rf.get("/webhooks/whatsapp_cloud/t/", dict(parse_qsl(query, keep_blank_values=True)))


def test_handshake_positive_case(rf):
    request = handshake_request(rf, HANDSHAKE["request"])
    response = provider(verify_token=request.GET["hub.verify_token"]).handshake(request)
    expected = HANDSHAKE["expected_response"]
    assert response.status_code == expected["status"]
    assert response["Content-Type"].startswith(expected["content_type"])
    assert response.content.decode() == expected["body"]


@pytest.mark.parametrize("case", HANDSHAKE["negative_cases"], ids=lambda c: c["request"])
def test_handshake_negative_cases(rf, case):
    request = handshake_request(rf, case["request"])
    response = provider(verify_token="fb_webhook_secret").handshake(request)
    if "hub.mode" not in request.GET:
        assert response is None  # not a handshake: the view answers 405
    else:
        assert response.status_code == 403
        assert b"yarchallenge" not in response.content


# --- outbound request bodies and error answers ------------------------------------------------------------
OUTBOUND = json.loads((SAMPLES / "outbound_api.json").read_text())["send_message"]
ERRORS = json.loads((SAMPLES / "outbound_api.json").read_text())["error_responses"]


def built(outbound: OutboundMessage) -> dict:
    payload = provider().message_payload(outbound)
    assert payload.pop("biz_opaque_callback_data") == f"alexia:{outbound.message_id}"
    return payload


def test_text_body_matches_courier():
    expected = json.loads(OUTBOUND["text_request_courier_verbatim"])
    assert built(OutboundMessage(message_id=1, to="+250788123123", text="Simple Message")) == expected


def test_image_body_matches_courier():
    expected = json.loads(OUTBOUND["image_request_courier_verbatim"])
    attachment = {"url": "https://foo.bar/image.jpg", "content_type": "image/jpeg"}
    outbound = OutboundMessage(
        message_id=2, to="+250788123123", text="image caption", attachments=(attachment,)
    )
    assert built(outbound) == expected


def test_document_body_matches_courier():
    expected = json.loads(OUTBOUND["document_request_courier_verbatim"])
    attachment = {
        "url": "https://foo.bar/document.pdf",
        "content_type": "application/pdf",
        "filename": "document.pdf",
    }
    outbound = OutboundMessage(
        message_id=3, to="+250788123123", text="document caption", attachments=(attachment,)
    )
    assert built(outbound) == expected


def test_template_body_matches_courier():
    expected = json.loads(OUTBOUND["template_request_courier_verbatim"])
    template = {"name": "revive_issue", "language": "en_US", "variables": ["Chef", "tomorrow"]}
    assert built(OutboundMessage(message_id=4, to="+250788123123", template=template)) == expected


def test_reply_body_matches_pywa():
    expected = dict(OUTBOUND["text_reply_request_pywa"])
    expected.pop("biz_opaque_callback_data")
    outbound = OutboundMessage(message_id=5, to="123", text="hi", reply_to_platform_id="wamid.1")
    payload = built(outbound)
    assert payload.pop("text") == {"body": "hi", "preview_url": False}
    expected.pop("text")
    assert payload == expected


def error_case(code: int) -> dict:
    return next(case for case in ERRORS if case["code"] == code)


def error_answer(code: int) -> tuple[int, dict]:
    case = error_case(code)
    status = case.get("http_status_in_courier_mock") or case.get("http_status") or 400
    if "courier_verbatim" in case:
        return status, json.loads(case["courier_verbatim"])
    if "error_object_pywa_verbatim" in case:
        return status, {"error": case["error_object_pywa_verbatim"]}
    return status, {"error": case["pywa_verbatim"]}


@pytest.mark.parametrize(
    ("code", "expected_type"),
    [
        (131047, PermanentFailure),
        (130429, RateLimited),
        (131056, RateLimited),
        (613, RateLimited),
        (131053, TransientFailure),
        (368, PermanentFailure),
        (131009, PermanentFailure),
        (190, PermanentFailure),
    ],
)
def test_error_responses_are_classified(code, expected_type):
    status, body = error_answer(code)
    error = error_from_graph(status, body)
    assert type(error) is expected_type
    assert error.code == str(code)
    if isinstance(error, RateLimited):
        assert error.retry_after and error.retry_after > 0


def test_every_documented_error_case_is_classified():
    covered = {131047, 130429, 131056, 613, 131053, 368, 131009, 190}
    documented = {case["code"] for case in ERRORS if any("verbatim" in key for key in case)}
    assert documented == covered


def test_expired_token_reason_is_metas_message_and_marks_the_channel():
    status, body = error_answer(190)
    error = error_from_graph(status, body)
    assert error.reason.startswith("Error validating access token: Session has expired")
    assert error.channel_error is True
    assert error_from_graph(*error_answer(131047)).channel_error is False


CATALOG = json.loads((SAMPLES / "error_codes_pywa_catalog.json").read_text())


@pytest.mark.parametrize(
    "entry", [e for e in CATALOG if "ThrottlingError" in e["bases"]], ids=lambda e: e["class"]
)
def test_catalog_throttling_codes(entry):
    """pywa's throttling classes back off, except 131064 (daily messaging limit): no retry soon helps."""
    for code in entry["codes"]:
        error = error_from_graph(400, {"error": {"code": code, "message": entry["description"]}})
        if code == 131064:
            assert isinstance(error, PermanentFailure)
        else:
            assert isinstance(error, RateLimited), code


@pytest.mark.parametrize(
    "entry",
    [
        e
        for e in CATALOG
        if e["class"]
        in {
            "ReEngagementMessage",
            "MessageUndeliverable",
            "TemporarilyBlocked",
            "ExpiredAccessToken",
            "InvalidParameter",
            "MissingRequiredParameter",
            "TemplateParamCountMismatch",
            "TemplateNotExists",
            "UnsupportedMessageType",
        }
    ],
    ids=lambda e: e["class"],
)
def test_catalog_permanent_codes(entry):
    for code in entry["codes"]:
        error = error_from_graph(400, {"error": {"code": code, "message": entry["description"]}})
        assert isinstance(error, PermanentFailure)
        assert error.code == str(code)


@pytest.mark.parametrize(
    "entry",
    [e for e in CATALOG if e["class"] in {"UnknownError", "ServiceUnavailable", "MediaUploadError"}],
    ids=lambda e: e["class"],
)
def test_catalog_transient_codes(entry):
    for code in entry["codes"]:
        error = error_from_graph(400, {"error": {"code": code, "message": entry["description"]}})
        assert type(error) is TransientFailure
