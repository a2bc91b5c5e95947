import json
from pathlib import Path

import pytest

from providers.fakes.telegram import FakeTelegram
from providers.registry import get_provider
from providers.telegram import TelegramProvider
from tests.factories import ChannelFactory

PAYLOADS = Path(__file__).parent / "payloads"
BOT_TOKEN = "7000000001:AAHk9-fakeTokenForTests_xyz"
SECRET = "tg-secret_1"


def payload_bytes(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def payload(name: str) -> dict:
    return json.loads(payload_bytes(name))


@pytest.fixture(scope="module")
def _telegram_server():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def fake_telegram(_telegram_server):
    """One server per module (stopping one takes half a second), reset to a clean state for each test."""
    _telegram_server.reset()
    return _telegram_server


@pytest.fixture
def built_provider() -> TelegramProvider:
    """A provider over an unsaved channel: parse() and verify() never touch the database."""
    channel = ChannelFactory.build(
        kind="telegram",
        config={"mode": "webhook"},
        credentials={"bot_token": BOT_TOKEN, "secret_token": SECRET},
    )
    return TelegramProvider(channel)


@pytest.fixture
def channel(db, fake_telegram):
    return ChannelFactory(
        kind="telegram",
        config={"mode": "webhook", "api_base_url": fake_telegram.base_url},
        credentials={"bot_token": BOT_TOKEN, "secret_token": SECRET},
    )


@pytest.fixture
def provider(channel) -> TelegramProvider:
    provider = get_provider(channel)
    assert isinstance(provider, TelegramProvider)
    return provider
