"""verify(): X-Twilio-Signature over the public webhook URL and the POST params, signed in the test."""

import hashlib
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import RequestFactory
from twilio.request_validator import RequestValidator

from providers.errors import WebhookVerificationError
from providers.fakes.twilio import FakeTwilio, sign
from providers.twilio import TwilioSmsProvider, TwilioWhatsAppProvider
from tests.factories import ChannelFactory

from .conftest import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.django_db
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def channel():
    return ChannelFactory(kind="twilio_sms")


def post(url: str, body: bytes | str, signature: str | None, content_type: str = FORM, **headers):
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if signature is not None:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    return RequestFactory().post(path, data=body, content_type=content_type, **headers)


def inbound_form() -> dict[str, str]:
    return FakeTwilio.inbound_sms_form(ACCOUNT_SID, "+15105550123", "+15005550006", "Where is my parcel?")


def test_good_signature_passes(channel):
    form = inbound_form()
    request = post(channel.webhook_url, urlencode(form), sign(channel.webhook_url, form, AUTH_TOKEN))
    TwilioSmsProvider(channel).verify(request)
    # The webhook view reads the raw body after verify() has read request.POST.
    assert request.body == urlencode(form).encode()


def test_good_signature_on_whatsapp_channel(db):
    channel = ChannelFactory(kind="twilio_whatsapp")
    form = FakeTwilio.inbound_sms_form(
        ACCOUNT_SID, "whatsapp:+34612000777", "whatsapp:+14155238886", "hola", profile_name="Marta"
    )
    request = post(channel.webhook_url, urlencode(form), sign(channel.webhook_url, form, AUTH_TOKEN))
    TwilioWhatsAppProvider(channel).verify(request)


def test_missing_signature_is_refused(channel):
    request = post(channel.webhook_url, urlencode(inbound_form()), None)
    with pytest.raises(WebhookVerificationError, match="missing"):
        TwilioSmsProvider(channel).verify(request)


def test_wrong_token_is_refused(channel):
    form = inbound_form()
    request = post(
        channel.webhook_url, urlencode(form), sign(channel.webhook_url, form, "someone-elses-token")
    )
    with pytest.raises(WebhookVerificationError, match="does not match"):
        TwilioSmsProvider(channel).verify(request)


def test_tampered_body_is_refused(channel):
    form = inbound_form()
    signature = sign(channel.webhook_url, form, AUTH_TOKEN)
    request = post(channel.webhook_url, urlencode({**form, "Body": "Refund me twice"}), signature)
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(request)


def test_signature_for_another_url_is_refused(channel):
    form = inbound_form()
    other = ChannelFactory(kind="twilio_sms", organization=channel.organization)
    request = post(channel.webhook_url, urlencode(form), sign(other.webhook_url, form, AUTH_TOKEN))
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(request)


def test_url_is_the_public_one_not_the_request_host(channel, settings):
    """Behind a proxy the request's Host is internal; Twilio signed the public URL."""
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    form = inbound_form()
    public = channel.webhook_url
    assert public.startswith("https://inbox.example.com/webhooks/twilio_sms/")
    request = post(public, urlencode(form), sign(public, form, AUTH_TOKEN))
    TwilioSmsProvider(channel).verify(request)
    request = post(
        public, urlencode(form), sign("http://testserver" + urlsplit(public).path, form, AUTH_TOKEN)
    )
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(request)


def test_query_string_is_part_of_the_signed_url(channel):
    form = inbound_form()
    url = channel.webhook_url + "?source=sms"
    request = post(url, urlencode(form), sign(url, form, AUTH_TOKEN))
    TwilioSmsProvider(channel).verify(request)
    request = post(url, urlencode(form), sign(channel.webhook_url, form, AUTH_TOKEN))
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(request)


def test_repeated_keys_are_all_signed(channel):
    body = "MessageSid=SM1&Digits=5678&Digits=1234"
    signed = sign(
        channel.webhook_url, _QueryDictLike({"MessageSid": ["SM1"], "Digits": ["5678", "1234"]}), AUTH_TOKEN
    )
    TwilioSmsProvider(channel).verify(post(channel.webhook_url, body, signed))
    first_only = sign(channel.webhook_url, {"MessageSid": "SM1", "Digits": "5678"}, AUTH_TOKEN)
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(post(channel.webhook_url, body, first_only))


def test_json_body_with_body_sha256(channel):
    body = '{"MessageSid": "SM1", "MessageStatus": "delivered"}'
    url = f"{channel.webhook_url}?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    signature = sign(url, {}, AUTH_TOKEN)
    TwilioSmsProvider(channel).verify(post(url, body, signature, content_type="application/json"))
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(
            post(url, body.replace("delivered", "read"), signature, content_type="application/json")
        )


def test_shared_key_signature_with_sha256(db):
    channel = ChannelFactory(
        kind="twilio_sms", credentials={"auth_token": AUTH_TOKEN, "webhook_shared_key": "shared-key-secret"}
    )
    form = inbound_form()
    signature = RequestValidator("shared-key-secret").compute_signature(
        channel.webhook_url, form, "HMAC_SHA256"
    )
    settings_header = "key=webhooks_sharedkey_01abc,algorithm=HMAC_SHA256"
    request = post(
        channel.webhook_url,
        urlencode(form),
        signature,
        HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS=settings_header,
    )
    TwilioSmsProvider(channel).verify(request)
    request = post(channel.webhook_url, urlencode(form), signature)
    with pytest.raises(WebhookVerificationError):
        TwilioSmsProvider(channel).verify(request)


class _QueryDictLike(dict):
    """A multi-valued params mapping, as the validator reads it (getlist)."""

    def getlist(self, key):
        return self[key]
