import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from providers.selectors import channel_get_by_token

from ..factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_webhook_intake_reads_a_channel_once_within_the_cache_window(settings, org):
    settings.WEBHOOK_CHANNEL_CACHE_SECONDS = 5
    channel = ChannelFactory(organization=org)
    with CaptureQueriesContext(connection) as queries:
        first = channel_get_by_token(kind=channel.kind, token=channel.webhook_token, cached=True)
        second = channel_get_by_token(kind=channel.kind, token=channel.webhook_token, cached=True)
    assert first.pk == second.pk == channel.pk
    assert len(queries) == 1
    settings.WEBHOOK_CHANNEL_CACHE_SECONDS = 0
    with CaptureQueriesContext(connection) as queries:
        channel_get_by_token(kind=channel.kind, token=channel.webhook_token, cached=True)
    assert len(queries) == 1
