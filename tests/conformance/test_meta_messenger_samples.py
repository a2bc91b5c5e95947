"""The Messenger and Instagram providers against ../shared/platform-samples/messenger_instagram, read in place.

Every webhook body there is parsed with concrete expectations, the DERIVED signature vector is verified
over the byte-exact file, the GET handshake is replayed, and the courier request bodies and the error
answers of outbound_send_api.json are compared with what send() builds and how its errors are classified
(the errors also over HTTP through FakeMeta, since one of them arrives with status 200).
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from providers.base import (
    ContactEvent,
    DeliveryStatus,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    StatusUpdate,
)
from providers.errors import MalformedPayloadError, PermanentFailure, RateLimited, WebhookVerificationError
from providers.fakes.meta import FakeMeta
from providers.fakes.server import FakeResponse
from providers.meta_messenger import (
    DELIVERED_WATERMARK,
    InstagramProvider,
    MessengerProvider,
    entry_ids,
    error_from_graph,
)
from providers.models import Channel

pytestmark = pytest.mark.conformance

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "platform-samples" / "messenger_instagram"
if not SAMPLES.is_dir():
    pytest.skip(f"platform samples not found at {SAMPLES} (../shared is absent)", allow_module_level=True)

ACCOUNT_ID = "1234567890"  # entry[].id of every courier fixture


def provider(kind: str, account_id: str = ACCOUNT_ID, **credentials: str) -> MessengerProvider:
    key = "page_id" if kind == "messenger" else "instagram_account_id"
    channel = Channel(kind=kind, config={key: account_id})
    channel.credentials = {"page_access_token": "EAAP", "app_secret": "s", "verify_token": "v", **credentials}
    return (InstagramProvider if kind == "instagram" else MessengerProvider)(channel)


def kind_of(name: str) -> str:
    return "instagram" if name.startswith("instagram_") else "messenger"


AT = datetime(2016, 4, 7, 1, 11, 27, 970000, tzinfo=UTC)  # 1459991487970 ms
CUSTOMER = {"sender_value": "5678", "timestamp": AT}


def msg(**fields):
    return ("message", fields)


# sample file -> the events parse() must return, in order (only the listed fields are compared).
EXPECTED: dict[str, list[tuple[str, dict]]] = {
    "messenger_message_text.json": [
        msg(
            **CUSTOMER,
            sender_kind="messenger",
            platform_message_id="external_id",
            type="text",
            text="Hello World",
        )
    ],
    "messenger_duplicate_mid.json": [msg(**CUSTOMER, platform_message_id="external_id", text="Hello World")],
    "messenger_message_attachment.json": [
        msg(
            **CUSTOMER,
            platform_message_id="external_id",
            type="media",
            text="",
            attachments=(InboundAttachment(kind="image", url="https://image-url/foo.png"),),
        )
    ],
    "messenger_message_location_attachment.json": [
        msg(**CUSTOMER, type="location", content={"latitude": 1.2, "longitude": -1.3}, attachments=())
    ],
    "messenger_postback_with_referral.json": [
        msg(
            **CUSTOMER,
            platform_message_id="postback:5678:1459991487970",
            type="interactive",
            text="postback title",
            content={
                "interactive_type": "postback",
                "payload": "postback payload",
                "title": "postback title",
                "referral": {"ref": "postback ref", "source": "postback source", "type": "postback type"},
            },
        )
    ],
    "messenger_postback_get_started.json": [
        msg(
            **CUSTOMER,
            type="interactive",
            text="postback title",
            content={"interactive_type": "postback", "payload": "get_started", "title": "postback title"},
        )
    ],
    "messenger_referral.json": [
        msg(
            **CUSTOMER,
            platform_message_id="referral:5678:1459991487970",
            type="interactive",
            text="Referral from referral source (ref referral id)",
            content={
                "interactive_type": "referral",
                "referral": {
                    "ref": "referral id",
                    "ad_id": "ad id",
                    "source": "referral source",
                    "type": "referral type",
                },
            },
        )
    ],
    "messenger_delivery_receipt.json": [
        (
            "status",
            {
                "platform_message_id": "mid.1458668856218:ed81099e15d3f4f233",
                "status": DeliveryStatus.DELIVERED,
                "timestamp": AT,
            },
        ),
        (
            "contact",
            {
                "sender_kind": "messenger",
                "sender_value": "5678",
                "event": DELIVERED_WATERMARK,
                "timestamp": datetime(2016, 3, 22, 17, 47, 36, 253000, tzinfo=UTC),
            },
        ),
    ],
    "messenger_message_echo.json": [
        msg(**CUSTOMER, platform_message_id="qT7ywaK", is_echo=True, text="", attachments=())
    ],
    "messenger_thumbs_up_sticker.json": [
        msg(
            **CUSTOMER,
            type="text",
            text="\U0001f44d",
            content={"sticker_id": "369239263222822"},
            attachments=(),
        )
    ],
    "messenger_optin_notification_messages.json": [
        msg(
            **CUSTOMER,
            platform_message_id="optin:5678:1459991487970",
            type="interactive",
            text="Opted in to notification messages: Bird Facts (DAILY)",
            optin_token="12345678901234567890",
        )
    ],
    "messenger_message_reel_attachment.json": [
        msg(
            **CUSTOMER,
            type="media",
            content={"reel": {"url": "/reel/123451234512345/", "reel_video_id": "123451234512345"}},
            attachments=(),
        )
    ],
    "messenger_unknown_messaging_entry.json": [],
    "instagram_message_text.json": [
        msg(
            **CUSTOMER,
            sender_kind="instagram",
            platform_message_id="external_id",
            type="text",
            text="Hello World",
        )
    ],
    "instagram_duplicate_mid.json": [msg(**CUSTOMER, sender_kind="instagram", text="Hello World")],
    "instagram_message_attachment.json": [
        msg(
            **CUSTOMER,
            sender_kind="instagram",
            type="media",
            attachments=(InboundAttachment(kind="image", url="https://image-url/foo.png"),),
        )
    ],
    "instagram_story_mention.json": [
        msg(
            **CUSTOMER,
            type="media",
            content={"story_mention": "https://story-url"},
            attachments=(InboundAttachment(kind="image", url="https://story-url"),),
        )
    ],
    "instagram_like_heart.json": [
        msg(**CUSTOMER, type="text", text="\u2764\ufe0f", content={"like_heart": True})
    ],
    "instagram_message_deleted_unsent.json": [
        msg(
            sender_value="5678",
            timestamp=datetime(2019, 9, 23, 18, 14, 45, 349000, tzinfo=UTC),
            platform_message_id="external_id",
            is_edit=True,
            text="",
            content={"deleted": True},
        )
    ],
    "instagram_icebreaker_postback.json": [
        msg(
            **CUSTOMER,
            sender_kind="instagram",
            type="interactive",
            text="icebreaker question",
            content={
                "interactive_type": "postback",
                "payload": "get_started",
                "title": "icebreaker question",
            },
        )
    ],
    "instagram_message_echo.json": [
        msg(**CUSTOMER, sender_kind="instagram", platform_message_id="qT7ywaK", is_echo=True)
    ],
}
# Files of the folder that are not webhook bodies; each is exercised by a dedicated test below.
NOT_WEBHOOK_BODIES = {"SOURCES.md", "signature_vector_and_verification.json", "outbound_send_api.json"}


def test_every_sample_file_is_covered():
    files = {p.name for p in SAMPLES.iterdir() if p.is_file()}
    assert files - set(EXPECTED) - NOT_WEBHOOK_BODIES == set(), "new sample files need an expectation"
    assert set(EXPECTED) - files == set(), "expected samples missing from the folder"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses(name):
    body = (SAMPLES / name).read_bytes()
    assert entry_ids(body) == [ACCOUNT_ID]
    prov = provider(kind_of(name))
    assert prov.event_id(body, {}) is None
    events = prov.parse(body, {})
    expected = EXPECTED[name]
    assert len(events) == len(expected)
    for event, (kind, fields) in zip(events, expected, strict=True):
        fields = dict(fields)
        expected_type = {"message": InboundMessage, "status": StatusUpdate, "contact": ContactEvent}[kind]
        assert isinstance(event, expected_type)
        if "optin_token" in fields:
            assert event.content["optin"]["notification_messages_token"] == fields.pop("optin_token")
        assert {key: getattr(event, key) for key in fields} == fields
        assert event.timestamp.tzinfo is UTC
    # The same delivery reaching another account's channel yields nothing for it.
    assert provider(kind_of(name), "99999").parse(body, {}) == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_is_refused_by_the_other_kind(name):
    other = "instagram" if kind_of(name) == "messenger" else "messenger"
    with pytest.raises(MalformedPayloadError, match="expected"):
        provider(other).event_id((SAMPLES / name).read_bytes(), {})


# --- signature and handshake ------------------------------------------------------------------------------
VECTOR = json.loads((SAMPLES / "signature_vector_and_verification.json").read_text())


def signed_request(rf, body: bytes, header_value: str | None):
    headers = {} if header_value is None else {"HTTP_X_HUB_SIGNATURE_256": header_value}
    return rf.post("/webhooks/messenger/t/", data=body, content_type="application/json", **headers)


def test_derived_vector_verifies_over_the_byte_exact_file(rf):
    body = (SAMPLES / "messenger_message_text.json").read_bytes()
    assert body == VECTOR["body"].encode()
    assert VECTOR["header"] == "X-Hub-Signature-256"
    provider("messenger", app_secret=VECTOR["secret"]).verify(signed_request(rf, body, VECTOR["expected"]))


@pytest.mark.parametrize(
    ("secret", "header", "body_suffix"),
    [
        ("fb_app_secret_x", None, b""),  # another secret
        (None, "sha256=" + "0" * 64, b""),  # wrong digest
        (None, None, b" "),  # one byte more than what was signed
        (None, "", b""),  # no header
    ],
)
def test_derived_vector_negative_cases(rf, secret, header, body_suffix):
    body = (SAMPLES / "messenger_message_text.json").read_bytes() + body_suffix
    header_value = VECTOR["expected"] if header is None else header
    with pytest.raises(WebhookVerificationError):
        provider("messenger", app_secret=secret or VECTOR["secret"]).verify(
            signed_request(rf, body, header_value or None)
        )


def handshake_request(rf, sample_request: str):
    query = urlsplit(sample_request.split(" ", 1)[1]).query
    return rf.get("/webhooks/messenger/t/", dict(parse_qsl(query, keep_blank_values=True)))


def test_handshake_positive_case(rf):
    case = VECTOR["verification_get"]
    request = handshake_request(rf, case["request"])
    response = provider("messenger", verify_token="fb_webhook_secret").handshake(request)
    expected = case["expected_response"]
    assert response.status_code == expected["status"]
    assert response["Content-Type"].startswith(expected["content_type"])
    assert response.content.decode() == expected["body"]


def test_handshake_token_mismatch_is_refused(rf):
    request = handshake_request(rf, VECTOR["verification_get"]["request"])
    response = provider("instagram", verify_token="another-token").handshake(request)
    assert response.status_code == 403
    assert b"yarchallenge" not in response.content


# --- outbound request bodies and error answers ------------------------------------------------------------
SEND = json.loads((SAMPLES / "outbound_send_api.json").read_text())["send_api"]


def test_text_in_window_body_matches():
    outbound = OutboundMessage(message_id=1, to="12345", text="Simple Message")
    assert provider("messenger").message_payload(outbound) == SEND["request_text_in_window"]


def test_human_agent_body_matches_courier():
    outbound = OutboundMessage(message_id=2, to="12345", text="Simple Message", content={"human_agent": True})
    expected = json.loads(SEND["request_text_human_agent_tag_courier_verbatim"])
    assert provider("instagram").message_payload(outbound) == expected


def error_case(fragment: str) -> dict:
    return next(case for case in SEND["errors"] if fragment in case["case"])


def error_answer(fragment: str) -> tuple[int, object]:
    case = error_case(fragment)
    if "body_raw" in case:
        return (200 if "HTTP 200" in case["case"] else 400), json.loads(case["body_raw"])
    return case.get("status", 400), case.get("body")


@pytest.mark.parametrize(
    ("fragment", "expected_type", "code", "channel_error"),
    [
        ("channel-specific error", PermanentFailure, "36000", False),
        ("invalid user", PermanentFailure, "100", False),
        ("throttled", RateLimited, "http_429", None),
        ("outside 24h", PermanentFailure, "10", False),
        ("user unavailable", PermanentFailure, "551", False),
    ],
)
def test_error_answers_are_classified(fragment, expected_type, code, channel_error):
    status, body = error_answer(fragment)
    error = error_from_graph(status, body)
    assert type(error) is expected_type
    assert error.code == code
    if channel_error is not None:
        assert error.channel_error is channel_error


def test_every_documented_error_case_is_classified():
    fragments = {"channel-specific error", "invalid user", "throttled", "outside 24h", "user unavailable"}
    assert len(SEND["errors"]) == len(fragments)
    assert all(any(f in case["case"] for f in fragments) for case in SEND["errors"])


@pytest.fixture(scope="module")
def fake():
    with FakeMeta(access_token="EAAP", page_id=ACCOUNT_ID) as server:
        yield server


def over_http(fake) -> MessengerProvider:
    fake.reset()
    prov = provider("messenger")
    prov.config["api_base_url"] = f"{fake.base_url}/v21.0"
    return prov


@pytest.mark.parametrize(
    "fragment", ["channel-specific error", "invalid user", "outside 24h", "user unavailable"]
)
def test_error_answers_over_http(fake, fragment):
    status, body = error_answer(fragment)
    prov = over_http(fake)
    fake.fail_next(1, FakeResponse(status, body))
    with pytest.raises(PermanentFailure) as caught:
        prov.send(OutboundMessage(message_id=3, to="12345", text="Simple Message"))
    assert caught.value.code == str(body["error"]["code"])
    assert body["error"]["message"] in caught.value.reason


def test_success_answers_give_the_message_id(fake):
    courier = json.loads(SEND["success_response_courier_mock"])
    prov = over_http(fake)
    fake.fail_next(1, FakeResponse(200, courier))
    assert prov.send(OutboundMessage(message_id=4, to="12345", text="x")).platform_message_id == "mid.133"
    documented = SEND["success_response_shape_documented"]
    fake.fail_next(1, FakeResponse(200, documented))
    result = prov.send(OutboundMessage(message_id=5, to="5678", text="x"))
    assert result.platform_message_id == documented["message_id"]
    assert result.raw == documented
