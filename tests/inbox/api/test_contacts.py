from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Contact, ContactIdentity, ContactMerge, Conversation
from inbox.services.contacts import contact_merge
from tests.factories import ChannelFactory, ContactFactory, ContactIdentityFactory, ConversationFactory

from .conftest import error_of


@pytest.mark.django_db
def test_list_newest_first_with_identities(api, org, channel):
    old = ContactFactory(organization=org, name="Old")
    new = ContactFactory(organization=org, name="New")
    Contact.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    ContactIdentityFactory(contact=new, kind="email", value="new@example.com", channel=channel)
    response = api.get("/api/v1/contacts/")
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["results"]] == [new.pk, old.pk]
    first = body["results"][0]
    assert {"id", "name", "identities", "created_at", "notes", "attributes", "merged_into"} <= set(first)
    assert first["identities"] == [{"kind": "email", "value": "new@example.com", "channel": channel.pk}]
    assert body["next"] is None


@pytest.mark.django_db
def test_search_matches_name_and_identity_values(api, org):
    ada = ContactFactory(organization=org, name="Ada Lovelace")
    ContactIdentityFactory(contact=ada, kind="phone", value="+14155550123")
    grace = ContactFactory(organization=org, name="Grace Hopper")
    ContactIdentityFactory(contact=grace, kind="email", value="grace@navy.example")

    def ids(q):
        return {c["id"] for c in api.get("/api/v1/contacts/", {"q": q}).json()["results"]}

    assert ids("lovelace") == {ada.pk}
    assert ids("4155550") == {ada.pk}
    assert ids("NAVY.example") == {grace.pk}
    assert ids("nobody") == set()
    assert ids("") == {ada.pk, grace.pk}


@pytest.mark.django_db
def test_detail(api, contact):
    response = api.get(f"/api/v1/contacts/{contact.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Ada Lovelace"
    assert body["identities"] == [{"kind": "phone", "value": "+14155550123", "channel": None}]
    assert body["merged_into"] is None


@pytest.mark.django_db
def test_merge_moves_identities_and_conversations_and_unmerge_restores_both(api, org, channel):
    primary = ContactFactory(organization=org, name="Ada")
    ContactIdentityFactory(contact=primary, kind="phone", value="+14155550123")
    other = ContactFactory(organization=org, name="Ada (e-mail)")
    email_identity = ContactIdentityFactory(contact=other, kind="email", value="ada@example.com")
    telegram = ChannelFactory(organization=org, kind="telegram")
    moved = ConversationFactory(organization=org, channel=telegram, contact=other)
    primary_conversation = ConversationFactory(organization=org, channel=channel, contact=primary)
    # Both have a conversation on the same channel and thread: the moved one is parked next to it.
    clash = ConversationFactory(organization=org, channel=channel, contact=other)

    response = api.post(f"/api/v1/contacts/{primary.pk}/merge/", {"other": other.pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == primary.pk
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("phone", "+14155550123"),
        ("email", "ada@example.com"),
    }
    merge = ContactMerge.objects.get(pk=body["merge"]["id"])
    assert (merge.primary_id, merge.merged_id) == (primary.pk, other.pk)
    assert merge.identity_ids == [email_identity.pk]
    assert sorted(merge.conversation_ids) == sorted([moved.pk, clash.pk])
    assert body["merge"]["conversation_ids"] == merge.conversation_ids
    other.refresh_from_db()
    assert other.merged_into_id == primary.pk
    assert set(Conversation.objects.filter(contact=primary).values_list("pk", flat=True)) == {
        moved.pk,
        primary_conversation.pk,
        clash.pk,
    }
    clash.refresh_from_db()
    assert clash.thread_key == f"merged:{merge.pk}:"
    primary_conversation.refresh_from_db()
    assert primary_conversation.thread_key == ""
    merged_detail = api.get(f"/api/v1/contacts/{other.pk}/").json()
    assert merged_detail["merged_into"] == primary.pk and merged_detail["identities"] == []
    assert other.pk not in {c["id"] for c in api.get("/api/v1/contacts/").json()["results"]}

    response = api.post(f"/api/v1/contacts/{primary.pk}/unmerge/", {"merge": merge.pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["contact"]["identities"] == [{"kind": "phone", "value": "+14155550123", "channel": None}]
    assert body["restored"]["id"] == other.pk
    assert body["restored"]["merged_into"] is None
    assert body["restored"]["identities"] == [{"kind": "email", "value": "ada@example.com", "channel": None}]
    assert body["merge"]["undone_at"] is not None
    assert set(Conversation.objects.filter(contact=other).values_list("pk", flat=True)) == {moved.pk, clash.pk}
    assert list(Conversation.objects.filter(contact=primary).values_list("pk", flat=True)) == [
        primary_conversation.pk
    ]
    clash.refresh_from_db()
    assert clash.thread_key == ""

    again = api.post(f"/api/v1/contacts/{primary.pk}/unmerge/", {"merge": merge.pk}, format="json")
    assert again.status_code == 409
    assert error_of(again)["code"] == "already_undone"


@pytest.mark.django_db
def test_merge_refusals(api, org):
    a = ContactFactory(organization=org)
    b = ContactFactory(organization=org)
    c = ContactFactory(organization=org)

    itself = api.post(f"/api/v1/contacts/{a.pk}/merge/", {"other": a.pk}, format="json")
    assert itself.status_code == 400
    assert error_of(itself)["code"] == "invalid_merge"

    missing = api.post(f"/api/v1/contacts/{a.pk}/merge/", {}, format="json")
    assert missing.status_code == 400
    assert "other" in error_of(missing)["details"]

    assert api.post(f"/api/v1/contacts/{a.pk}/merge/", {"other": b.pk}, format="json").status_code == 200
    twice = api.post(f"/api/v1/contacts/{c.pk}/merge/", {"other": b.pk}, format="json")
    assert twice.status_code == 409
    assert error_of(twice)["code"] == "already_merged"
    into_merged = api.post(f"/api/v1/contacts/{b.pk}/merge/", {"other": c.pk}, format="json")
    assert into_merged.status_code == 409


@pytest.mark.django_db
def test_unmerge_of_a_merge_into_another_contact_is_not_found(api, org):
    a, b, c = (ContactFactory(organization=org) for _ in range(3))
    merge = contact_merge(primary=a, other=b)
    response = api.post(f"/api/v1/contacts/{c.pk}/unmerge/", {"merge": merge.pk}, format="json")
    assert response.status_code == 404
    merge.refresh_from_db()
    assert merge.undone_at is None


@pytest.mark.django_db
def test_another_organizations_contacts_are_invisible(api, other_api, org, other_org):
    ours = ContactFactory(organization=org, name="Ada")
    ContactIdentityFactory(contact=ours, kind="phone", value="+14155550123")
    theirs = ContactFactory(organization=other_org, name="Ada")
    assert [c["id"] for c in other_api.get("/api/v1/contacts/").json()["results"]] == [theirs.pk]
    assert [c["id"] for c in api.get("/api/v1/contacts/").json()["results"]] == [ours.pk]
    assert other_api.get("/api/v1/contacts/", {"q": "4155550123"}).json()["results"] == []
    assert other_api.get(f"/api/v1/contacts/{ours.pk}/").status_code == 404
    # Neither side of a merge may belong to another organization.
    assert other_api.post(f"/api/v1/contacts/{ours.pk}/merge/", {"other": theirs.pk}, format="json").status_code == 404
    assert other_api.post(f"/api/v1/contacts/{theirs.pk}/merge/", {"other": ours.pk}, format="json").status_code == 404
    assert api.post(f"/api/v1/contacts/{ours.pk}/merge/", {"other": theirs.pk}, format="json").status_code == 404
    merge = contact_merge(primary=ours, other=ContactFactory(organization=org))
    assert other_api.post(f"/api/v1/contacts/{ours.pk}/unmerge/", {"merge": merge.pk}, format="json").status_code == 404
    assert ContactIdentity.objects.get(value="+14155550123").contact_id == ours.pk
    assert not ContactMerge.objects.filter(merged=theirs).exists()
