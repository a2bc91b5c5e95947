"""send(), download_media(), check() and on_activate() over real HTTP against FakeMeta."""

import pytest

from providers.base import DeliveryStatus, InboundAttachment, OutboundMessage
from providers.errors import AmbiguousFailure, PermanentFailure, RateLimited, TransientFailure
from providers.fakes.meta import FakeMeta
from providers.fakes.server import FakeResponse
from providers.meta_messenger import (
    PAGE_SUBSCRIBED_FIELDS,
    InstagramProvider,
    MessengerProvider,
    appsecret_proof,
)
from providers.registry import get_provider
from tests.factories import DEFAULT_CONFIG, ChannelFactory

PAGE_CONFIG, CREDENTIALS = DEFAULT_CONFIG["messenger"]
IG_CONFIG = DEFAULT_CONFIG["instagram"][0]
PAGE_ID = PAGE_CONFIG["page_id"]
IG_ID = IG_CONFIG["instagram_account_id"]
TOKEN = CREDENTIALS["page_access_token"]
APP_SECRET = CREDENTIALS["app_secret"]
SEND_PATH = "/v21.0/me/messages"
PSID = "24683579135792468"


@pytest.fixture(scope="module")
def fake():
    with FakeMeta(
        access_token=TOKEN, page_id=PAGE_ID, instagram_account_id=IG_ID, app_secret=APP_SECRET
    ) as server:
        yield server


def _provider(fake, kind: str):
    fake.reset()
    fake.unavailable.clear()
    fake.window_closed.clear()
    config = PAGE_CONFIG if kind == "messenger" else IG_CONFIG
    channel = ChannelFactory(kind=kind, config={**config, "api_base_url": f"{fake.base_url}/v21.0"})
    return get_provider(channel)


@pytest.fixture
def provider(fake, db) -> MessengerProvider:
    prov = _provider(fake, "messenger")
    assert type(prov) is MessengerProvider
    return prov


@pytest.fixture
def instagram(fake, db) -> InstagramProvider:
    prov = _provider(fake, "instagram")
    assert type(prov) is InstagramProvider
    return prov


def text(message_id: int = 1, body: str = "hi", **content) -> OutboundMessage:
    return OutboundMessage(message_id=message_id, to=PSID, text=body, content=content)


# --- success shapes ---------------------------------------------------------------------------------------
def test_text_in_window(provider, fake):
    result = provider.send(text(4821, "Hello Lena"))
    (request,) = fake.received(SEND_PATH)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "access_token" not in request.query
    assert request.query["appsecret_proof"] == [appsecret_proof(TOKEN, APP_SECRET)]
    assert request.json == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello Lena"},
    }
    assert result.platform_message_id.startswith("m_")
    assert result.status == DeliveryStatus.SENT
    assert result.raw == {"recipient_id": PSID, "message_id": result.platform_message_id}


def test_human_agent_tag_outside_the_window(provider, fake):
    fake.window_closed.add(PSID)
    provider.send(text(2, "Sorry for the delay", human_agent=True))
    body = fake.received(SEND_PATH)[-1].json
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_outside_the_window_without_tag_is_a_clear_permanent_failure(provider, fake):
    fake.window_closed.add(PSID)
    with pytest.raises(PermanentFailure) as caught:
        provider.send(text(3))
    assert caught.value.code == "10"
    assert caught.value.reason.startswith("Outside the 24-hour messaging window")
    assert "HUMAN_AGENT" in caught.value.reason
    assert "(#10) This message is sent outside of allowed window." in caught.value.reason
    assert caught.value.channel_error is False


def test_image_by_url(provider, fake):
    attachment = {"url": "https://files.example.com/a.jpg", "content_type": "image/jpeg"}
    provider.send(OutboundMessage(message_id=4, to=PSID, attachments=(attachment,)))
    assert fake.received(SEND_PATH)[-1].json["message"] == {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://files.example.com/a.jpg", "is_reusable": False},
        }
    }


def test_pdf_by_url_is_a_file(provider, fake):
    provider.send(
        OutboundMessage(message_id=5, to=PSID, attachments=({"url": "https://x.example/manual.pdf"},))
    )
    assert fake.received(SEND_PATH)[-1].json["message"]["attachment"]["type"] == "file"


def test_local_file_is_sent_as_multipart_filedata(provider, fake, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nfake-image-bytes")
    attachment = {
        "path": str(path),
        "url": "http://127.0.0.1:8000/media/photo.png",
        "content_type": "image/png",
    }
    result = provider.send(OutboundMessage(message_id=6, to=PSID, attachments=(attachment,)))
    request = fake.received(SEND_PATH)[-1]
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert fake.uploads[-1] == (b"\x89PNG\r\n\x1a\nfake-image-bytes", "image/png")
    assert result.platform_message_id.startswith("m_")


def test_instagram_sends_by_url_even_with_a_local_file(instagram, fake, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"jpg")
    attachment = {
        "path": str(path),
        "url": "https://files.example.com/photo.jpg",
        "content_type": "image/jpeg",
    }
    instagram.send(OutboundMessage(message_id=7, to="6543210987654321", attachments=(attachment,)))
    request = fake.received(SEND_PATH)[-1]
    assert request.json["message"]["attachment"]["payload"]["url"] == "https://files.example.com/photo.jpg"
    assert request.json["recipient"] == {"id": "6543210987654321"}


@pytest.mark.parametrize(
    ("outbound", "code"),
    [
        (OutboundMessage(message_id=1, to=PSID), "empty_message"),
        (OutboundMessage(message_id=1, to="", text="x"), "invalid_recipient"),
        (
            OutboundMessage(message_id=1, to=PSID, template={"name": "t", "language": "en"}),
            "template_not_supported",
        ),
        (OutboundMessage(message_id=1, to=PSID, type="reaction", content={"emoji": "x"}), "unsupported_type"),
        (OutboundMessage(message_id=1, to=PSID, text="x" * 2001), "text_too_long"),
        (
            OutboundMessage(
                message_id=1, to=PSID, attachments=({"url": "https://a/1.jpg"}, {"url": "https://a/2.jpg"})
            ),
            "too_many_attachments",
        ),
        (
            OutboundMessage(message_id=1, to=PSID, text="look", attachments=({"url": "https://a/1.jpg"},)),
            "text_with_attachment",
        ),
        (OutboundMessage(message_id=1, to=PSID, attachments=({"filename": "a.jpg"},)), "invalid_attachment"),
    ],
)
def test_impossible_messages_are_refused_without_a_request(provider, fake, outbound, code):
    with pytest.raises(PermanentFailure) as caught:
        provider.send(outbound)
    assert caught.value.code == code
    assert fake.received() == []


def test_instagram_text_limit_is_1000_bytes(instagram, fake):
    instagram.send(OutboundMessage(message_id=8, to="1", text="é" * 500))
    with pytest.raises(PermanentFailure) as caught:
        instagram.send(OutboundMessage(message_id=9, to="1", text="é" * 501))
    assert caught.value.code == "text_too_long"
    assert len(fake.received(SEND_PATH)) == 1


# --- errors -----------------------------------------------------------------------------------------------
def test_429_honours_retry_after(provider, fake):
    fake.fail_next(
        1,
        FakeMeta.error(
            613,
            "(#613) Calls to this api have exceeded the rate limit.",
            status=429,
            headers={"Retry-After": "7"},
        ),
    )
    with pytest.raises(RateLimited) as caught:
        provider.send(text())
    assert (caught.value.retry_after, caught.value.code) == (7, "613")


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80002, 80006, 80007])
def test_throttling_codes_are_rate_limited(provider, fake, code):
    fake.fail_next(1, FakeMeta.error(code, f"(#{code}) Application request limit reached"))
    with pytest.raises(RateLimited) as caught:
        provider.send(text())
    assert (caught.value.retry_after, caught.value.code) == (60, str(code))


def test_plain_429_without_graph_body(provider, fake):
    fake.fail_next(1, FakeResponse(429, "Too Many Requests", content_type="text/plain"))
    with pytest.raises(RateLimited) as caught:
        provider.send(text())
    assert (caught.value.retry_after, caught.value.code) == (5, "http_429")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(provider, fake, status):
    fake.fail_next(
        1, FakeResponse(status, {"error": {"message": "An unexpected error has occurred.", "code": 2}})
    )
    with pytest.raises(TransientFailure) as caught:
        provider.send(text())
    assert type(caught.value) is TransientFailure


@pytest.mark.parametrize("code", [1, 2, 1200])
def test_transient_codes(provider, fake, code):
    fake.fail_next(1, FakeMeta.error(code, "(#1200) Temporary send message failure. Please try again later"))
    with pytest.raises(TransientFailure) as caught:
        provider.send(text())
    assert type(caught.value) is TransientFailure
    assert caught.value.code == str(code)


def test_expired_token_marks_the_channel(provider, fake):
    fake.fail_next(
        1,
        FakeMeta.error(
            190,
            "Error validating access token: Session has expired on Friday, 15-Nov-24 10:00:00 PST.",
            subcode=463,
        ),
    )
    with pytest.raises(PermanentFailure) as caught:
        provider.send(text())
    assert caught.value.code == "190"
    assert caught.value.reason.startswith("Error validating access token: Session has expired")
    assert caught.value.channel_error is True


def test_wrong_token_is_permanent_190(provider, fake):
    fake.access_token = "rotated"
    try:
        with pytest.raises(PermanentFailure) as caught:
            provider.send(text())
    finally:
        fake.access_token = TOKEN
    assert caught.value.code == "190"
    assert caught.value.channel_error is True


def test_wrong_app_secret_fails_the_proof(provider, fake):
    fake.app_secret = "another-secret"
    try:
        with pytest.raises(PermanentFailure) as caught:
            provider.send(text())
    finally:
        fake.app_secret = APP_SECRET
    assert caught.value.code == "100"
    assert "appsecret_proof" in caught.value.reason


def test_user_unavailable_551(provider, fake):
    fake.unavailable.add(PSID)
    with pytest.raises(PermanentFailure) as caught:
        provider.send(text())
    assert caught.value.code == "551"
    assert caught.value.reason == (
        "The person cannot be reached on this channel right now. Meta: (#551) This person isn't available right now."
    )
    assert caught.value.channel_error is False


@pytest.mark.parametrize(
    ("code", "subcode", "message", "status", "channel_error"),
    [
        (100, None, "Invalid user", 400, False),
        (100, 2018001, "(#100) No matching user found", 400, False),
        (36000, None, "The image size is too large.", 200, False),
        (10, 2534022, "(#10) This message is sent outside of allowed window.", 400, False),
        (200, 1545041, "(#200) This person isn't available right now.", 400, False),
        (10, 2018108, "(#10) This person isn't receiving messages from you right now.", 400, False),
        (10, None, "(#10) Application does not have permission for this action", 403, True),
        (200, 2018028, "(#200) Cannot message users who are not admins of the app", 403, True),
        (230, None, "(#230) Requires pages_messaging permission to manage the object", 403, True),
        (
            368,
            None,
            "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
            400,
            True,
        ),
        (100, 33, "Unsupported post request. Object with ID '1' does not exist", 400, True),
    ],
)
def test_permanent_codes(provider, fake, code, subcode, message, status, channel_error):
    fake.fail_next(1, FakeMeta.error(code, message, status=status, subcode=subcode))
    with pytest.raises(PermanentFailure) as caught:
        provider.send(text())
    assert caught.value.code == str(code)
    assert message in caught.value.reason
    assert caught.value.channel_error is channel_error


def test_success_status_without_message_id_is_ambiguous(provider, fake):
    fake.fail_next(1, FakeResponse(200, {"recipient_id": PSID}))
    with pytest.raises(AmbiguousFailure):
        provider.send(text())


def test_read_timeout_is_ambiguous(provider, fake, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    fake.delay_next(1, 1.0)
    with pytest.raises(AmbiguousFailure) as caught:
        provider.send(text())
    assert caught.value.code == "timeout"


# --- media, check, activation -----------------------------------------------------------------------------
def test_download_media_needs_no_token(provider, fake):
    url = fake.add_media("photo-1.jpg", b"\xff\xd8jpeg", "image/jpeg")
    assert provider.download_media(InboundAttachment(kind="image", url=url)) == (
        b"\xff\xd8jpeg",
        "image/jpeg",
    )
    (request,) = fake.received("/cdn/")
    assert "Authorization" not in request.headers
    assert request.query == {}


def test_expired_media_link_is_permanent(provider, fake):
    with pytest.raises(PermanentFailure) as caught:
        provider.download_media(InboundAttachment(kind="image", url=f"{fake.base_url}/cdn/gone.jpg"))
    assert caught.value.code == "http_403"


def test_media_host_5xx_is_transient(provider, fake):
    url = fake.add_media("v.mp4", b"mp4", "video/mp4")
    fake.fail_next(1, FakeResponse(503, "busy", content_type="text/plain"), path_contains="/cdn/")
    with pytest.raises(TransientFailure):
        provider.download_media(InboundAttachment(kind="video", url=url))


def test_relative_media_url_is_refused(provider, fake):
    with pytest.raises(PermanentFailure):
        provider.download_media(InboundAttachment(kind="video", url="/reel/123451234512345/"))
    assert fake.received() == []


def test_check_messenger(provider, fake):
    result = provider.check()
    assert (result.ok, result.detail) == (True, f"Connected to the Page Alexia Demo Shop ({PAGE_ID})")
    (request,) = fake.received(f"/v21.0/{PAGE_ID}")
    assert request.query["fields"] == ["name"]


def test_check_instagram(instagram, fake):
    result = instagram.check()
    assert (result.ok, result.detail) == (True, f"Connected as @alexia.demo ({IG_ID})")
    assert fake.received(f"/v21.0/{IG_ID}")[0].query["fields"] == ["username,name"]


def test_check_with_a_bad_token_says_why(provider, fake):
    fake.access_token = "rotated"
    try:
        result = provider.check()
    finally:
        fake.access_token = TOKEN
    assert result.ok is False
    assert "Invalid OAuth access token" in result.detail and "190" in result.detail


def test_check_unknown_page(provider, fake):
    provider.config["page_id"] = "999000111"
    result = provider.check()
    assert result.ok is False
    assert "999000111" in result.detail


def test_on_activate_subscribes_the_page(provider, fake):
    provider.on_activate()
    assert fake.subscriptions[PAGE_ID] == list(PAGE_SUBSCRIBED_FIELDS)


def test_lookup_keys(provider, instagram):
    assert provider.lookup_key() == PAGE_ID
    assert instagram.lookup_key() == IG_ID
