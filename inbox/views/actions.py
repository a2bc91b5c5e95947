"""What agents do, through the same services as the REST API (one code path per rule).

Answers are HTML fragments to put in place, or the API's error shape {"error": {code, message,
details}} with its status when a service refuses.
"""

import mimetypes
import os

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from inbox import selectors, selectors_ui
from inbox.api.serializers import MessageCreateSerializer
from inbox.errors import InboxError
from inbox.services import ui
from inbox.services.contacts import contact_merge, contact_unmerge
from inbox.services.conversations import UNSET, conversation_update
from inbox.services.messages import message_create_outbound, message_retry

from .common import error_response, member_required

IDEMPOTENCY_KEY_MAX = 255
# Served inline only when a browser cannot run them as a page; anything else is a download.
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "audio/", "video/")


def _text_field(request, name: str) -> str:
    return request.POST.get(name, "")


@require_POST
@member_required
def message_send(request, pk: int):
    """The composer: text, a private note, attachments (multipart) or a template. 201 + the message."""
    conversation = selectors.conversation_get(organization=request.organization, conversation_id=pk)
    data: dict = {"text": _text_field(request, "text"), "private": request.POST.get("private") in ("1", "true", "on")}
    template_name = request.POST.get("template_name", "").strip()
    if template_name:
        variables = [v for v in request.POST.getlist("template_variable")]
        data["template"] = {
            "name": template_name,
            "language": request.POST.get("template_language", "").strip() or "en_US",
            "variables": variables,
        }
    files = request.FILES.getlist("attachments")
    if files:
        data["attachments"] = files
    # The API's input serializer checks the shapes, so the page accepts exactly what the API accepts.
    serializer = MessageCreateSerializer(data=data)
    if not serializer.is_valid():
        details = {k: [str(e) for e in v] if isinstance(v, list) else [str(v)] for k, v in serializer.errors.items()}
        return error_response(ValidationError(details))
    valid = serializer.validated_data
    if not valid.get("text", "").strip() and not valid.get("template") and not valid.get("attachments"):
        return error_response(ValidationError({"text": ["Write a message, attach a file or pick a template."]}))
    key = (request.headers.get("Idempotency-Key") or "").strip()[:IDEMPOTENCY_KEY_MAX] or None
    try:
        message, _ = message_create_outbound(
            conversation=conversation,
            text=valid.get("text", ""),
            template=dict(valid["template"]) if valid.get("template") else None,
            private=valid.get("private", False),
            attachments=valid.get("attachments") or [],
            sender=request.user,
            idempotency_key=key,
        )
    except (InboxError, ValidationError) as exc:
        return error_response(exc)
    message = selectors_ui.thread_message_get(organization=request.organization, message_id=message.pk)
    return render(request, "inbox/_message.html", {"m": message, "conversation": conversation}, status=201)


def _update_kwargs(post) -> dict:
    """The fields present in the form, as conversation_update arguments ("" clears an id)."""
    kwargs: dict = {}
    for field, arg in (("assignee", "assignee_id"), ("team", "team_id")):
        if field in post:
            raw = post[field].strip()
            if raw and not raw.isdigit():
                raise ValidationError({field: ["Expected an id."]})
            kwargs[arg] = int(raw) if raw else None
    if "status" in post:
        kwargs["status"] = post["status"]
    if "priority" in post:
        kwargs["priority"] = post["priority"]
    if "labels" in post or post.get("labels_present"):
        kwargs["labels"] = [name for name in post.getlist("labels") if name.strip()]
        if post.get("new_label", "").strip():
            kwargs["labels"].append(post["new_label"].strip())
    if "snoozed_until" in post:
        raw = post["snoozed_until"].strip()
        when = parse_datetime(raw) if raw else None
        if raw and (when is None or when.tzinfo is None):
            raise ValidationError({"snoozed_until": ["Expected a date and time with a time zone."]})
        kwargs["snoozed_until"] = when
        kwargs.setdefault("status", "snoozed")
    return kwargs


@require_POST
@member_required
def conversation_update_view(request, pk: int):
    """Assign, team, labels, priority, snooze, resolve / reopen. Answers the refreshed header."""
    conversation = selectors.conversation_get(organization=request.organization, conversation_id=pk)
    try:
        kwargs = _update_kwargs(request.POST)
        if not kwargs:
            raise ValidationError({"non_field_errors": ["Nothing to change."]})
        conversation_update(conversation=conversation, actor=request.user, **{k: kwargs.get(k, UNSET) for k in kwargs})
    except (InboxError, ValidationError) as exc:
        return error_response(exc)
    # The service has committed and published conversation.updated; every open page refreshes its list
    # (and counts) 250 ms later, after this line has dropped the cached counts.
    selectors_ui.view_counts_forget(organization_id=request.organization.pk)
    conversation = selectors_ui.inbox_conversation_get(organization=request.organization, conversation_id=pk)
    return render(
        request,
        "inbox/_header.html",
        {"conversation": conversation, "sidebar": selectors_ui.sidebar(organization=request.organization)},
    )


@require_POST
@member_required
def conversation_read(request, pk: int):
    conversation = selectors.conversation_get(organization=request.organization, conversation_id=pk)
    conversation = ui.conversation_mark_read(conversation=conversation)
    return JsonResponse({"id": conversation.pk, "unread_count": conversation.unread_count})


@require_POST
@member_required
def conversation_unread(request, pk: int):
    conversation = selectors.conversation_get(organization=request.organization, conversation_id=pk)
    conversation = ui.conversation_mark_unread(conversation=conversation)
    return JsonResponse({"id": conversation.pk, "unread_count": conversation.unread_count})


@require_POST
@member_required
def conversation_bulk(request):
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    if not ids:
        return error_response(ValidationError({"ids": ["Select at least one conversation."]}))
    try:
        count = ui.conversation_bulk_update(
            organization=request.organization,
            conversation_ids=ids,
            action=request.POST.get("action", ""),
            value=request.POST.get("value", ""),
            actor=request.user,
        )
    except (InboxError, ValidationError) as exc:
        return error_response(exc)
    selectors_ui.view_counts_forget(organization_id=request.organization.pk)
    return JsonResponse({"updated": count})


@require_POST
@member_required
def message_retry_view(request, pk: int):
    message = selectors.message_get(organization=request.organization, message_id=pk)
    try:
        message_retry(message=message)
    except InboxError as exc:
        return error_response(exc)
    message = selectors_ui.thread_message_get(organization=request.organization, message_id=pk)
    return render(request, "inbox/_message.html", {"m": message, "conversation": message.conversation})


@require_POST
@member_required
def presence(request, pk: int):
    """Heartbeat of an agent viewing a conversation; answers who else views it (and who is typing)."""
    conversation = selectors.conversation_get(organization=request.organization, conversation_id=pk)
    if request.POST.get("leave"):
        ui.presence_leave(
            organization_id=request.organization.pk, conversation_id=conversation.pk, user_id=request.user.pk
        )
        return HttpResponse(status=204)
    others = ui.presence_beat(
        organization_id=request.organization.pk,
        conversation_id=conversation.pk,
        user_id=request.user.pk,
        candidate_user_ids=selectors_ui.member_ids(organization=request.organization),
        composing=request.POST.get("composing") == "1",
    )
    names = selectors_ui.member_names(organization=request.organization, user_ids=list(others))
    viewers = [
        {"id": uid, "name": names.get(uid, "?"), "composing": bool(state.get("composing"))}
        for uid, state in sorted(others.items())
        if uid in names
    ]
    return JsonResponse({"viewers": viewers})


def _contact_panel(request, contact_id: int, status: int = 200, error: str = ""):
    panel = selectors_ui.contact_panel(organization=request.organization, contact_id=contact_id)
    return render(
        request,
        "inbox/_contact.html",
        {"panel": panel, "open_conversation_id": request.POST.get("c", ""), "error": error},
        status=status,
    )


@require_POST
@member_required
def contact_edit(request, pk: int):
    contact = selectors.contact_get(organization=request.organization, contact_id=pk)
    try:
        ui.contact_update(
            contact=contact,
            name=request.POST.get("name"),
            notes=request.POST.get("notes"),
            attributes=ui.attributes_parse(request.POST["attributes"]) if "attributes" in request.POST else None,
        )
    except ValidationError as exc:
        return error_response(exc)
    return _contact_panel(request, pk)


@require_POST
@member_required
def contact_merge_view(request, pk: int):
    primary = selectors.contact_get(organization=request.organization, contact_id=pk)
    other_id = request.POST.get("other", "")
    if not other_id.isdigit():
        return error_response(ValidationError({"other": ["Pick the contact to merge into this one."]}))
    other = selectors.contact_get(organization=request.organization, contact_id=int(other_id))
    try:
        contact_merge(primary=primary, other=other, user=request.user)
    except InboxError as exc:
        return error_response(exc)
    return _contact_panel(request, pk)


@require_POST
@member_required
def contact_unmerge_view(request, pk: int):
    merge_id = request.POST.get("merge", "")
    if not merge_id.isdigit():
        return error_response(ValidationError({"merge": ["Expected a merge id."]}))
    merge = selectors.contact_merge_get(organization=request.organization, merge_id=int(merge_id), primary_id=pk)
    try:
        contact_unmerge(merge=merge)
    except InboxError as exc:
        return error_response(exc)
    return _contact_panel(request, pk)


@require_GET
@member_required
def attachment_download(request, pk: int):
    """A stored attachment, only to members of its organization (never a public /media/ URL).

    Images, audio and video are shown inline; anything else (SVG, HTML, PDF...) is a download, so a
    customer's file can never run as a page of ours.
    """
    attachment = selectors_ui.attachment_get(organization=request.organization, attachment_id=pk)
    content_type = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or "application/octet-stream"
    inline = content_type.startswith(INLINE_TYPES) and request.GET.get("download") != "1"
    filename = attachment.filename or os.path.basename(attachment.file.name)
    response = FileResponse(
        attachment.file.open("rb"), as_attachment=not inline, filename=filename, content_type=content_type
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
