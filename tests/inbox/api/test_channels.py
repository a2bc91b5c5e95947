import pytest
from django.db import connection

from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import Channel
from tests.factories import ChannelFactory

from .conftest import error_of

SECRETS = {"access_token": "EAAG-secret-access-token-123", "app_secret": "app-secret-xyz-789", "verify_token": "vt-secret-456"}
WHATSAPP = {
    "kind": "whatsapp_cloud",
    "name": "Sales WhatsApp",
    "config": {"phone_number_id": "106540352242922", "business_account_id": "102290129340398"},
    "credentials": SECRETS,
}


def _assert_no_secret(response, secrets=SECRETS):
    for value in secrets.values():
        assert value.encode() not in response.content, value


def _raw_credentials(channel_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM providers_channel WHERE id = %s", [channel_id])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_create_answers_201_with_webhook_url_and_never_the_credentials(api, org):
    response = api.post("/api/v1/channels/", WHATSAPP, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "kind", "name", "status", "config", "webhook_url", "created_at", "last_error"} <= set(body)
    assert body["kind"] == "whatsapp_cloud"
    assert body["status"] == "active"
    assert body["config"] == WHATSAPP["config"]
    assert "credentials" not in body
    channel = Channel.objects.get(pk=body["id"])
    assert channel.organization == org
    assert body["webhook_url"] == f"http://testserver/webhooks/whatsapp_cloud/{channel.webhook_token}/"
    assert channel.credentials == SECRETS
    _assert_no_secret(response)
    raw = _raw_credentials(channel.pk)
    assert raw.startswith("gAAAA")
    for value in SECRETS.values():
        assert value not in raw


@pytest.mark.django_db
def test_credentials_never_appear_in_list_detail_update_or_test_answers(api, org):
    channel_id = api.post("/api/v1/channels/", WHATSAPP, format="json").json()["id"]
    new_secret = {"access_token": "EAAG-rotated-token-000"}
    answers = [
        api.get("/api/v1/channels/"),
        api.get(f"/api/v1/channels/{channel_id}/"),
        api.patch(f"/api/v1/channels/{channel_id}/", {"credentials": new_secret}, format="json"),
        api.post(f"/api/v1/channels/{channel_id}/test/"),
    ]
    for response in answers:
        assert response.status_code == 200, response.content
        _assert_no_secret(response, {**SECRETS, **new_secret})
        assert b"credentials" not in response.content
    assert Channel.objects.get(pk=channel_id).credentials["access_token"] == "EAAG-rotated-token-000"
    assert _raw_credentials(channel_id).startswith("gAAAA")


@pytest.mark.django_db
def test_email_channel_carries_tracking_webhook_url(api):
    payload = {
        "kind": "email",
        "name": "Support mailbox",
        "config": {"esp": "mailgun", "from_email": "help@example.com", "domain": "example.com"},
        "credentials": {"api_key": "key-mailgun-secret-1", "webhook_signing_key": "signing-secret-2"},
    }
    response = api.post("/api/v1/channels/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    token = Channel.objects.get(pk=body["id"]).webhook_token
    assert body["webhook_url"] == f"http://testserver/webhooks/email/{token}/"
    assert body["tracking_webhook_url"] == f"http://testserver/webhooks/email/{token}/tracking/"
    assert body["embed_snippet"] is None
    _assert_no_secret(response, payload["credentials"])


@pytest.mark.django_db
def test_webchat_channel_carries_embed_snippet(api, settings):
    settings.PUBLIC_BASE_URL = "https://chat.alexia.example"
    payload = {"kind": "webchat", "name": "Site", "config": {"allowed_origins": ["https://shop.example.com"]}}
    response = api.post("/api/v1/channels/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    channel = Channel.objects.get(pk=body["id"])
    assert body["embed_snippet"] == (
        f'<script src="https://chat.alexia.example/static/widget.js" data-channel="{channel.webhook_token}" '
        "async></script>"
    )
    assert body["tracking_webhook_url"] is None
    generated = channel.credentials["identity_secret"]
    assert generated and generated.encode() not in response.content


@pytest.mark.django_db
def test_create_with_missing_config_answers_400_with_field_details(api):
    payload = {**WHATSAPP, "config": {"phone_number_id": "1"}}
    response = api.post("/api/v1/channels/", payload, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert "business_account_id" in " ".join(error["details"]["config"])
    assert not Channel.objects.exists()


@pytest.mark.django_db
def test_create_with_unknown_kind_answers_400(api):
    response = api.post("/api/v1/channels/", {**WHATSAPP, "kind": "carrier_pigeon"}, format="json")
    assert response.status_code == 400
    assert "kind" in error_of(response)["details"]


@pytest.mark.django_db
def test_list_and_detail(api, org):
    a = ChannelFactory(organization=org, name="A line", kind="telegram")
    b = ChannelFactory(organization=org, name="B line")
    response = api.get("/api/v1/channels/")
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["results"]] == [a.pk, b.pk]
    assert body["next"] is None
    detail = api.get(f"/api/v1/channels/{a.pk}/").json()
    assert detail["kind"] == "telegram" and detail["name"] == "A line"


@pytest.mark.django_db
def test_patch_changes_name_config_and_status(api, org):
    channel = ChannelFactory(organization=org, name="Old")
    response = api.patch(
        f"/api/v1/channels/{channel.pk}/",
        {"name": "New", "status": "paused", "config": {"business_account_id": "999"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "New"
    assert body["status"] == "paused"
    assert body["config"]["business_account_id"] == "999"
    assert body["config"]["phone_number_id"] == "106540352242922"
    channel.refresh_from_db()
    assert (channel.name, channel.status) == ("New", "paused")


@pytest.mark.django_db
def test_patch_with_invalid_status_answers_400(api, org):
    channel = ChannelFactory(organization=org)
    response = api.patch(f"/api/v1/channels/{channel.pk}/", {"status": "error"}, format="json")
    assert response.status_code == 400
    assert "status" in error_of(response)["details"]


@pytest.mark.django_db
def test_delete(api, org):
    channel = ChannelFactory(organization=org, kind="email")
    response = api.delete(f"/api/v1/channels/{channel.pk}/")
    assert response.status_code == 204
    assert not Channel.objects.filter(pk=channel.pk).exists()
    assert api.get(f"/api/v1/channels/{channel.pk}/").status_code == 404


@pytest.mark.django_db
def test_connection_test_calls_the_platform(api, org):
    with FakeWhatsApp(access_token="EAAG-test-token", verified_name="Acme Support") as fake:
        channel = ChannelFactory(
            organization=org,
            config={
                "phone_number_id": "106540352242922",
                "business_account_id": "1",
                "api_base_url": fake.base_url + "/v21.0",
            },
        )
        response = api.post(f"/api/v1/channels/{channel.pk}/test/")
        assert response.status_code == 200
        assert response.json() == {"ok": True, "detail": "Connected as +1 555-010-4477 (Acme Support)"}
        assert fake.received("/106540352242922", method="GET")

        channel.credentials = {**channel.credentials, "access_token": "EAAG-wrong-token"}
        channel.save()
        response = api.post(f"/api/v1/channels/{channel.pk}/test/")
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is False and body["detail"]
        assert b"EAAG-wrong-token" not in response.content


@pytest.mark.django_db
def test_another_organizations_channels_are_invisible(api, other_api, org):
    channel = ChannelFactory(organization=org)
    assert other_api.get("/api/v1/channels/").json()["results"] == []
    assert other_api.get(f"/api/v1/channels/{channel.pk}/").status_code == 404
    response = other_api.patch(f"/api/v1/channels/{channel.pk}/", {"name": "Hijacked"}, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert other_api.post(f"/api/v1/channels/{channel.pk}/test/").status_code == 404
    assert other_api.delete(f"/api/v1/channels/{channel.pk}/").status_code == 404
    channel.refresh_from_db()
    assert channel.name != "Hijacked"
    assert api.get(f"/api/v1/channels/{channel.pk}/").status_code == 200
