import pytest
from rest_framework.test import APIClient

from organizations.models import Role
from organizations.services import api_key_create
from providers.fakes.whatsapp import FakeWhatsApp

from .factories import ChannelFactory, MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = "http://testserver"


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Globex")


@pytest.fixture
def owner(org):
    user = UserFactory(username="owner@acme.test", is_staff=True)
    MembershipFactory(user=user, organization=org, role=Role.OWNER)
    return user


@pytest.fixture
def agent(org):
    user = UserFactory(username="agent@acme.test")
    MembershipFactory(user=user, organization=org, role=Role.AGENT)
    return user


@pytest.fixture
def other_owner(other_org):
    user = UserFactory(username="owner@globex.test", is_staff=True)
    MembershipFactory(user=user, organization=other_org, role=Role.OWNER)
    return user


@pytest.fixture
def api_key(org):
    _, raw = api_key_create(organization=org, name="tests")
    return raw


@pytest.fixture
def api(api_key):
    """An API client authenticated with the `org` organization's API key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def other_api(other_org):
    _, raw = api_key_create(organization=other_org, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def fake_whatsapp():
    """A local fake of the WhatsApp Cloud API (providers/fakes/whatsapp.py) on 127.0.0.1."""
    with FakeWhatsApp() as fake:
        yield fake


@pytest.fixture
def wa_channel(transactional_db, org, fake_whatsapp):
    """A WhatsApp channel of `org` pointed at the fake, with committed rows (workers and servers see it)."""
    channel = ChannelFactory(organization=org, kind="whatsapp_cloud", name="WhatsApp Support")
    channel.config = {**channel.config, "api_base_url": fake_whatsapp.base_url + "/v21.0"}
    channel.save()
    return channel


@pytest.fixture(autouse=True)
def _no_webhook_channel_cache(settings):
    # Tests change channels between requests (pause, rotate secrets): read them fresh every time.
    settings.WEBHOOK_CHANNEL_CACHE_SECONDS = 0
    # Tests create and roll back plans (a rollback sends no signal): price from the database every time.
    settings.BILLING_PLAN_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_inbox_counts_cache(settings):
    # Tests change conversations between requests and count queries: count the views afresh every time.
    settings.INBOX_COUNTS_CACHE_SECONDS = 0
