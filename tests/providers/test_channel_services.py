import copy
import logging
import re
import socket

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from alexia.celery import app as celery_app
from providers.errors import ConfigurationError
from providers.fakes.whatsapp import FakeWhatsApp
from providers.kinds import KINDS
from providers.models import Channel
from providers.registry import provider_class
from providers.services import (
    channel_create,
    channel_delete,
    channel_test,
    channel_update,
    channel_validate,
    credentials_masked,
)
from providers.tasks import channel_activate_task, channel_pause_task

from ..factories import DEFAULT_CONFIG, ChannelFactory

pytestmark = pytest.mark.django_db


def valid(kind: str) -> tuple[dict, dict]:
    config, credentials = copy.deepcopy(DEFAULT_CONFIG[kind])
    return config, credentials


def create(org, kind: str, *, config=None, credentials=None, name="Main") -> Channel:
    default_config, default_credentials = valid(kind)
    return channel_create(
        organization=org,
        kind=kind,
        name=name,
        config=default_config if config is None else config,
        credentials=default_credentials if credentials is None else credentials,
    )


def errors_of(exc: ValidationError) -> dict[str, list[tuple[str, str]]]:
    """field -> [(key, message)] from a service ValidationError."""
    return {
        field: [((e.params or {}).get("key", ""), e.messages[0]) for e in errors]
        for field, errors in exc.error_dict.items()
    }


def raw_credentials_column(channel_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM providers_channel WHERE id = %s", [channel_id])
        return cursor.fetchone()[0]


def has_provider(kind: str) -> bool:
    try:
        provider_class(kind)
    except ConfigurationError:
        return False
    return True


@pytest.fixture
def eager_celery():
    """Run queued tasks in-process (Celery's own switch; the tasks and services run for real)."""
    keys = ("task_always_eager", "task_eager_propagates")
    before = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(dict.fromkeys(keys, True))
    yield
    celery_app.conf.update(before)


@pytest.mark.parametrize("kind", list(KINDS))
def test_create_accepts_every_kind_with_its_documented_keys(org, kind):
    channel = create(org, kind)
    channel.refresh_from_db()
    assert channel.kind == kind
    assert channel.status == Channel.Status.ACTIVE
    config, credentials = valid(kind)
    assert {k: v for k, v in channel.credentials.items() if k in credentials} == credentials
    assert channel.organization == org


def test_credentials_are_ciphertext_in_the_database(org):
    channel = create(org, "whatsapp_cloud")
    stored = raw_credentials_column(channel.pk)
    assert stored.startswith("gAAAA")
    assert "EAAG-test-token" not in stored
    assert Channel.objects.get(pk=channel.pk).credentials["access_token"] == "EAAG-test-token"


def test_lookup_key_comes_from_the_provider(org):
    assert create(org, "whatsapp_cloud").lookup_key == "106540352242922"
    assert create(org, "twilio_sms").lookup_key == "AC" + "1" * 32 + ":+15005550006"


def test_webchat_lookup_key_is_its_first_allowed_origin(org):
    channel = create(org, "webchat", config={"allowed_origins": ["https://shop.example.com/"]})
    assert channel.lookup_key == "https://shop.example.com"


@pytest.mark.parametrize(
    "kind, config_change, credentials_change, field, key",
    [
        ("whatsapp_cloud", {"phone_number_id": None}, {}, "config", "phone_number_id"),
        ("whatsapp_cloud", {"phone_number_id": "  "}, {}, "config", "phone_number_id"),
        ("whatsapp_cloud", {}, {"access_token": None}, "credentials", "access_token"),
        ("whatsapp_cloud", {"colour": "blue"}, {}, "config", "colour"),
        ("whatsapp_cloud", {}, {"password": "x"}, "credentials", "password"),
        ("whatsapp_cloud", {"api_base_url": "ftp://fake"}, {}, "config", "api_base_url"),
        ("telegram", {"mode": "push"}, {}, "config", "mode"),
        ("telegram", {}, {"secret_token": "not allowed!"}, "credentials", "secret_token"),
        ("telegram", {}, {"secret_token": "x" * 257}, "credentials", "secret_token"),
        ("telegram", {}, {"bot_token": None}, "credentials", "bot_token"),
        ("twilio_sms", {"from": "5550006"}, {}, "config", "from"),
        ("twilio_sms", {"from": "whatsapp:+15005550006"}, {}, "config", "from"),
        ("twilio_sms", {"account_sid": "AC123"}, {}, "config", "account_sid"),
        ("twilio_whatsapp", {"from": "whatsapp:14155238886"}, {}, "config", "from"),
        ("messenger", {"page_id": None}, {}, "config", "page_id"),
        ("instagram", {}, {"page_access_token": ""}, "credentials", "page_access_token"),
        ("email", {"esp": "carrier-pigeon"}, {}, "config", "esp"),
        ("email", {"from_email": "support"}, {}, "config", "from_email"),
        ("email", {"domain": "not a domain"}, {}, "config", "domain"),
        ("email", {"smtp_port": 70000}, {}, "config", "smtp_port"),
        ("webchat", {"allowed_origins": "https://shop.example.com"}, {}, "config", "allowed_origins"),
        ("webchat", {"allowed_origins": ["https://shop.example.com/cart"]}, {}, "config", "allowed_origins"),
        ("webchat", {"allowed_origins": ["shop.example.com"]}, {}, "config", "allowed_origins"),
        ("webchat", {"allowed_origins": []}, {}, "config", "allowed_origins"),
    ],
)
def test_create_rejects_invalid_input_naming_the_key(
    org, kind, config_change, credentials_change, field, key
):
    config, credentials = valid(kind)
    for target, change in ((config, config_change), (credentials, credentials_change)):
        for k, v in change.items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    with pytest.raises(ValidationError) as info:
        channel_create(organization=org, kind=kind, name="Main", config=config, credentials=credentials)
    errors = errors_of(info.value)
    assert field in errors, errors
    assert key in [k for k, _ in errors[field]], errors
    assert not Channel.objects.exists()


def test_unknown_kind_and_empty_name(org):
    with pytest.raises(ValidationError) as info:
        channel_create(organization=org, kind="pigeon", name="x", config={}, credentials={})
    assert "kind" in info.value.error_dict
    with pytest.raises(ValidationError) as info:
        create(org, "whatsapp_cloud", name="  ")
    assert "name" in info.value.error_dict


def test_messages_with_a_percent_sign_render(org):
    with pytest.raises(ValidationError) as info:
        create(org, "webchat", config={"allowed_origins": ["https://a%20b.example/x"]})
    assert "a%20b" in info.value.message_dict["config"][0]


def test_values_are_normalized(org):
    channel = create(
        org,
        "twilio_whatsapp",
        config={"account_sid": "AC" + "2" * 32, "from": "+1 (415) 523-8886"},
    )
    assert channel.config["from"] == "whatsapp:+14155238886"
    web = create(
        org,
        "webchat",
        config={
            "allowed_origins": [
                "https://Shop.Example.com/",
                "https://shop.example.com",
                "http://localhost:3000",
            ]
        },
        credentials={},
    )
    assert web.config["allowed_origins"] == ["https://shop.example.com", "http://localhost:3000"]


def test_generated_credentials(org):
    telegram = create(org, "telegram", credentials={"bot_token": "123456:ABC-DEF1234ghIkl"})
    secret = telegram.credentials["secret_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret)
    assert len(secret) >= 32
    other = create(org, "telegram", credentials={"bot_token": "654321:XYZ"})
    assert other.credentials["secret_token"] != secret
    web = create(org, "webchat", credentials={})
    assert len(web.credentials["identity_secret"]) >= 32
    given = create(org, "telegram", credentials={"bot_token": "1:A", "secret_token": "my_own-secret"})
    assert given.credentials["secret_token"] == "my_own-secret"


def test_update_merges_credentials_like_write_only_fields(org):
    channel = create(org, "whatsapp_cloud")
    channel_update(channel=channel, credentials={"access_token": "", "app_secret": "new-app-secret"})
    channel.refresh_from_db()
    assert channel.credentials == {
        "access_token": "EAAG-test-token",
        "app_secret": "new-app-secret",
        "verify_token": "verify-me",
    }
    assert raw_credentials_column(channel.pk).startswith("gAAAA")


def test_update_keeps_generated_secret_and_validates(org):
    channel = create(org, "telegram", credentials={"bot_token": "1:A"})
    secret = channel.credentials["secret_token"]
    channel_update(channel=channel, name="Renamed", credentials={"bot_token": "2:B"})
    channel.refresh_from_db()
    assert channel.name == "Renamed"
    assert channel.credentials == {"bot_token": "2:B", "secret_token": secret}
    with pytest.raises(ValidationError) as info:
        channel_update(channel=channel, config={"mode": "carrier"}, credentials={"nope": "x"})
    assert set(info.value.error_dict) == {"config", "credentials"}
    channel.refresh_from_db()
    assert channel.config["mode"] == "webhook"


def test_update_config_merges_and_removes_keys(org):
    channel = create(org, "whatsapp_cloud")
    channel_update(channel=channel, config={"api_base_url": "http://127.0.0.1:9/v21.0"})
    channel.refresh_from_db()
    assert channel.config["api_base_url"] == "http://127.0.0.1:9/v21.0"
    assert channel.config["phone_number_id"] == "106540352242922"
    channel_update(channel=channel, config={"api_base_url": None, "phone_number_id": "999"})
    channel.refresh_from_db()
    assert "api_base_url" not in channel.config
    assert channel.lookup_key == "999"
    with pytest.raises(ValidationError):
        channel_update(channel=channel, config={"phone_number_id": ""})


def test_update_status(org, django_capture_on_commit_callbacks):
    channel = create(org, "whatsapp_cloud")
    with django_capture_on_commit_callbacks() as callbacks:
        channel_update(channel=channel, status="paused")
    assert channel.status == "paused"
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        channel_update(channel=channel, status="paused")
    assert callbacks == []
    with pytest.raises(ValidationError) as info:
        channel_update(channel=channel, status="error")
    assert "status" in info.value.error_dict


def test_create_and_status_changes_queue_the_lifecycle_tasks(
    org, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        channel = create(org, "whatsapp_cloud")
    assert len(callbacks) == 1
    channel.refresh_from_db()
    assert channel.status == Channel.Status.ACTIVE
    assert channel.last_error == ""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        channel_update(channel=channel, status="paused")
    assert len(callbacks) == 1
    channel.refresh_from_db()
    assert channel.status == Channel.Status.PAUSED


def test_activation_failure_marks_the_channel_as_error(org, eager_celery):
    channel = create(org, "whatsapp_cloud")
    # Plaintext where a Fernet token belongs: what a changed FIELD_ENCRYPTION_KEY looks like.
    Channel.objects.filter(pk=channel.pk).update(credentials_encrypted="gAAAA-not-a-real-token")
    channel_activate_task.delay(channel.pk)
    channel.refresh_from_db()
    assert channel.status == Channel.Status.ERROR
    assert "activation failed" in channel.last_error
    assert channel.last_error_at is not None


def test_hooks_skip_channels_whose_status_moved_on(org, eager_celery):
    channel = create(org, "whatsapp_cloud")
    Channel.objects.filter(pk=channel.pk).update(credentials_encrypted="gAAAA-not-a-real-token")
    channel_pause_task.delay(channel.pk)  # the channel is active again: nothing to pause
    channel.refresh_from_db()
    assert channel.status == Channel.Status.ACTIVE
    channel_activate_task.delay(10**9)  # deleted meanwhile: nothing to do, no error


def test_delete(org):
    channel = create(org, "twilio_sms")
    channel_delete(channel=channel)
    assert not Channel.objects.filter(pk=channel.pk).exists()


def test_credentials_masked(org):
    channel = ChannelFactory(
        organization=org,
        credentials={"access_token": "EAAG-test-token", "app_secret": "s", "verify_token": "12345678"},
    )
    assert credentials_masked(channel) == {
        "access_token": "••••oken",
        "app_secret": "••••",
        "verify_token": "••••",
    }


def test_channel_validate_writes_nothing(org):
    config, credentials = valid("whatsapp_cloud")
    channel_validate(kind="whatsapp_cloud", name="x", config=config, credentials=credentials)
    assert not Channel.objects.exists()
    with pytest.raises(ValidationError):
        channel_validate(kind="whatsapp_cloud", name="x", config={}, credentials=credentials)


@pytest.fixture
def whatsapp_fake():
    with FakeWhatsApp() as fake:
        yield fake


def test_channel_test_against_the_platform(org, whatsapp_fake):
    config, _ = valid("whatsapp_cloud")
    channel = create(
        org, "whatsapp_cloud", config={**config, "api_base_url": whatsapp_fake.base_url + "/v21.0"}
    )
    result = channel_test(channel=channel)
    assert result.ok, result.detail
    assert "+1 555-010-4477" in result.detail
    assert whatsapp_fake.received("/106540352242922", method="GET")
    channel.refresh_from_db()
    assert channel.last_checked_at is not None
    assert channel.last_error == ""


def test_channel_test_failure_records_the_error_without_secrets(org, whatsapp_fake, caplog):
    caplog.set_level(logging.DEBUG)
    config, credentials = valid("whatsapp_cloud")
    credentials["access_token"] = "EAAG-wrong-token-1234"
    channel = create(
        org,
        "whatsapp_cloud",
        config={**config, "api_base_url": whatsapp_fake.base_url + "/v21.0"},
        credentials=credentials,
    )
    result = channel_test(channel=channel)
    assert not result.ok
    assert "190" in result.detail
    channel.refresh_from_db()
    assert channel.last_error == result.detail
    assert channel.last_error_at is not None and channel.last_checked_at is not None
    for secret in ("EAAG-wrong-token-1234", "test-app-secret", "verify-me"):
        assert secret not in channel.last_error
        assert secret not in caplog.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_channel_test_unreachable_platform(org, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 2
    config, _ = valid("whatsapp_cloud")
    channel = create(
        org, "whatsapp_cloud", config={**config, "api_base_url": f"http://127.0.0.1:{_closed_port()}"}
    )
    result = channel_test(channel=channel)
    assert not result.ok
    assert Channel.objects.get(pk=channel.pk).last_error == result.detail


def test_services_never_log_credentials(org, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks():
        channel = create(org, "whatsapp_cloud")
        channel_update(channel=channel, credentials={"access_token": "EAAG-rotated-token"}, status="paused")
        with pytest.raises(ValidationError) as info:
            channel_update(channel=channel, credentials={"app_secret": 12345, "bogus": "EAAG-in-error"})
    channel_delete(channel=channel)
    assert caplog.records, "the services log what they do"
    for secret in ("EAAG-test-token", "EAAG-rotated-token", "test-app-secret", "verify-me", "EAAG-in-error"):
        assert secret not in caplog.text
        assert secret not in str(info.value)
