import json
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render

from inbox import selectors_ui
from inbox.errors import InboxError
from inbox.models import Conversation


def member_required(view):
    """Login required, and a current organization (set by CurrentOrganizationMiddleware); a user who
    belongs to none gets a page saying so. DoesNotExist from a scoped selector becomes 404."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "organization", None) is None:
            return render(request, "inbox/no_organization.html", status=403)
        try:
            return view(request, *args, **kwargs)
        except ObjectDoesNotExist as exc:
            raise Http404("Not found in this organization.") from exc

    return wrapper


def error_response(exc: Exception) -> JsonResponse:
    """The API's error shape, so the page shows services' refusals exactly as the API reports them."""
    if isinstance(exc, InboxError):
        body = {"code": exc.code, "message": exc.message, "details": json.loads(json.dumps(exc.details, default=str))}
        return JsonResponse({"error": body}, status=exc.status_code)
    if isinstance(exc, ValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        message = "; ".join(f"{m}" for messages in details.values() for m in messages)
        return JsonResponse({"error": {"code": "invalid", "message": message, "details": details}}, status=400)
    raise exc


def pane_context(request, conversation: Conversation, *, sidebar: selectors_ui.Sidebar | None = None) -> dict:
    """Everything the conversation pane shows, in a bounded number of queries. A page that already
    loaded the sidebar passes it in, so it is read once per request."""
    organization = request.organization
    messages, has_more = selectors_ui.thread_page(organization=organization, conversation=conversation)
    return {
        "conversation": conversation,
        "thread": messages,
        "has_more": has_more,
        "sidebar": sidebar if sidebar is not None else selectors_ui.sidebar(organization=organization),
        "canned": selectors_ui.canned_responses(organization=organization),
    }
