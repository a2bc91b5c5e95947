"""send(), lookup(), download_media() and check() over real HTTP against the local FakeTwilio."""

import base64
import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import DeliveryStatus, InboundAttachment, OutboundMessage
from providers.errors import AmbiguousFailure, PermanentFailure, RateLimited, TransientFailure
from providers.fakes.server import FakeResponse
from providers.fakes.twilio import FakeTwilio
from providers.sms import count_segments
from providers.twilio import TwilioSmsProvider
from tests.factories import ChannelFactory

from .conftest import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.django_db
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def out(to: str = "+15105550123", text: str = "Your order #4411 is ready.", **kwargs) -> OutboundMessage:
    return OutboundMessage(message_id=1, to=to, text=text, **kwargs)


def basic_auth(sid: str = ACCOUNT_SID, token: str = AUTH_TOKEN) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


# --- success ---------------------------------------------------------------------------------------------
def test_send_sms_success_shape(sms, fake_twilio):
    text = "Your parcel is on its way. " * 7  # 189 GSM-7 characters: two segments
    result = sms.send(
        out(text=text, status_callback_url="https://inbox.example.com/webhooks/twilio_sms/tok/")
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", result.platform_message_id)
    assert result.status is DeliveryStatus.SENT
    assert result.segments == 2
    assert result.raw["status"] == "queued"
    [request] = fake_twilio.received(MESSAGES, method="POST")
    assert request.headers["Authorization"] == basic_auth()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "To": ["+15105550123"],
        "From": ["+15005550006"],
        "Body": [text],
        "StatusCallback": ["https://inbox.example.com/webhooks/twilio_sms/tok/"],
    }


def test_segments_come_from_the_response(sms, fake_twilio):
    message = {"sid": "SM" + "ab" * 16, "status": "queued", "num_segments": "4", "body": "short"}
    fake_twilio.fail_next(1, FakeResponse(201, message))
    assert sms.send(out(text="short")).segments == 4


def test_segments_fall_back_to_counting_when_absent(sms, fake_twilio):
    fake_twilio.fail_next(
        1, FakeResponse(201, {"sid": "SM" + "cd" * 16, "status": "queued", "num_segments": None})
    )
    text = "Olá! Sua encomenda chegou 📦 " * 3
    assert sms.send(out(text=text)).segments == count_segments(text) == 2


def test_send_with_messaging_service_and_media(fake_twilio, db):
    config = {
        "account_sid": ACCOUNT_SID,
        "from": "+15005550006",
        "messaging_service_sid": "MG" + "0" * 32,
        "api_base_url": fake_twilio.base_url,
    }
    provider = TwilioSmsProvider(ChannelFactory(kind="twilio_sms", config=config))
    attachments = (
        {"url": "https://cdn.example.com/a.jpg", "content_type": "image/jpeg"},
        {"path": "/tmp/local-only.pdf"},
        {"url": "https://cdn.example.com/b.png", "content_type": "image/png"},
    )
    result = provider.send(out(text="Photos attached", attachments=attachments))
    assert result.platform_message_id.startswith("MM")
    assert result.raw["status"] == "accepted"
    form = fake_twilio.received(MESSAGES)[0].form
    assert form["MessagingServiceSid"] == ["MG" + "0" * 32]
    assert "From" not in form
    assert form["MediaUrl"] == ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png"]


def test_send_whatsapp_prefixes_addresses(wa, fake_twilio):
    result = wa.send(out(to="+34612000777", text="¡Hola Marta! Tu pedido está listo."))
    assert result.segments == 1
    form = fake_twilio.received(MESSAGES)[0].form
    assert form["To"] == ["whatsapp:+34612000777"]
    assert form["From"] == ["whatsapp:+14155238886"]
    assert wa.lookup_key() == f"{ACCOUNT_SID}:whatsapp:+14155238886"


def test_send_whatsapp_template_by_content_sid(wa, fake_twilio):
    template = {
        "name": "order_ready",
        "language": "es",
        "content_sid": "HX" + "e" * 32,
        "variables": ["Marta", "4411"],
    }
    wa.send(out(to="whatsapp:+34612000777", text="", template=template))
    form = fake_twilio.received(MESSAGES)[0].form
    assert form["ContentSid"] == ["HX" + "e" * 32]
    assert json.loads(form["ContentVariables"][0]) == {"1": "Marta", "2": "4411"}
    assert "Body" not in form


def test_template_without_content_sid_fails_before_calling_twilio(wa, fake_twilio):
    with pytest.raises(PermanentFailure) as info:
        wa.send(out(text="", template={"name": "order_ready", "language": "es", "variables": {}}))
    assert info.value.code == "template_unsupported"
    assert fake_twilio.received(MESSAGES) == []


# --- retryable failures ----------------------------------------------------------------------------------
def test_429_with_retry_after(sms, fake_twilio):
    fake_twilio.fail_next(1, FakeTwilio.rate_limited(retry_after=7))
    with pytest.raises(RateLimited) as info:
        sms.send(out())
    assert info.value.retry_after == 7.0
    assert info.value.code == "20429"
    assert info.value.reason == "Too Many Requests"


def test_429_without_retry_hint(sms, fake_twilio):
    fake_twilio.fail_next(1, FakeTwilio.rate_limited())
    with pytest.raises(RateLimited) as info:
        sms.send(out())
    assert info.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(sms, fake_twilio, status):
    fake_twilio.fail_next(1, FakeTwilio.error(20500, "Internal Server Error", status))
    with pytest.raises(TransientFailure) as info:
        sms.send(out())
    assert not isinstance(info.value, AmbiguousFailure | RateLimited)
    assert info.value.code == "20500"


def test_read_timeout_is_ambiguous_and_lookup_finds_the_message(sms, fake_twilio, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    since = datetime.now(UTC) - timedelta(seconds=1)
    fake_twilio.delay_next(1, 1.0, path_contains="Messages.json")
    with pytest.raises(AmbiguousFailure) as info:
        sms.send(out(text="Sent while the API was slow"))
    assert info.value.__cause__ is not None
    time.sleep(0.9)  # the fake finishes creating the message after our client gave up
    found = sms.lookup(out(text="Sent while the API was slow"), since)
    assert found is not None
    assert found.platform_message_id == fake_twilio.messages[0]["sid"]


def test_connection_refused_is_transient_not_ambiguous(db):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"account_sid": ACCOUNT_SID, "from": "+15005550006", "api_base_url": f"http://127.0.0.1:{port}"}
    provider = TwilioSmsProvider(ChannelFactory(kind="twilio_sms", config=config))
    with pytest.raises(TransientFailure) as info:
        provider.send(out())
    assert not isinstance(info.value, AmbiguousFailure)


def test_connection_dropped_after_sending_is_ambiguous(db):
    """A server that reads the whole request and hangs up without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def hang_up() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    config = {
        "account_sid": ACCOUNT_SID,
        "from": "+15005550006",
        "api_base_url": f"http://127.0.0.1:{server.getsockname()[1]}",
    }
    provider = TwilioSmsProvider(ChannelFactory(kind="twilio_sms", config=config))
    try:
        with pytest.raises(AmbiguousFailure):
            provider.send(out())
    finally:
        thread.join(timeout=5)
        server.close()


def test_2xx_without_sid_is_ambiguous(sms, fake_twilio):
    fake_twilio.fail_next(1, FakeResponse(201, "<html>proxy says ok</html>", content_type="text/html"))
    with pytest.raises(AmbiguousFailure):
        sms.send(out())


# --- permanent failures ----------------------------------------------------------------------------------
def test_21211_invalid_to_from_the_fake(sms, fake_twilio):
    with pytest.raises(PermanentFailure) as info:
        sms.send(out(to="+1555BADNUMBER"))
    assert info.value.code == "21211"
    assert info.value.reason == "The 'To' number +1555BADNUMBER is not a valid phone number."


def test_21610_unsubscribed_recipient_from_the_fake(sms, fake_twilio):
    fake_twilio.unsubscribed.add("+15105550188")
    with pytest.raises(PermanentFailure) as info:
        sms.send(out(to="+15105550188"))
    assert (info.value.code, info.value.reason) == ("21610", "Attempt to send to unsubscribed recipient")


def test_21604_missing_to_from_the_fake(sms, fake_twilio):
    with pytest.raises(PermanentFailure) as info:
        sms.send(out(to=""))
    assert (info.value.code, info.value.reason) == ("21604", "A 'To' phone number is required.")


def test_21602_empty_body_from_the_fake(sms, fake_twilio):
    with pytest.raises(PermanentFailure) as info:
        sms.send(out(text=""))
    assert info.value.code == "21602"


@pytest.mark.parametrize(
    "code, message",
    [
        (21614, "'To' number is not a valid mobile number"),
        (
            21408,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +7",
        ),
        (
            21606,
            "The 'From' phone number provided (+15005550006) is not a valid message-capable "
            "Twilio phone number.",
        ),
        (
            63016,
            "Failed to send freeform message because you are outside the allowed window. "
            "If you are using WhatsApp, please use a Message Template.",
        ),
        (21617, "The concatenated message body exceeds the 1600 character limit."),
    ],
)
def test_platform_error_codes_are_permanent(sms, fake_twilio, code, message):
    fake_twilio.fail_next(1, FakeTwilio.error(code, message, 400))
    with pytest.raises(PermanentFailure) as info:
        sms.send(out())
    assert (info.value.code, info.value.reason) == (str(code), message)


def test_terse_error_body_uses_twilio_wording(sms, fake_twilio):
    fake_twilio.fail_next(1, FakeResponse(400, {"code": 21610}))
    with pytest.raises(PermanentFailure) as info:
        sms.send(out())
    assert (info.value.code, info.value.reason) == ("21610", "Attempt to send to unsubscribed recipient")


def test_wrong_auth_token_is_20003(fake_twilio, db):
    config = {"account_sid": ACCOUNT_SID, "from": "+15005550006", "api_base_url": fake_twilio.base_url}
    channel = ChannelFactory(kind="twilio_sms", config=config, credentials={"auth_token": "stale-token"})
    with pytest.raises(PermanentFailure) as info:
        TwilioSmsProvider(channel).send(out())
    assert (info.value.code, info.value.reason) == ("20003", "Authenticate")


# --- lookup ----------------------------------------------------------------------------------------------
def test_lookup_finds_a_sent_message_by_text(sms, fake_twilio):
    since = datetime.now(UTC) - timedelta(seconds=2)
    sent = sms.send(out(text="Ticket 77 updated"))
    sms.send(out(text="Something else"))
    found = sms.lookup(out(text="Ticket 77 updated"), since)
    assert found is not None and found.platform_message_id == sent.platform_message_id
    assert found.segments == 1
    [query] = [r.query for r in fake_twilio.received(MESSAGES, method="GET")][:1]
    assert query["To"] == ["+15105550123"]
    assert query["From"] == ["+15005550006"]
    assert query["DateSent>"] == [since.date().isoformat()]


def test_lookup_finds_a_message_still_queued_at_twilio(sms, fake_twilio):
    fake_twilio.hold_queued = True
    since = datetime.now(UTC) - timedelta(seconds=2)
    sent = sms.send(out(text="Queued behind a long backlog"))
    found = sms.lookup(out(text="Queued behind a long backlog"), since)
    assert found is not None and found.platform_message_id == sent.platform_message_id
    assert len(fake_twilio.received(MESSAGES, method="GET")) == 2


def test_lookup_matches_a_template_by_its_variables(wa, fake_twilio):
    since = datetime.now(UTC) - timedelta(seconds=2)
    template = {
        "name": "order_ready",
        "content_sid": "HX" + "a" * 32,
        "variables": {"1": "Marta", "2": "4411"},
    }
    outbound = out(to="+34612000777", text="", template=template)
    sent = wa.send(outbound)
    # Twilio lists the text it rendered from the approved template.
    fake_twilio.messages[0]["body"] = "Hola Marta, tu pedido 4411 está listo."
    assert wa.lookup(outbound, since).platform_message_id == sent.platform_message_id
    other = out(to="+34612000777", text="", template={**template, "variables": {"1": "Marta", "2": "9999"}})
    assert wa.lookup(other, since) is None


def test_lookup_returns_none_when_twilio_never_got_it(sms, fake_twilio):
    sms.send(out(text="A different text"))
    assert sms.lookup(out(text="Never reached Twilio"), datetime.now(UTC) - timedelta(minutes=1)) is None


def test_lookup_ignores_the_same_text_sent_before_since(sms, fake_twilio):
    sms.send(out(text="Your code is 1234"))
    assert sms.lookup(out(text="Your code is 1234"), datetime.now(UTC) + timedelta(seconds=5)) is None


# --- media and check -------------------------------------------------------------------------------------
def test_download_media_follows_the_redirect(sms, fake_twilio):
    url = fake_twilio.add_media(ACCOUNT_SID, "MM" + "1" * 32, b"\xff\xd8\xffjpeg-bytes", "image/jpeg")
    data, content_type = sms.download_media(InboundAttachment(kind="image", url=url))
    assert (data, content_type) == (b"\xff\xd8\xffjpeg-bytes", "image/jpeg")
    [media_request] = fake_twilio.received("/Media/")
    assert media_request.headers["Authorization"] == basic_auth()
    assert fake_twilio.received("/media-content/")


def test_download_media_never_sends_credentials_to_a_foreign_host(sms, fake_twilio):
    url = fake_twilio.add_media(ACCOUNT_SID, "MM" + "2" * 32, b"x", "image/png").replace(
        "127.0.0.1", "localhost"
    )
    with pytest.raises(PermanentFailure) as info:
        sms.download_media(InboundAttachment(kind="image", url=url))
    assert info.value.code == "20003"
    assert "Authorization" not in fake_twilio.received("/Media/")[0].headers


def test_download_media_404(sms, fake_twilio):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{'3' * 32}/Media/ME{'4' * 32}"
    with pytest.raises(PermanentFailure) as info:
        sms.download_media(InboundAttachment(kind="image", url=url))
    assert info.value.code == "20404"


def test_check_ok(sms, fake_twilio):
    result = sms.check()
    assert (result.ok, result.detail) == (True, "Account Acme Support (active)")
    assert AUTH_TOKEN not in result.detail


def test_check_suspended_account(sms, fake_twilio):
    fake_twilio.add_account(ACCOUNT_SID, AUTH_TOKEN, friendly_name="Acme Support", status="suspended")
    result = sms.check()
    assert (result.ok, result.detail) == (False, "Account Acme Support (suspended)")


def test_check_wrong_token(fake_twilio, db):
    config = {"account_sid": ACCOUNT_SID, "from": "+15005550006", "api_base_url": fake_twilio.base_url}
    channel = ChannelFactory(kind="twilio_sms", config=config, credentials={"auth_token": "nope"})
    result = TwilioSmsProvider(channel).check()
    assert (result.ok, result.detail) == (False, "20003: Authenticate")


def test_check_unreachable(fake_twilio, db, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    fake_twilio.delay_next(1, 1.0)
    config = {"account_sid": ACCOUNT_SID, "from": "+15005550006", "api_base_url": fake_twilio.base_url}
    result = TwilioSmsProvider(ChannelFactory(kind="twilio_sms", config=config)).check()
    assert result.ok is False
    assert "timeout" in result.detail


# --- configuration ---------------------------------------------------------------------------------------
def test_lookup_key_and_rate_limit_override(db):
    channel = ChannelFactory(kind="twilio_sms", config={**ChannelFactory.build(kind="twilio_sms").config})
    provider = TwilioSmsProvider(channel)
    assert provider.lookup_key() == f"{ACCOUNT_SID}:+15005550006"
    assert provider.rate_limit() == 10.0
    channel.config["rate_limit_per_second"] = 1
    assert TwilioSmsProvider(channel).rate_limit() == 1.0
