"""The inbox's view counts are cached per organization (INBOX_COUNTS_CACHE_SECONDS): one organization's
counts never reach another's page, each member still gets their own "mine", and an agent's action
drops the cached counts at once."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from inbox import selectors_ui
from inbox.models import Conversation
from tests.factories import ChannelFactory, ConversationFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def counts_cache(settings):
    """The counts cache on, in a cache of this test's own (Redis is shared by every test run)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "counts"}
    }
    settings.INBOX_COUNTS_CACHE_SECONDS = 300
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()


def _open(org, n, **kwargs):
    channel = ChannelFactory(organization=org)
    return [ConversationFactory(organization=org, channel=channel, status="open", **kwargs) for _ in range(n)]


def _page_counts(client, url) -> dict:
    html = client.get(url).content.decode()
    return {k: int(v) for k, v in re.findall(r'data-count="([\w-]+)">(\d+)<', html)}


def test_counts_are_cached_per_organization(
    counts_cache, org, other_org, agent, other_owner, django_assert_num_queries
):
    _open(org, 3, assignee=agent)
    _open(other_org, 5)
    with django_assert_num_queries(1):
        assert selectors_ui.view_counts(organization=org, user=agent)["all"] == 3
    with django_assert_num_queries(0):
        assert selectors_ui.view_counts(organization=org, user=agent)["all"] == 3
    with django_assert_num_queries(1):
        counts = selectors_ui.view_counts(organization=other_org, user=other_owner)
    assert (counts["all"], counts["unassigned"], counts["mine"]) == (5, 5, 0)


def test_pages_never_show_another_organizations_cached_counts(
    counts_cache, agent_client, other_client, org, other_org, agent
):
    _open(org, 3, assignee=agent)
    _open(other_org, 5)
    assert _page_counts(agent_client, reverse("inbox:home")) == {"mine": 3, "unassigned": 0, "all": 3}
    assert _page_counts(other_client, reverse("inbox:home")) == {"mine": 0, "unassigned": 5, "all": 5}
    fragment = other_client.get(reverse("inbox:list-fragment")).content.decode()
    assert 'data-mine="0" data-unassigned="5" data-all="5"' in fragment


def test_each_member_gets_their_own_mine_from_the_shared_entry(counts_cache, agent_client, org, agent, owner):
    team = TeamFactory(organization=org, name="Support")
    _open(org, 2, assignee=agent, team=team)
    _open(org, 1, assignee=owner)
    _open(org, 4)
    assert _page_counts(agent_client, reverse("inbox:home")) == {
        "mine": 2,
        "unassigned": 4,
        "all": 7,
        f"team-{team.pk}": 2,
    }
    owner_client = Client()
    owner_client.force_login(owner)
    assert _page_counts(owner_client, reverse("inbox:home")) == {
        "mine": 1,
        "unassigned": 4,
        "all": 7,
        f"team-{team.pk}": 2,
    }


def test_an_agents_action_drops_the_cached_counts(counts_cache, agent_client, org, agent):
    first, second, third = _open(org, 3)
    assert _page_counts(agent_client, reverse("inbox:home"))["all"] == 3
    response = agent_client.post(
        reverse("inbox:conversation-update", args=[first.pk]), {"status": "resolved"}
    )
    assert response.status_code == 200
    assert _page_counts(agent_client, reverse("inbox:home")) == {"mine": 0, "unassigned": 2, "all": 2}
    response = agent_client.post(
        reverse("inbox:conversation-bulk"),
        {"ids": [second.pk, third.pk], "action": "assign", "value": agent.pk},
    )
    assert response.status_code == 200
    assert _page_counts(agent_client, reverse("inbox:home")) == {"mine": 2, "unassigned": 0, "all": 2}


def test_other_changes_show_once_the_entry_expires(counts_cache, settings, agent_client, org):
    (conversation,) = _open(org, 1)
    assert _page_counts(agent_client, reverse("inbox:home"))["all"] == 1
    Conversation.objects.filter(pk=conversation.pk).update(status="resolved")  # e.g. through the API
    assert _page_counts(agent_client, reverse("inbox:home"))["all"] == 1  # cached: bounded by the timeout
    selectors_ui.view_counts_forget(organization_id=org.pk)  # what the timeout does
    assert _page_counts(agent_client, reverse("inbox:home"))["all"] == 0


def test_the_page_tells_the_browser_how_old_counts_can_be(counts_cache, agent_client):
    assert 'data-counts-ttl="300"' in agent_client.get(reverse("inbox:home")).content.decode()


def test_no_cache_when_the_setting_is_zero(settings, org, agent, django_assert_num_queries):
    settings.INBOX_COUNTS_CACHE_SECONDS = 0
    _open(org, 2)
    for _ in range(2):
        with django_assert_num_queries(1):
            assert selectors_ui.view_counts(organization=org, user=agent)["all"] == 2
