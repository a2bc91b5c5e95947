"""HTML fragments fetched by static/js/inbox.js for partial updates (live events, filters, scroll)."""

from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from inbox import selectors_ui

from .common import member_required, pane_context


def _cursor(raw: str):
    """"<iso datetime>|<id>" of the last row shown -> (datetime, id), or None."""
    at, _, pk = (raw or "").rpartition("|")
    when = parse_datetime(at) if at else None
    return (when, int(pk)) if when is not None and pk.isdigit() else None


@require_GET
@member_required
def list_partial(request):
    filters = selectors_ui.list_filters_from(request.GET)
    conversations = selectors_ui.inbox_conversation_list(
        organization=request.organization, user=request.user, filters=filters, before=_cursor(request.GET.get("before"))
    )
    response = render(
        request,
        "inbox/_list.html",
        {
            "filters": filters,
            "conversations": conversations,
            "page_full": len(conversations) >= selectors_ui.PAGE_SIZE,
            "counts": selectors_ui.view_counts(organization=request.organization, user=request.user),
            "append": bool(request.GET.get("before")),
        },
    )
    return response


@require_GET
@member_required
def row_partial(request, pk: int):
    conversation = selectors_ui.inbox_conversation_get(organization=request.organization, conversation_id=pk)
    return render(request, "inbox/_row.html", {"c": conversation})


@require_GET
@member_required
def pane_partial(request, pk: int):
    conversation = selectors_ui.inbox_conversation_get(organization=request.organization, conversation_id=pk)
    return render(request, "inbox/_pane.html", pane_context(request, conversation))


@require_GET
@member_required
def header_partial(request, pk: int):
    conversation = selectors_ui.inbox_conversation_get(organization=request.organization, conversation_id=pk)
    return render(
        request,
        "inbox/_header.html",
        {"conversation": conversation, "sidebar": selectors_ui.sidebar(organization=request.organization)},
    )


@require_GET
@member_required
def thread_partial(request, pk: int):
    """Older messages (?before=<message id>), or the newest page (catch-up after a reconnect)."""
    conversation = selectors_ui.inbox_conversation_get(organization=request.organization, conversation_id=pk)
    before = request.GET.get("before", "")
    messages, has_more = selectors_ui.thread_page(
        organization=request.organization,
        conversation=conversation,
        before_id=int(before) if before.isdigit() else None,
    )
    return render(
        request, "inbox/_thread_page.html", {"conversation": conversation, "thread": messages, "has_more": has_more}
    )


@require_GET
@member_required
def message_partial(request, pk: int):
    message = selectors_ui.thread_message_get(organization=request.organization, message_id=pk)
    return render(request, "inbox/_message.html", {"m": message, "conversation": message.conversation})


@require_GET
@member_required
def contact_partial(request, pk: int):
    panel = selectors_ui.contact_panel(organization=request.organization, contact_id=pk)
    return render(request, "inbox/_contact.html", {"panel": panel, "open_conversation_id": request.GET.get("c", "")})


@require_GET
@member_required
def merge_candidates_partial(request, pk: int):
    panel = selectors_ui.contact_panel(organization=request.organization, contact_id=pk)
    candidates = selectors_ui.merge_candidates(
        organization=request.organization, contact=panel.contact, q=(request.GET.get("q") or "")[:200]
    )
    return render(request, "inbox/_merge_candidates.html", {"contact": panel.contact, "candidates": candidates})


@require_GET
@member_required
def dashboard_partial(request):
    return render(request, "inbox/_dashboard.html", {"dash": selectors_ui.dashboard(organization=request.organization)})
