"""Fixtures shared by the inbox API and UI tests: one WhatsApp channel and a contact reachable on it."""

import pytest

from tests.factories import ChannelFactory, ContactFactory, ContactIdentityFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def channel(org):
    return ChannelFactory(organization=org, kind="whatsapp_cloud", name="Support WhatsApp")


@pytest.fixture
def contact(org):
    contact = ContactFactory(organization=org, name="Ada Lovelace")
    ContactIdentityFactory(contact=contact, kind="phone", value="+14155550123")
    return contact
