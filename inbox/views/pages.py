"""Full pages: the inbox (list, optionally with a conversation open) and the dashboard."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET

from inbox import selectors_ui

from .common import member_required, pane_context


def _inbox_context(request) -> dict:
    organization = request.organization
    filters = selectors_ui.list_filters_from(request.GET)
    conversations = selectors_ui.inbox_conversation_list(organization=organization, user=request.user, filters=filters)
    return {
        "filters": filters,
        "conversations": conversations,
        "page_full": len(conversations) >= selectors_ui.PAGE_SIZE,
        "counts": selectors_ui.view_counts(organization=organization, user=request.user),
        "counts_cache_seconds": settings.INBOX_COUNTS_CACHE_SECONDS,
        "sidebar": selectors_ui.sidebar(organization=organization),
        "statuses": ["open", "pending", "snoozed", "resolved", "all"],
        "priorities": ["urgent", "high", "medium", "low", "none"],
    }


@require_GET
@member_required
def inbox_home(request):
    return render(request, "inbox/inbox.html", {**_inbox_context(request), "conversation": None})


@require_GET
@member_required
def conversation_page(request, pk: int):
    conversation = selectors_ui.inbox_conversation_get(organization=request.organization, conversation_id=pk)
    context = _inbox_context(request)
    context.update(pane_context(request, conversation, sidebar=context["sidebar"]))
    return render(request, "inbox/inbox.html", context)


@require_GET
@member_required
def dashboard_page(request):
    return render(request, "inbox/dashboard.html", {"dash": selectors_ui.dashboard(organization=request.organization)})
