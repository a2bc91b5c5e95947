import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_inbox_requires_login(client):
    response = client.get(reverse("inbox:home"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_inbox_lists_the_conversation(agent_client, conversation):
    response = agent_client.get(reverse("inbox:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ada Lovelace" in html
    assert "Where is my order?" in html
    assert f'id="conv-{conversation.pk}"' in html


def test_conversation_page_renders_thread_and_composer(agent_client, conversation):
    response = agent_client.get(reverse("inbox:conversation", args=[conversation.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="composer"' in html
    assert "Where is my order?" in html


def test_dashboard_renders(agent_client, conversation):
    response = agent_client.get(reverse("inbox:dashboard"))
    assert response.status_code == 200
    assert "Waiting longest" in response.content.decode()
