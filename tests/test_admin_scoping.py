import hashlib
import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.models import UsageRecord
from inbox.models import Attachment
from organizations.models import ApiKey, Membership, Organization, Role
from organizations.services import api_key_authenticate, api_key_create
from providers.fakes.whatsapp import FakeWhatsApp
from providers.models import Channel, WebhookEvent

from .factories import (
    CannedResponseFactory,
    ChannelFactory,
    ContactIdentityFactory,
    LabelFactory,
    MembershipFactory,
    MessageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MODELS = [
    "organizations.organization",
    "organizations.membership",
    "organizations.team",
    "organizations.apikey",
    "providers.channel",
    "providers.webhookevent",
    "inbox.contact",
    "inbox.contactidentity",
    "inbox.conversation",
    "inbox.message",
    "inbox.attachment",
    "inbox.label",
    "inbox.cannedresponse",
    "billing.usagerecord",
]
SECRET = "EAAG-super-secret-token-XYZW"


def url(model: str, view: str, *args) -> str:
    app, name = model.split(".")
    return reverse(f"admin:{app}_{name}_{view}", args=args)


def make_rows(org: Organization, tag: str, member) -> dict:
    """One row of every admin model in `org`; names carry `tag` so a leak shows in HTML."""
    channel = ChannelFactory(organization=org, name=f"{tag} WhatsApp")
    team = TeamFactory(organization=org, name=f"{tag} team")
    team.members.add(member)
    message = MessageFactory(
        conversation__organization=org,
        conversation__channel=channel,
        conversation__contact__name=f"{tag} contact",
        text=f"{tag} hello",
    )
    conversation = message.conversation
    identity = ContactIdentityFactory(contact=conversation.contact, value=f"{tag}@example.com", kind="email")
    key, _ = api_key_create(organization=org, name=f"{tag} key")
    event = WebhookEvent.objects.create(
        organization=org, channel=channel, event_id=f"{tag}-event", body=f'{{"text": "{tag} body"}}'.encode()
    )
    return {
        "organizations.organization": org,
        "organizations.membership": Membership.objects.get(organization=org, user=member),
        "organizations.team": team,
        "organizations.apikey": key,
        "providers.channel": channel,
        "providers.webhookevent": event,
        "inbox.contact": conversation.contact,
        "inbox.contactidentity": identity,
        "inbox.conversation": conversation,
        "inbox.message": message,
        "inbox.attachment": Attachment.objects.create(
            organization=org, message=message, filename=f"{tag}.pdf"
        ),
        "inbox.label": LabelFactory(organization=org, name=f"{tag} label"),
        "inbox.cannedresponse": CannedResponseFactory(organization=org, shortcut=f"{tag.lower()}-hi"),
        "billing.usagerecord": UsageRecord.objects.create(
            organization=org, meter="message.outbound", idempotency_key=f"{tag}-1", occurred_at=timezone.now()
        ),
    }


def org_id_of(obj) -> int:
    return obj.pk if isinstance(obj, Organization) else obj.organization_id


@pytest.fixture
def rows(org, other_org, owner, other_owner):
    return {"a": make_rows(org, "Acme", owner), "b": make_rows(other_org, "Globex", other_owner)}


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.mark.parametrize("model", MODELS)
def test_owner_sees_only_their_organizations_rows(owner_client, rows, org, model):
    response = owner_client.get(url(model, "changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown, f"{model}: the owner's own rows are listed"
    assert {org_id_of(obj) for obj in shown} == {org.pk}
    assert "globex" not in response.content.decode().lower()


@pytest.mark.parametrize("model", MODELS)
def test_owner_cannot_open_another_organizations_rows(owner_client, rows, model):
    theirs = rows["b"][model]
    for view in ("change", "delete", "history"):
        response = owner_client.get(url(model, view, theirs.pk))
        assert response.status_code in (302, 403, 404), (model, view, response.status_code)
        assert "globex" not in response.content.decode().lower()
    mine = rows["a"][model]
    assert owner_client.get(url(model, "change", mine.pk)).status_code == 200


def test_owner_cannot_delete_another_organizations_rows_by_post(owner_client, rows):
    label = rows["b"]["inbox.label"]
    owner_client.post(url("inbox.label", "delete", label.pk), {"post": "yes"})
    owner_client.post(
        url("inbox.label", "changelist"),
        {"action": "delete_selected", "_selected_action": [label.pk], "post": "yes"},
    )
    assert type(label).objects.filter(pk=label.pk).exists()


@pytest.mark.parametrize(
    "model, query, fields",
    [
        ("inbox.label", "", ["organization"]),
        ("inbox.cannedresponse", "", ["organization"]),
        ("inbox.contact", "", ["organization"]),
        ("organizations.team", "", ["organization", "members"]),
        ("organizations.membership", "", ["organization"]),  # members are added by e-mail (invite)
        ("organizations.apikey", "", ["organization"]),
        ("providers.channel", "?kind=whatsapp_cloud", ["organization"]),
    ],
)
def test_choices_list_only_the_owners_organizations(owner_client, rows, org, owner, model, query, fields):
    response = owner_client.get(url(model, "add") + query)
    assert response.status_code == 200
    form = response.context["adminform"].form
    for name in fields:
        choices = list(form.fields[name].queryset)
        assert choices, name
        if name == "organization":
            assert choices == [org]
        else:
            assert set(choices) == {owner}
    assert "globex" not in response.content.decode().lower()


def test_change_form_choices_are_scoped(owner_client, rows):
    contact = rows["a"]["inbox.contact"]
    response = owner_client.get(url("inbox.contact", "change", contact.pk))
    assert response.status_code == 200
    assert "Acme@example.com" in response.content.decode()
    assert "globex" not in response.content.decode().lower()
    team = rows["a"]["organizations.team"]
    form = owner_client.get(url("organizations.team", "change", team.pk)).context["adminform"].form
    assert set(form.fields["members"].queryset) == {team.members.get()}


def test_owner_cannot_save_a_row_into_another_organization(owner_client, rows, other_org):
    response = owner_client.post(
        url("inbox.label", "add"), {"organization": other_org.pk, "name": "x", "color": "#000000"}
    )
    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors
    assert not other_org.labels.filter(name="x").exists()


def test_agent_is_refused(client, rows, org):
    agent = UserFactory(username="agent@acme.test", is_staff=True)
    MembershipFactory(user=agent, organization=org, role=Role.AGENT)
    client.force_login(agent)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["app_list"] == []
    for model in MODELS:
        assert client.get(url(model, "changelist")).status_code == 403, model
        assert client.get(url(model, "change", rows["a"][model].pk)).status_code in (302, 403, 404), model


def test_agent_without_staff_status_goes_to_the_admin_login(client, agent):
    client.force_login(agent)
    response = client.get(url("inbox.label", "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_superuser_sees_everything(client, rows, org, other_org):
    admin_user = get_user_model().objects.create_superuser(
        "root@example.com", "root@example.com", "pw-123456789"
    )
    client.force_login(admin_user)
    for model in MODELS:
        response = client.get(url(model, "changelist"))
        assert response.status_code == 200
        assert {org.pk, other_org.pk} <= {org_id_of(obj) for obj in response.context["cl"].result_list}, model


def test_admin_of_two_organizations_sees_both(client, rows, org, other_org):
    user = UserFactory(username="both@example.com", is_staff=True)
    MembershipFactory(user=user, organization=org, role=Role.ADMIN)
    MembershipFactory(user=user, organization=other_org, role=Role.OWNER)
    client.force_login(user)
    response = client.get(url("inbox.label", "changelist"))
    assert {obj.organization_id for obj in response.context["cl"].result_list} == {org.pk, other_org.pk}


def test_owner_made_by_org_create_can_use_the_admin_without_permission_grants(client):
    from organizations.services import organization_create

    result = organization_create(
        name="Fresh", owner_email="fresh@example.com", owner_password="a-long-password-1"
    )
    assert not result["owner"].user_permissions.exists()
    assert client.login(username="fresh@example.com", password="a-long-password-1")
    index = client.get(reverse("admin:index"))
    names = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert {"Channel", "ApiKey", "Label", "Conversation", "Membership"} <= names
    assert client.get(url("providers.channel", "add") + "?kind=telegram").status_code == 200


# --- memberships -------------------------------------------------------------------------------------------
def test_membership_add_uses_the_service_and_owners_cannot_lock_themselves_out(
    owner_client, org, owner, rows
):
    helper = UserFactory(username="helper@example.com")
    MembershipFactory(user=helper, organization=org, role=Role.AGENT)
    membership = Membership.objects.get(user=helper, organization=org)
    response = owner_client.post(url("organizations.membership", "change", membership.pk), {"role": "admin"})
    assert response.status_code == 302
    helper.refresh_from_db()
    assert helper.is_staff
    assert Membership.objects.get(pk=membership.pk).role == "admin"
    mine = Membership.objects.get(user=owner, organization=org)
    owner_client.post(url("organizations.membership", "change", mine.pk), {"role": "agent"})
    owner_client.post(url("organizations.membership", "delete", mine.pk), {"post": "yes"})
    assert Membership.objects.get(pk=mine.pk).role == "owner"


def test_an_admin_cannot_make_owners(client, org, owner, rows):
    admin_user = UserFactory(username="admin@acme.test", is_staff=True)
    MembershipFactory(user=admin_user, organization=org, role=Role.ADMIN)
    helper = UserFactory(username="helper@example.com")
    MembershipFactory(user=helper, organization=org, role=Role.AGENT)
    membership = Membership.objects.get(user=helper, organization=org)
    client.force_login(admin_user)
    response = client.post(url("organizations.membership", "change", membership.pk), {"role": "owner"})
    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    owner_membership = Membership.objects.get(user=owner, organization=org)
    client.post(url("organizations.membership", "change", owner_membership.pk), {"role": "agent"})
    assert Membership.objects.get(pk=owner_membership.pk).role == "owner"


# --- channels ---------------------------------------------------------------------------------------------
def channel_post(org, **overrides) -> dict:
    data = {
        "organization": org.pk,
        "name": "Support WhatsApp",
        "config__phone_number_id": "106540352242922",
        "config__business_account_id": "102290129340398",
        "config__api_base_url": "",
        "credentials__access_token": SECRET,
        "credentials__app_secret": "app-secret-value-1234",
        "credentials__verify_token": "verify-token-5678",
    }
    data.update(overrides)
    return data


def raw_credentials(channel_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM providers_channel WHERE id = %s", [channel_id])
        return cursor.fetchone()[0]


def test_channel_add_asks_for_the_kind_first(owner_client):
    response = owner_client.get(url("providers.channel", "add"))
    assert response.status_code == 200
    content = response.content.decode()
    for kind in ("whatsapp_cloud", "telegram", "twilio_sms", "email", "webchat"):
        assert f"?kind={kind}" in content
    form = owner_client.get(url("providers.channel", "add") + "?kind=email").context["adminform"].form
    assert {"config__esp", "config__from_email", "config__domain", "credentials__api_key"} <= set(form.fields)
    assert "config__phone_number_id" not in form.fields


def test_channel_add_change_and_secrets_never_shown(owner_client, org, caplog):
    caplog.set_level(logging.DEBUG)
    add_url = url("providers.channel", "add") + "?kind=whatsapp_cloud"
    response = owner_client.post(add_url, channel_post(org))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    channel = Channel.objects.get(name="Support WhatsApp")
    assert channel.organization == org
    assert channel.lookup_key == "106540352242922"
    assert channel.credentials["access_token"] == SECRET
    assert raw_credentials(channel.pk).startswith("gAAAA")

    pages = {
        "add": owner_client.get(add_url),
        "change": owner_client.get(url("providers.channel", "change", channel.pk)),
        "changelist": owner_client.get(url("providers.channel", "changelist")),
    }
    for page, resp in pages.items():
        html = resp.content.decode()
        assert resp.status_code == 200, page
        for secret in (SECRET, "app-secret-value-1234", "verify-token-5678"):
            assert secret not in html, page
    change_html = pages["change"].content.decode()
    assert "••••XYZW" in change_html
    assert channel.webhook_url in change_html
    assert 'data-copy="' + channel.webhook_url in change_html

    # Empty secret inputs keep the stored secrets; a new value replaces one.
    change_data = {
        "name": "Support (renamed)",
        "config__phone_number_id": "106540352242922",
        "config__business_account_id": "102290129340398",
        "config__api_base_url": "",
        "credentials__access_token": "",
        "credentials__app_secret": "rotated-app-secret-9",
        "credentials__verify_token": "",
    }
    response = owner_client.post(url("providers.channel", "change", channel.pk), change_data)
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Support (renamed)"
    assert channel.credentials == {
        "access_token": SECRET,
        "app_secret": "rotated-app-secret-9",
        "verify_token": "verify-token-5678",
    }
    for secret in (SECRET, "app-secret-value-1234", "verify-token-5678", "rotated-app-secret-9"):
        assert secret not in caplog.text


def test_channel_add_shows_service_errors_next_to_the_input_and_never_echoes_secrets(owner_client, org):
    response = owner_client.post(
        url("providers.channel", "add") + "?kind=twilio_sms",
        {
            "organization": org.pk,
            "name": "SMS",
            "config__account_sid": "AC" + "1" * 32,
            "config__from": "12345",
            "credentials__auth_token": SECRET,
        },
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "config__from" in form.errors
    assert SECRET not in response.content.decode()
    assert not Channel.objects.exists()


def test_telegram_channel_gets_a_generated_secret(owner_client, org):
    response = owner_client.post(
        url("providers.channel", "add") + "?kind=telegram",
        {
            "organization": org.pk,
            "name": "Bot",
            "config__mode": "polling",
            "credentials__bot_token": "123:ABCdef",
        },
    )
    assert response.status_code == 302
    channel = Channel.objects.get(name="Bot")
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,256}", channel.credentials["secret_token"])
    assert (
        channel.credentials["secret_token"]
        not in owner_client.get(url("providers.channel", "change", channel.pk)).content.decode()
    )


def test_email_channel_shows_both_webhook_urls(owner_client, org):
    channel = ChannelFactory(organization=org, kind="email")
    html = owner_client.get(url("providers.channel", "change", channel.pk)).content.decode()
    assert channel.webhook_url in html
    assert channel.tracking_webhook_url in html


def test_channel_actions(owner_client, org):
    with FakeWhatsApp() as fake:
        channel = ChannelFactory(
            organization=org,
            config={
                "phone_number_id": "106540352242922",
                "business_account_id": "1",
                "api_base_url": fake.base_url + "/v21.0",
            },
        )
        changelist = url("providers.channel", "changelist")
        response = owner_client.post(
            changelist, {"action": "test_connection", "_selected_action": [channel.pk]}, follow=True
        )
        texts = [str(m) for m in response.context["messages"]]
        assert any("OK" in t and "+1 555-010-4477" in t for t in texts), texts
        assert fake.received("/106540352242922")
    channel.refresh_from_db()
    assert channel.last_checked_at is not None

    owner_client.post(changelist, {"action": "pause", "_selected_action": [channel.pk]})
    channel.refresh_from_db()
    assert channel.status == "paused"
    owner_client.post(changelist, {"action": "activate", "_selected_action": [channel.pk]})
    channel.refresh_from_db()
    assert channel.status == "active"


def test_channel_test_action_failure_is_reported(owner_client, org):
    with FakeWhatsApp(access_token="another-token") as fake:
        channel = ChannelFactory(
            organization=org,
            config={
                "phone_number_id": "106540352242922",
                "business_account_id": "1",
                "api_base_url": fake.base_url,
            },
        )
        response = owner_client.post(
            url("providers.channel", "changelist"),
            {"action": "test_connection", "_selected_action": [channel.pk]},
            follow=True,
        )
    texts = [str(m) for m in response.context["messages"]]
    assert any("failed" in t and "190" in t for t in texts), texts
    assert "EAAG-test-token" not in response.content.decode()


def test_channel_delete_through_admin(owner_client, org):
    channel = ChannelFactory(organization=org, kind="twilio_sms")
    response = owner_client.post(url("providers.channel", "delete", channel.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Channel.objects.filter(pk=channel.pk).exists()


# --- API keys ------------------------------------------------------------------------------------------------
def test_api_key_is_shown_once_and_stored_hashed(owner_client, org):
    response = owner_client.post(
        url("organizations.apikey", "add"), {"name": "CI", "organization": org.pk}, follow=True
    )
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    raws = [m.group(0) for t in texts if (m := re.search(r"alx_[0-9a-f]{8}_[A-Za-z0-9_-]+", t))]
    assert len(raws) == 1, texts
    raw = raws[0]
    key = ApiKey.objects.get(name="CI")
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in ApiKey.objects.filter(pk=key.pk).values_list("hashed_key", "prefix", "name").get()
    for page in (url("organizations.apikey", "changelist"), url("organizations.apikey", "change", key.pk)):
        html = owner_client.get(page).content.decode()
        assert raw not in html
        assert key.hashed_key not in html

    response = owner_client.post(
        url("organizations.apikey", "changelist"), {"action": "revoke", "_selected_action": [key.pk]}
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(raw_key=raw) is None


# --- webhook events -------------------------------------------------------------------------------------------
def test_webhook_events_are_read_only_with_decoded_body(owner_client, rows):
    event = rows["a"]["providers.webhookevent"]
    event.headers = {
        "X-Telegram-Bot-Api-Secret-Token": "header-secret-123",
        "Content-Type": "application/json",
    }
    event.save()
    response = owner_client.get(url("providers.webhookevent", "change", event.pk))
    html = response.content.decode()
    assert "Acme body" in html
    assert "header-secret-123" not in html
    assert "application/json" in html
    assert not response.context["has_change_permission"]
    assert owner_client.get(url("providers.webhookevent", "add")).status_code == 403
    changelist = owner_client.get(url("providers.webhookevent", "changelist") + "?status__exact=received")
    assert [e.pk for e in changelist.context["cl"].result_list] == [event.pk]
    assert "replay" in changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request)
