import pytest
from django.urls import reverse

from organizations.middleware import SESSION_KEY
from organizations.models import Role

from ..factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_login_page_renders_an_accessible_form(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert 'for="id_username"' in html and 'id="id_username"' in html
    assert 'for="id_password"' in html and 'autocomplete="current-password"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'type="submit"' in html
    assert "/static/css/app.css" in html


def test_wrong_password_shows_an_error(client, owner):
    response = client.post(reverse("login"), {"username": "owner@acme.test", "password": "wrong"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "_auth_user_id" not in client.session


def test_owner_logs_in_and_out(client, owner):
    response = client.post(
        reverse("login"),
        {"username": "owner@acme.test", "password": "correct-horse-battery", "next": "/admin/"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(owner.pk)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_header_shows_the_organization_switcher_and_a_logout_form(client, owner, org):
    second = OrganizationFactory(name="Second Shop")
    MembershipFactory(user=owner, organization=second, role=Role.AGENT)
    client.force_login(owner)
    html = client.get(reverse("login")).content.decode()
    assert f'action="{reverse("organization-switch")}"' in html
    assert "Acme" in html and "Second Shop" in html
    assert f'action="{reverse("logout")}"' in html


def test_single_organization_shows_its_name_without_switcher(client, owner):
    client.force_login(owner)
    html = client.get(reverse("login")).content.decode()
    assert "Acme" in html
    assert reverse("organization-switch") not in html


def test_switch_to_a_member_organization(client, owner, org):
    second = OrganizationFactory(name="Second Shop")
    MembershipFactory(user=owner, organization=second, role=Role.AGENT)
    client.force_login(owner)
    client.get(reverse("login"))
    assert client.session[SESSION_KEY] == org.pk
    response = client.post(reverse("organization-switch"), {"organization": second.pk, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session[SESSION_KEY] == second.pk
    response = client.get(reverse("login"))
    assert response.context["current_organization"] == second


def test_switch_to_a_foreign_organization_is_refused(client, owner, org, other_org):
    client.force_login(owner)
    client.get(reverse("login"))
    response = client.post(reverse("organization-switch"), {"organization": other_org.pk})
    assert response.status_code == 400
    assert client.session[SESSION_KEY] == org.pk
    assert client.post(reverse("organization-switch"), {"organization": "x"}).status_code == 400
    assert client.get(reverse("organization-switch")).status_code == 405


def test_switch_ignores_an_offsite_next(client, owner, org):
    client.force_login(owner)
    response = client.post(
        reverse("organization-switch"), {"organization": org.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_switch_requires_login(client, org):
    response = client.post(reverse("organization-switch"), {"organization": org.pk})
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
