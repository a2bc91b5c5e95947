import json
from pathlib import Path

import pytest
from django.test import Client

from providers.webchat import user_hash
from tests.factories import ChannelFactory

PAYLOADS = Path(__file__).parent / "payloads"
ORIGIN = "https://shop.example.com"
IDENTITY_SECRET = "idsecret"  # tests/factories.py DEFAULT_CONFIG


def payload_bytes(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


@pytest.fixture
def channel(org):
    return ChannelFactory(organization=org, kind="webchat", name="Shop chat")


@pytest.fixture
def other_channel(other_org):
    return ChannelFactory(
        organization=other_org,
        kind="webchat",
        name="Globex chat",
        config={"allowed_origins": ["https://globex.example"]},
    )


class Widget:
    """A visitor's browser on a customer's site: every call carries that site's Origin."""

    def __init__(self, channel, origin: str = ORIGIN) -> None:
        self.channel = channel
        self.origin = origin
        self.client = Client()
        self.token = ""

    def url(self, name: str) -> str:
        return f"/webchat/{self.channel.webhook_token}/{name}/"

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {"HTTP_ORIGIN": self.origin} if self.origin else {}
        if self.token:
            headers["HTTP_X_VISITOR_TOKEN"] = self.token
        return {**headers, **(extra or {})}

    def get(self, name: str, query: str = "", **extra):
        return self.client.get(self.url(name) + query, **self._headers(extra))

    def post(self, name: str, body: dict | None = None, **extra):
        return self.client.post(
            self.url(name),
            data=json.dumps(body or {}),
            content_type="application/json",
            **self._headers(extra),
        )

    def start(self, **body) -> dict:
        response = self.post("session", body)
        assert response.status_code == 200, response.content
        data = response.json()
        self.token = data["visitor_token"]
        return data


@pytest.fixture
def widget(channel):
    return Widget(channel)


def signed(user_id: str, secret: str = IDENTITY_SECRET) -> dict:
    return {"user_id": user_id, "user_hash": user_hash(secret, user_id)}
