from pathlib import Path

import pytest

from providers.fakes.twilio import FakeTwilio
from providers.twilio import TwilioSmsProvider, TwilioWhatsAppProvider
from tests.factories import DEFAULT_CONFIG, ChannelFactory

PAYLOADS = Path(__file__).parent / "payloads"
ACCOUNT_SID = DEFAULT_CONFIG["twilio_sms"][0]["account_sid"]
AUTH_TOKEN = DEFAULT_CONFIG["twilio_sms"][1]["auth_token"]


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


@pytest.fixture(scope="session")
def _twilio_server():
    # One server for the session (stopping one waits out its poll interval); reset before each test.
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, friendly_name="Acme Support") as fake:
        yield fake


@pytest.fixture
def fake_twilio(_twilio_server):
    _twilio_server.reset()
    yield _twilio_server
    _twilio_server.reset()


@pytest.fixture
def sms_channel(db, fake_twilio):
    config = dict(DEFAULT_CONFIG["twilio_sms"][0], api_base_url=fake_twilio.base_url)
    return ChannelFactory(kind="twilio_sms", config=config)


@pytest.fixture
def wa_channel(db, fake_twilio):
    config = dict(DEFAULT_CONFIG["twilio_whatsapp"][0], api_base_url=fake_twilio.base_url)
    return ChannelFactory(kind="twilio_whatsapp", config=config)


@pytest.fixture
def sms(sms_channel) -> TwilioSmsProvider:
    return TwilioSmsProvider(sms_channel)


@pytest.fixture
def wa(wa_channel) -> TwilioWhatsAppProvider:
    return TwilioWhatsAppProvider(wa_channel)
