import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from inbox.models import CannedResponse, Label
from organizations.models import Membership, Organization, Role

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("demo_setup", *args, stdout=out)
    return out.getvalue()


def test_first_run_prints_the_login_once_and_later_runs_do_not(client):
    first = run("--url", "http://127.0.0.1:8123")
    assert "http://127.0.0.1:8123/" in first
    assert "demo@alexia.local" in first
    password = re.search(r"Password: (\S+)", first).group(1)
    assert first.startswith("+--") and first.rstrip().endswith("-+")

    org = Organization.objects.get(name="Demo Company")
    user = get_user_model().objects.get(username="demo@alexia.local")
    assert Membership.objects.get(user=user, organization=org).role == Role.OWNER
    labels = set(Label.objects.filter(organization=org).values_list("name", flat=True))
    replies = CannedResponse.objects.filter(organization=org).count()
    assert {"billing", "urgent", "vip"} <= labels
    assert replies >= 5

    second = run()
    assert password not in second
    assert "already exists" in second
    assert "manage.py changepassword demo@alexia.local" in second
    assert Organization.objects.filter(name="Demo Company").count() == 1
    assert Label.objects.filter(organization=org).count() == len(labels)
    assert CannedResponse.objects.filter(organization=org).count() == replies
    user.refresh_from_db()
    assert user.check_password(password)

    response = client.post(
        reverse("login"), {"username": "demo@alexia.local", "password": password, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_restores_missing_demo_data_without_touching_the_password():
    first = run()
    password = re.search(r"Password: (\S+)", first).group(1)
    org = Organization.objects.get(name="Demo Company")
    Label.objects.filter(organization=org, name="vip").delete()
    Membership.objects.filter(organization=org).update(role=Role.AGENT)
    again = run()
    assert password not in again
    assert Label.objects.filter(organization=org, name="vip").exists()
    assert Membership.objects.get(organization=org).role == Role.OWNER
