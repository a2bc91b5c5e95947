import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from organizations.models import Membership, Role
from organizations.services import membership_invite

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_an_owner_invites_a_new_agent_who_sets_a_password_and_signs_in(
    client, org, owner, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/organizations/membership/add/",
            {"email": "New.Agent@Acme.test", "organization": org.pk, "role": Role.AGENT},
            follow=True,
        )
    assert response.status_code == 200
    user = User.objects.get(username="new.agent@acme.test")
    assert not user.has_usable_password()
    assert Membership.objects.filter(user=user, organization=org, role=Role.AGENT).exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.agent@acme.test"]
    link = re.search(r"http://testserver(/account/password/\S+/)", mail.outbox[0].body).group(1)
    assert link in response.content.decode()

    client.logout()
    form = client.get(link, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"new_password1": "a-long-new-password-1", "new_password2": "a-long-new-password-1"},
    )
    assert done.status_code == 302
    assert client.login(username="new.agent@acme.test", password="a-long-new-password-1")
    # The link works once.
    client.logout()
    assert "expired" in client.get(link, follow=True).content.decode()


def test_inviting_an_existing_account_adds_the_membership_without_a_link(org, other_owner):
    membership, url = membership_invite(organization=org, email=other_owner.email, role=Role.ADMIN)
    assert url is None
    assert membership.user == other_owner and membership.role == Role.ADMIN
    other_owner.refresh_from_db()
    assert other_owner.has_usable_password()


def test_an_agent_cannot_invite(client, org, agent):
    client.force_login(agent)
    response = client.post(
        "/admin/organizations/membership/add/",
        {"email": "x@acme.test", "organization": org.pk, "role": Role.AGENT},
    )
    assert response.status_code in (302, 403)
    assert not User.objects.filter(username="x@acme.test").exists()


def test_an_owner_cannot_invite_into_another_organization(client, org, owner, other_org):
    client.force_login(owner)
    response = client.post(
        "/admin/organizations/membership/add/",
        {"email": "y@acme.test", "organization": other_org.pk, "role": Role.AGENT},
    )
    assert response.status_code == 200  # the form answers with an error: not a choice
    assert not User.objects.filter(username="y@acme.test").exists()
