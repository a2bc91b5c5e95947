"""send(), mark_read(), download_media() and check() over real HTTP against FakeWhatsApp."""

import socket
import threading

import pytest

from providers.base import CheckResult, DeliveryStatus, InboundAttachment, OutboundMessage
from providers.errors import AmbiguousFailure, PermanentFailure, RateLimited, TransientFailure
from providers.fakes.server import FakeResponse
from providers.fakes.whatsapp import FakeWhatsApp
from providers.registry import get_provider
from providers.whatsapp_cloud import WhatsAppCloudProvider
from tests.factories import DEFAULT_CONFIG, ChannelFactory

CONFIG, CREDENTIALS = DEFAULT_CONFIG["whatsapp_cloud"]
PHONE_NUMBER_ID = CONFIG["phone_number_id"]
TOKEN = CREDENTIALS["access_token"]
MESSAGES_PATH = f"/v21.0/{PHONE_NUMBER_ID}/messages"


@pytest.fixture(scope="module")
def fake():
    with FakeWhatsApp(
        access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID, verified_name="Acme Support"
    ) as server:
        yield server


@pytest.fixture
def provider(fake, db) -> WhatsAppCloudProvider:
    fake.reset()
    channel = ChannelFactory(
        kind="whatsapp_cloud", config={**CONFIG, "api_base_url": f"{fake.base_url}/v21.0"}
    )
    provider = get_provider(channel)
    assert isinstance(provider, WhatsAppCloudProvider)
    return provider


def sent_body(fake, index: int = -1) -> dict:
    return fake.received(MESSAGES_PATH, method="POST")[index].json


# --- success shapes ---------------------------------------------------------------------------------------
def test_text(provider, fake):
    result = provider.send(OutboundMessage(message_id=4821, to="+49 151 2345 6789", text="Hallo Lena"))
    (request,) = fake.received(MESSAGES_PATH)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915123456789",
        "type": "text",
        "text": {"body": "Hallo Lena", "preview_url": False},
        "biz_opaque_callback_data": "alexia:4821",
    }
    assert result.platform_message_id.startswith("wamid.")
    assert result.status == DeliveryStatus.SENT
    assert result.raw["contacts"] == [{"input": "4915123456789", "wa_id": "4915123456789"}]
    assert result.raw["messages"][0]["id"] == result.platform_message_id


def test_text_reply_has_context(provider, fake):
    provider.send(
        OutboundMessage(message_id=7, to="+5511987654321", text="Claro", reply_to_platform_id="wamid.Q1")
    )
    assert sent_body(fake)["context"] == {"message_id": "wamid.Q1"}


def test_template_with_variables(provider, fake):
    template = {"name": "order_shipped", "language": "pt_BR", "variables": ["Ana", 3]}
    provider.send(OutboundMessage(message_id=8, to="+351912345678", type="template", template=template))
    body = sent_body(fake)
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_shipped",
        "language": {"policy": "deterministic", "code": "pt_BR"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "3"}]}
        ],
    }
    assert body["biz_opaque_callback_data"] == "alexia:8"


def test_template_without_variables_has_no_components(provider, fake):
    provider.send(
        OutboundMessage(
            message_id=9, to="+351912345678", template={"name": "hello_world", "language": "en_US"}
        )
    )
    assert sent_body(fake)["template"] == {
        "name": "hello_world",
        "language": {"policy": "deterministic", "code": "en_US"},
    }


@pytest.mark.parametrize(
    ("attachment", "kind", "media"),
    [
        (
            {"url": "https://cdn.example.com/a.jpg", "content_type": "image/jpeg"},
            "image",
            {"link": "https://cdn.example.com/a.jpg"},
        ),
        (
            {"url": "https://cdn.example.com/v.mp4", "content_type": "video/mp4"},
            "video",
            {"link": "https://cdn.example.com/v.mp4"},
        ),
        (
            {
                "url": "https://cdn.example.com/f?id=1",
                "content_type": "application/pdf",
                "filename": "invoice.pdf",
            },
            "document",
            {"link": "https://cdn.example.com/f?id=1", "filename": "invoice.pdf"},
        ),
        (
            {"url": "https://cdn.example.com/manual.pdf"},
            "document",
            {"link": "https://cdn.example.com/manual.pdf"},
        ),
    ],
)
def test_media_by_link_with_caption(provider, fake, attachment, kind, media):
    provider.send(
        OutboundMessage(message_id=10, to="+34612345678", text="Aquí está", attachments=(attachment,))
    )
    body = sent_body(fake)
    assert body["type"] == kind
    assert body[kind] == {**media, "caption": "Aquí está"}


def test_audio_by_link_without_text(provider, fake):
    provider.send(
        OutboundMessage(
            message_id=11,
            to="+34612345678",
            attachments=({"url": "https://x.test/a.ogg", "content_type": "audio/ogg"},),
        )
    )
    assert sent_body(fake)["audio"] == {"link": "https://x.test/a.ogg"}


def test_audio_with_text_is_refused_before_any_request(provider, fake, tmp_path):
    path = tmp_path / "note.ogg"
    path.write_bytes(b"OggS")
    outbound = OutboundMessage(
        message_id=12,
        to="+34612345678",
        text="listen",
        attachments=({"path": str(path), "content_type": "audio/ogg"},),
    )
    with pytest.raises(PermanentFailure) as caught:
        provider.send(outbound)
    assert caught.value.code == "caption_not_supported"
    assert fake.received() == []


def test_media_by_upload(provider, fake, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nfake-image-bytes")
    outbound = OutboundMessage(
        message_id=13,
        to="+34612345678",
        text="foto",
        attachments=({"path": str(path), "content_type": "image/png"},),
    )
    result = provider.send(outbound)
    (upload,) = fake.received(f"/v21.0/{PHONE_NUMBER_ID}/media")
    assert upload.headers["Authorization"] == f"Bearer {TOKEN}"
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    body = sent_body(fake)
    media_id = body["image"]["id"]
    assert body["image"] == {"id": media_id, "caption": "foto"}
    assert fake.media[media_id] == (b"\x89PNG\r\n\x1a\nfake-image-bytes", "image/png")
    assert result.platform_message_id.startswith("wamid.")


def test_document_upload_keeps_filename(provider, fake, tmp_path):
    path = tmp_path / "contract.pdf"
    path.write_bytes(b"%PDF-1.7")
    provider.send(OutboundMessage(message_id=14, to="+34612345678", attachments=({"path": str(path)},)))
    body = sent_body(fake)
    assert body["type"] == "document"
    assert body["document"]["filename"] == "contract.pdf"
    assert fake.media[body["document"]["id"]] == (b"%PDF-1.7", "application/pdf")


def test_unreadable_upload_is_permanent(provider, fake, tmp_path):
    outbound = OutboundMessage(message_id=15, to="+1555", attachments=({"path": str(tmp_path / "gone.jpg")},))
    with pytest.raises(PermanentFailure) as caught:
        provider.send(outbound)
    assert caught.value.code == "attachment_unreadable"


def test_upload_error_is_mapped_and_no_message_is_sent(provider, fake, tmp_path):
    path = tmp_path / "big.mp4"
    path.write_bytes(b"\x00" * 64)
    fake.fail_next(
        1, FakeWhatsApp.error(131053, "Media upload error", details="File too big"), path_contains="/media"
    )
    with pytest.raises(TransientFailure) as caught:
        provider.send(OutboundMessage(message_id=16, to="+1555", attachments=({"path": str(path)},)))
    assert caught.value.code == "131053"
    assert fake.received(MESSAGES_PATH) == []


def test_upload_timeout_is_retryable_not_ambiguous(provider, fake, tmp_path, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    path = tmp_path / "p.jpg"
    path.write_bytes(b"jpg")
    fake.delay_next(1, 1.0, path_contains="/media")
    with pytest.raises(TransientFailure) as caught:
        provider.send(OutboundMessage(message_id=17, to="+1555", attachments=({"path": str(path)},)))
    assert not isinstance(caught.value, AmbiguousFailure)


def test_reaction(provider, fake):
    outbound = OutboundMessage(
        message_id=18,
        to="+390612345678",
        type="reaction",
        content={"message_id": "wamid.R1", "emoji": "\u2764\ufe0f"},
    )
    provider.send(outbound)
    body = sent_body(fake)
    assert body["type"] == "reaction"
    assert body["reaction"] == {"message_id": "wamid.R1", "emoji": "\u2764\ufe0f"}
    assert "context" not in body


@pytest.mark.parametrize(
    ("outbound", "code"),
    [
        (OutboundMessage(message_id=1, to="+4915"), "empty_message"),
        (OutboundMessage(message_id=1, to="not a number", text="x"), "invalid_recipient"),
        (
            OutboundMessage(message_id=1, to="+4915", type="reaction", content={"emoji": "x"}),
            "invalid_reaction",
        ),
        (OutboundMessage(message_id=1, to="+4915", template={"name": "t"}), "invalid_template"),
        (
            OutboundMessage(
                message_id=1, to="+4915", attachments=({"url": "https://a/1.jpg"}, {"url": "https://a/2.jpg"})
            ),
            "too_many_attachments",
        ),
    ],
)
def test_impossible_messages_are_refused_without_a_request(provider, fake, outbound, code):
    with pytest.raises(PermanentFailure) as caught:
        provider.send(outbound)
    assert caught.value.code == code
    assert fake.received() == []


# --- errors -----------------------------------------------------------------------------------------------
def test_429_honours_retry_after(provider, fake):
    fake.fail_next(
        1,
        FakeWhatsApp.error(130429, "(#130429) Rate limit hit", status=429, headers={"Retry-After": "7"}),
    )
    with pytest.raises(RateLimited) as caught:
        provider.send(OutboundMessage(message_id=20, to="+1555", text="hi"))
    assert caught.value.retry_after == 7
    assert caught.value.code == "130429"


@pytest.mark.parametrize(
    ("code", "status", "retry_after"),
    [
        (4, 400, 60),
        (613, 429, 60),
        (80007, 400, 60),
        (130429, 403, 2),
        (131048, 400, 60),
        (131056, 400, 60),
        (133016, 400, 60),
    ],
)
def test_throttling_codes_are_rate_limited(provider, fake, code, status, retry_after):
    fake.fail_next(1, FakeWhatsApp.error(code, f"(#{code}) throttled", status=status))
    with pytest.raises(RateLimited) as caught:
        provider.send(OutboundMessage(message_id=21, to="+1555", text="hi"))
    assert caught.value.retry_after == retry_after
    assert caught.value.code == str(code)


def test_plain_429_without_graph_body(provider, fake):
    fake.fail_next(1, FakeResponse(429, "Too Many Requests", content_type="text/plain"))
    with pytest.raises(RateLimited) as caught:
        provider.send(OutboundMessage(message_id=22, to="+1555", text="hi"))
    assert caught.value.retry_after == 5
    assert caught.value.code == "http_429"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(provider, fake, status):
    fake.fail_next(
        1, FakeResponse(status, {"error": {"message": "An unexpected error has occurred.", "code": 2}})
    )
    with pytest.raises(TransientFailure) as caught:
        provider.send(OutboundMessage(message_id=23, to="+1555", text="hi"))
    assert not isinstance(caught.value, (RateLimited, AmbiguousFailure))


@pytest.mark.parametrize("code", [1, 2, 131000, 131016, 131053])
def test_transient_codes(provider, fake, code):
    fake.fail_next(
        1, FakeWhatsApp.error(code, f"(#{code}) try later", details="Service temporarily unavailable")
    )
    with pytest.raises(TransientFailure) as caught:
        provider.send(OutboundMessage(message_id=24, to="+1555", text="hi"))
    assert type(caught.value) is TransientFailure
    assert caught.value.code == str(code)
    assert "Service temporarily unavailable" in caught.value.reason


@pytest.mark.parametrize(
    ("code", "message", "details"),
    [
        (131047, "Re-engagement message", "Message failed to send because more than 24 hours have passed."),
        (131026, "Message undeliverable", "Message Undeliverable."),
        (131051, "Unsupported message type", "Message type is not currently supported"),
        (368, "(#368) Temporarily blocked for policies violations", ""),
        (100, "(#100) Invalid parameter", "Parameter to is not a valid phone number"),
        (131008, "(#131008) Required parameter is missing", "Parameter 'text' is required."),
        (131009, "(#131009) Parameter value is not valid", "Recipient phone number not in allowed list"),
        (
            132000,
            "(#132000) Number of parameters does not match the expected number of params",
            "body: 2 expected",
        ),
        (
            132001,
            "(#132001) Template name does not exist in the translation",
            "template name (x) does not exist",
        ),
        (131030, "(#131030) Recipient phone number not in allowed list", "Add recipient to the allowed list"),
    ],
)
def test_permanent_codes(provider, fake, code, message, details):
    fake.fail_next(1, FakeWhatsApp.error(code, message, details=details))
    with pytest.raises(PermanentFailure) as caught:
        provider.send(OutboundMessage(message_id=25, to="+1555", text="hi"))
    assert caught.value.code == str(code)
    assert caught.value.reason == (f"{message}: {details}" if details else message)
    assert caught.value.channel_error is (code == 368)


def test_wrong_token_is_permanent_190(provider, fake):
    fake.access_token = "rotated"
    try:
        with pytest.raises(PermanentFailure) as caught:
            provider.send(OutboundMessage(message_id=26, to="+1555", text="hi"))
    finally:
        fake.access_token = TOKEN
    assert caught.value.code == "190"
    assert "Invalid OAuth access token" in caught.value.reason
    assert caught.value.channel_error is True


def test_unknown_phone_number_id_is_permanent(provider, fake):
    provider.config["phone_number_id"] = "999000111222333"
    with pytest.raises(PermanentFailure) as caught:
        provider.send(OutboundMessage(message_id=27, to="+1555", text="hi"))
    assert caught.value.code == "100"
    assert "999000111222333" in caught.value.reason
    assert caught.value.channel_error is True


def test_read_timeout_is_ambiguous(provider, fake, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    fake.delay_next(1, 1.0)
    with pytest.raises(AmbiguousFailure) as caught:
        provider.send(OutboundMessage(message_id=28, to="+1555", text="hi"))
    assert caught.value.code == "timeout"
    assert isinstance(caught.value.__cause__, Exception)


def test_connection_refused_is_transient_not_ambiguous(provider):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider.config["api_base_url"] = f"http://127.0.0.1:{port}/v21.0"
    with pytest.raises(TransientFailure) as caught:
        provider.send(OutboundMessage(message_id=29, to="+1555", text="hi"))
    assert not isinstance(caught.value, AmbiguousFailure)
    assert caught.value.code == "connection_error"


def test_connection_dropped_after_sending_is_ambiguous(provider):
    """A server that reads the whole request, then hangs up without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while b"biz_opaque_callback_data" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            received.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    provider.config["api_base_url"] = f"http://127.0.0.1:{server.getsockname()[1]}/v21.0"
    try:
        with pytest.raises(AmbiguousFailure) as caught:
            provider.send(OutboundMessage(message_id=30, to="+1555", text="hi"))
    finally:
        thread.join(5)
        server.close()
    assert caught.value.code == "connection_dropped"
    assert b"alexia:30" in received[0]


def test_200_without_message_id_is_ambiguous(provider, fake):
    fake.fail_next(1, FakeResponse(200, {"messaging_product": "whatsapp", "contacts": [], "messages": []}))
    with pytest.raises(AmbiguousFailure):
        provider.send(OutboundMessage(message_id=31, to="+1555", text="hi"))


def test_200_with_html_is_ambiguous(provider, fake):
    fake.fail_next(1, FakeResponse(200, "<html>proxy</html>", content_type="text/html"))
    with pytest.raises(AmbiguousFailure):
        provider.send(OutboundMessage(message_id=32, to="+1555", text="hi"))


# --- mark_read, download, check, lookup -------------------------------------------------------------------
def test_mark_read(provider, fake):
    provider.mark_read("wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABIYFjNFQjBBMUIyQzNENEU1RjZBN0I4AA==")
    assert sent_body(fake) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABIYFjNFQjBBMUIyQzNENEU1RjZBN0I4AA==",
    }


def test_mark_read_error_is_mapped(provider, fake):
    fake.fail_next(1, FakeWhatsApp.error(100, "(#100) Invalid parameter", details="message_id is invalid"))
    with pytest.raises(PermanentFailure):
        provider.mark_read("wamid.nope")


def test_download_media(provider, fake):
    fake.add_media("1083526743129987", b"\xff\xd8\xffjpeg-bytes", "image/jpeg")
    content, content_type = provider.download_media(
        InboundAttachment(kind="image", content_type="image/jpeg", platform_media_id="1083526743129987")
    )
    assert (content, content_type) == (b"\xff\xd8\xffjpeg-bytes", "image/jpeg")
    lookup, download = fake.received(method="GET")
    assert lookup.path == "/v21.0/1083526743129987"
    assert download.path == "/whatsapp_business/attachments/"
    assert download.query["mid"] == ["1083526743129987"]
    assert download.headers["Authorization"] == f"Bearer {TOKEN}"


def test_download_unknown_media_is_permanent(provider, fake):
    with pytest.raises(PermanentFailure) as caught:
        provider.download_media(InboundAttachment(kind="image", platform_media_id="404404404"))
    assert caught.value.code == "100"


def test_download_file_5xx_is_transient(provider, fake):
    fake.add_media("55", b"x", "audio/ogg")
    fake.fail_next(
        1, FakeResponse(503, "unavailable", content_type="text/plain"), path_contains="/attachments"
    )
    with pytest.raises(TransientFailure):
        provider.download_media(InboundAttachment(kind="audio", platform_media_id="55"))


def test_check_ok(provider, fake):
    assert provider.check() == CheckResult(True, "Connected as +1 555-010-4477 (Acme Support)")
    (request,) = fake.received()
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}"
    assert request.query["fields"] == ["display_phone_number,verified_name"]


def test_check_with_bad_token(provider, fake):
    fake.access_token = "rotated"
    try:
        result = provider.check()
    finally:
        fake.access_token = TOKEN
    assert result.ok is False
    assert "Invalid OAuth access token" in result.detail
    assert "190" in result.detail
    assert TOKEN not in result.detail


def test_check_unreachable(provider):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider.config["api_base_url"] = f"http://127.0.0.1:{port}/v21.0"
    assert provider.check().ok is False


def test_lookup_key_and_limits(provider):
    assert provider.lookup_key() == PHONE_NUMBER_ID
    assert provider.rate_limit() == 80
    assert provider.supports_lookup is False
    assert provider.api_base.endswith("/v21.0")


def test_default_api_base_is_the_versioned_graph_url(db, settings):
    settings.WHATSAPP_API_BASE = "https://graph.facebook.com/v21.0"
    channel = ChannelFactory(kind="whatsapp_cloud")
    assert get_provider(channel).api_base == "https://graph.facebook.com/v21.0"
