"""Inbox reads. Every selector takes the organization: tenant scoping never lives in views.

A row of another organization is simply not found (DoesNotExist, which the API answers with 404).
"""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from organizations.models import Organization

from .models import Attachment, Contact, ContactIdentity, ContactMerge, Conversation, Message

# The sentinels the conversation list's `assignee` filter accepts besides a user id.
ASSIGNEE_ME = "me"
ASSIGNEE_NONE = "none"


def _identities_prefetch() -> Prefetch:
    return Prefetch("identities", queryset=ContactIdentity.objects.order_by("id"))


# --- contacts ------------------------------------------------------------------------------------------
def contact_list(*, organization: Organization, q: str = "", include_merged: bool = False) -> QuerySet[Contact]:
    """Contacts, newest first. `q` matches the name or any identity value (phone, e-mail, chat id).

    Contacts merged into another are left out unless include_merged: their identities and
    conversations live on the surviving contact.
    """
    contacts = Contact.objects.filter(organization=organization)
    if not include_merged:
        contacts = contacts.filter(merged_into__isnull=True)
    q = (q or "").strip()
    if q:
        identity_match = ContactIdentity.objects.filter(contact_id=OuterRef("pk"), value__icontains=q)
        contacts = contacts.filter(Q(name__icontains=q) | Exists(identity_match))
    return contacts.prefetch_related(_identities_prefetch()).order_by("-created_at", "-id")


def contact_get(*, organization: Organization, contact_id: int) -> Contact:
    return Contact.objects.prefetch_related(_identities_prefetch()).get(organization=organization, pk=contact_id)


def contact_merge_get(*, organization: Organization, merge_id: int, primary_id: int | None = None) -> ContactMerge:
    """A merge record; with primary_id, only a merge into that contact is found."""
    merges = ContactMerge.objects.filter(organization=organization)
    if primary_id is not None:
        merges = merges.filter(primary_id=primary_id)
    return merges.get(pk=merge_id)


def contact_identity_find(*, organization: Organization, kind: str, value: str) -> ContactIdentity | None:
    return (
        ContactIdentity.objects.select_related("contact")
        .filter(organization=organization, kind=kind, value=value)
        .first()
    )


# --- conversations -------------------------------------------------------------------------------------
def _conversation_queryset() -> QuerySet[Conversation]:
    # Everything ConversationSerializer reads, in a constant number of queries.
    return Conversation.objects.select_related("contact", "channel").prefetch_related("labels")


def conversation_list(
    *,
    organization: Organization,
    status: str | None = None,
    channel_id: int | None = None,
    assignee: int | str | None = None,
    user=None,
    label: str | None = None,
    q: str | None = None,
) -> QuerySet[Conversation]:
    """Conversations, newest activity first.

    assignee: a user id, ASSIGNEE_ME (needs `user`) or ASSIGNEE_NONE (unassigned).
    label: a label name. q: contact name, identity value or message text (notes included).
    """
    conversations = _conversation_queryset().filter(organization=organization)
    if status:
        conversations = conversations.filter(status=status)
    if channel_id is not None:
        conversations = conversations.filter(channel_id=channel_id)
    if assignee == ASSIGNEE_NONE:
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee == ASSIGNEE_ME:
        conversations = conversations.filter(assignee_id=getattr(user, "pk", None))
    elif assignee is not None:
        conversations = conversations.filter(assignee_id=assignee)
    if label:
        conversations = conversations.filter(labels__organization=organization, labels__name=label)
    q = (q or "").strip()
    if q:
        identity_match = ContactIdentity.objects.filter(contact_id=OuterRef("contact_id"), value__icontains=q)
        message_match = Message.objects.filter(conversation_id=OuterRef("pk"), text__icontains=q)
        conversations = conversations.filter(
            Q(contact__name__icontains=q) | Exists(identity_match) | Exists(message_match)
        )
    return conversations.order_by("-last_activity_at", "-id")


def conversation_get(*, organization: Organization, conversation_id: int) -> Conversation:
    return _conversation_queryset().get(organization=organization, pk=conversation_id)


def conversation_find(*, organization: Organization, channel_id: int, contact_id: int, thread_key: str = ""):
    return (
        _conversation_queryset()
        .filter(organization=organization, channel_id=channel_id, contact_id=contact_id, thread_key=thread_key)
        .first()
    )


# --- messages ------------------------------------------------------------------------------------------
def _message_queryset() -> QuerySet[Message]:
    return Message.objects.prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.order_by("id"))
    )


def message_list(*, organization: Organization, conversation: Conversation) -> QuerySet[Message]:
    """A conversation's messages, oldest first (notes and system events included)."""
    return _message_queryset().filter(organization=organization, conversation=conversation).order_by("created_at", "id")


def message_get(*, organization: Organization, message_id: int) -> Message:
    return _message_queryset().get(organization=organization, pk=message_id)
