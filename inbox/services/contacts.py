"""Contact writes: merge two contacts, and undo a merge exactly."""

from django.db import transaction
from django.utils import timezone

from inbox import live
from inbox.errors import InboxError
from inbox.models import Contact, ContactIdentity, ContactMerge, Conversation

# A moved conversation that collides with one the surviving contact already has on the same channel
# and thread (the unique (channel, contact, thread_key) constraint) keeps its history under a parked
# thread key. The prefix names the merge, so an unmerge restores the original key from the key itself.
PARKED_PREFIX = "merged:{merge_id}:"
THREAD_KEY_MAX = Conversation._meta.get_field("thread_key").max_length


def _parked_key(merge_id: int, thread_key: str) -> str:
    return PARKED_PREFIX.format(merge_id=merge_id) + thread_key


def contact_merge(*, primary: Contact, other: Contact, user=None) -> ContactMerge:
    """Merge `other` into `primary`: other's identities and conversations move to primary.

    Preconditions: both contacts belong to the same organization (the caller found them through
    selectors scoped to it). Refuses (InboxError) a contact merged with itself, across organizations,
    or when either side is already merged into another contact. `other` gets merged_into=primary;
    the returned ContactMerge lists exactly the identity and conversation ids that moved, which is
    what contact_unmerge restores. Emits conversation.updated for each moved conversation on commit.
    """
    if primary.pk == other.pk:
        raise InboxError("invalid_merge", "A contact cannot be merged with itself.", status_code=400)
    if primary.organization_id != other.organization_id:
        raise InboxError("not_found", "No such contact.", status_code=404)
    with transaction.atomic():
        # Lock both rows in id order so two concurrent merges of the same pair cannot deadlock.
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update().filter(pk__in=[primary.pk, other.pk]).order_by("pk")
        }
        primary, other = locked[primary.pk], locked[other.pk]
        if other.merged_into_id is not None:
            raise InboxError("already_merged", "This contact was already merged into another.", status_code=409)
        if primary.merged_into_id is not None:
            raise InboxError(
                "already_merged", "The target contact was merged into another; merge into that one.", status_code=409
            )
        identity_ids = list(ContactIdentity.objects.filter(contact=other).order_by("id").values_list("id", flat=True))
        conversations = list(Conversation.objects.select_for_update().filter(contact=other).order_by("id"))
        merge = ContactMerge.objects.create(
            organization_id=primary.organization_id,
            primary=primary,
            merged=other,
            identity_ids=identity_ids,
            conversation_ids=[c.pk for c in conversations],
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        ContactIdentity.objects.filter(pk__in=identity_ids).update(contact=primary)
        taken = set(
            Conversation.objects.filter(contact=primary).values_list("channel_id", "thread_key")
        )
        for conversation in conversations:
            if (conversation.channel_id, conversation.thread_key) in taken:
                parked = _parked_key(merge.pk, conversation.thread_key)
                if len(parked) > THREAD_KEY_MAX:
                    raise InboxError(
                        "merge_conflict",
                        "A conversation's thread key is too long to merge it next to an existing one.",
                        status_code=409,
                        details={"conversation": conversation.pk},
                    )
                conversation.thread_key = parked
            conversation.contact = primary
            conversation.save(update_fields=["contact", "thread_key", "updated_at"])
        other.merged_into = primary
        other.save(update_fields=["merged_into", "updated_at"])
        for conversation in Conversation.objects.filter(pk__in=merge.conversation_ids).select_related(
            "contact", "channel"
        ):
            live.conversation_changed(conversation, created=False)
    return merge


def contact_unmerge(*, merge: ContactMerge) -> ContactMerge:
    """Undo a merge: the recorded identities and conversations go back to the merged contact.

    Only what the merge moved goes back, and only while it still sits on the primary contact (an
    identity since moved by a later merge stays where it is). Restores parked thread keys and clears
    merged_into. Refuses (InboxError, 409) a merge that was already undone. Emits conversation.updated
    for each returned conversation on commit.
    """
    with transaction.atomic():
        merge = ContactMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.undone_at is not None:
            raise InboxError("already_undone", "This merge was already undone.", status_code=409)
        list(
            Contact.objects.select_for_update()
            .filter(pk__in=[merge.primary_id, merge.merged_id])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ContactIdentity.objects.filter(pk__in=merge.identity_ids, contact_id=merge.primary_id).update(
            contact_id=merge.merged_id
        )
        prefix = _parked_key(merge.pk, "")
        conversations = list(
            Conversation.objects.select_for_update().filter(pk__in=merge.conversation_ids, contact_id=merge.primary_id)
        )
        for conversation in conversations:
            if conversation.thread_key.startswith(prefix):
                conversation.thread_key = conversation.thread_key[len(prefix) :]
            conversation.contact_id = merge.merged_id
            conversation.save(update_fields=["contact", "thread_key", "updated_at"])
        Contact.objects.filter(pk=merge.merged_id, merged_into_id=merge.primary_id).update(
            merged_into=None, updated_at=timezone.now()
        )
        merge.undone_at = timezone.now()
        merge.save(update_fields=["undone_at"])
        for conversation in Conversation.objects.filter(pk__in=[c.pk for c in conversations]).select_related(
            "contact", "channel"
        ):
            live.conversation_changed(conversation, created=False)
    return merge
