import json

import pytest
from django.db import connection

from alexia import health

from .factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_health_reports_every_check_ok(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "broker": "ok", "channel_layer": "ok"}


def test_health_names_the_failing_check(client, settings):
    # A broker that is really unreachable: nothing listens on port 1.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"].startswith("error:")
    assert body["checks"]["database"] == "ok"


def test_health_fails_when_credentials_do_not_decrypt(client):
    channel = ChannelFactory()
    # Plaintext left in the encrypted column (a key mix-up) must be loud, not silent.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE providers_channel SET credentials_encrypted = %s WHERE id = %s", ["not-a-fernet-token", channel.pk]
        )
    response = client.get("/health/")
    assert response.status_code == 503
    assert json.loads(response.content)["failing"] == ["database"]


def test_health_checks_are_the_contract_ones():
    assert list(health.CHECKS) == ["database", "broker", "channel_layer"]
