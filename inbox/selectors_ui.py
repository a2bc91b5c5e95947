"""Reads for the agent inbox pages: the filtered list with search, the thread by pages, the contact
panel, view counts, presence and the dashboard. Every selector takes the organization.

Search: on PostgreSQL, full-text search (to_tsvector/to_tsquery with the "simple" configuration, so
names and words of any language match as typed, each word as a prefix) over message text and contact
names, plus a substring match on identity values (phone numbers, e-mail addresses, chat ids) which
full-text search would split into tokens. Elsewhere (SQLite) a substring match on all three.
The GIN indexes of inbox/migrations/0002_fulltext_indexes.py are written exactly like the expressions
below, so PostgreSQL uses them.
"""

import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from organizations.models import Membership, Organization, Team
from providers.models import Channel

from . import selectors
from .models import (
    Attachment,
    CannedResponse,
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    Label,
    Message,
)

PAGE_SIZE = 50
THREAD_PAGE = 40
STATUS_ALL = "all"
VIEW_MINE, VIEW_UNASSIGNED, VIEW_ALL = "mine", "unassigned", "all"
_WORD = re.compile(r"\w+", re.UNICODE)


def _prefix_tsquery(q: str) -> str:
    """'ada love' -> 'ada:* & love:*'. Only word characters reach to_tsquery, so input cannot break it."""
    return " & ".join(f"{word}:*" for word in _WORD.findall(q.lower())[:8])


def _search(conversations: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    q = q.strip()
    if not q:
        return conversations
    identity_match = ContactIdentity.objects.filter(contact_id=OuterRef("contact_id"), value__icontains=q)
    if connection.vendor == "postgresql" and (tsquery := _prefix_tsquery(q)):
        from django.contrib.postgres.search import SearchQuery, SearchVector

        query = SearchQuery(tsquery, config="simple", search_type="raw")
        message_match = (
            Message.objects.annotate(search=SearchVector("text", config="simple"))
            .filter(conversation_id=OuterRef("pk"), search=query)
        )
        contact_match = (
            Contact.objects.annotate(search=SearchVector("name", config="simple"))
            .filter(pk=OuterRef("contact_id"), search=query)
        )
        return conversations.filter(Exists(contact_match) | Exists(identity_match) | Exists(message_match))
    message_match = Message.objects.filter(conversation_id=OuterRef("pk"), text__icontains=q)
    return conversations.filter(Q(contact__name__icontains=q) | Exists(identity_match) | Exists(message_match))


def _contact_identities() -> Prefetch:
    return Prefetch("contact__identities", queryset=ContactIdentity.objects.order_by("id"))


@dataclass(frozen=True)
class ListFilters:
    view: str = VIEW_ALL  # mine, unassigned, all, team-<id>
    status: str = Conversation.Status.OPEN
    channel_id: int | None = None
    label: str = ""
    priority: str = ""
    q: str = ""

    @property
    def team_id(self) -> int | None:
        if self.view.startswith("team-") and self.view[5:].isdigit():
            return int(self.view[5:])
        return None

    def as_query(self) -> dict:
        query = {"view": self.view, "status": self.status, "channel": self.channel_id or "",
                 "label": self.label, "priority": self.priority, "q": self.q}
        return {k: v for k, v in query.items() if v not in ("", None)}


def list_filters_from(params) -> ListFilters:
    """Read the list's filters from query parameters; unknown values fall back to the defaults."""
    view = params.get("view", VIEW_ALL)
    if view not in (VIEW_MINE, VIEW_UNASSIGNED, VIEW_ALL) and not re.fullmatch(r"team-\d+", view or ""):
        view = VIEW_ALL
    status = params.get("status", Conversation.Status.OPEN)
    if status not in (*Conversation.Status.values, STATUS_ALL):
        status = Conversation.Status.OPEN
    channel = params.get("channel", "")
    priority = params.get("priority", "")
    return ListFilters(
        view=view,
        status=status,
        channel_id=int(channel) if str(channel).isdigit() else None,
        label=(params.get("label") or "")[:60],
        priority=priority if priority in Conversation.Priority.values else "",
        q=(params.get("q") or "")[:200],
    )


def inbox_conversation_list(
    *, organization: Organization, user, filters: ListFilters, before: tuple[datetime, int] | None = None,
    limit: int = PAGE_SIZE,
) -> list[Conversation]:
    """One page of the list, newest activity first, in a constant number of queries (the rows with
    channel, contact, assignee and team joined, and one query for their labels).

    before: (last_activity_at, id) of the last row of the previous page.
    """
    assignee = {VIEW_MINE: selectors.ASSIGNEE_ME, VIEW_UNASSIGNED: selectors.ASSIGNEE_NONE}.get(filters.view)
    conversations = selectors.conversation_list(
        organization=organization,
        status=None if filters.status == STATUS_ALL else filters.status,
        channel_id=filters.channel_id,
        assignee=assignee,
        user=user,
        label=filters.label or None,
    ).select_related("assignee", "team").prefetch_related(_contact_identities())
    if filters.team_id is not None:
        conversations = conversations.filter(team_id=filters.team_id)
    if filters.priority:
        conversations = conversations.filter(priority=filters.priority)
    conversations = _search(conversations, filters.q)
    if before is not None:
        at, pk = before
        conversations = conversations.filter(Q(last_activity_at__lt=at) | Q(last_activity_at=at, id__lt=pk))
    return list(conversations[:limit])


def inbox_conversations_by_ids(*, organization: Organization, ids: list[int]) -> list[Conversation]:
    return list(
        selectors.conversation_list(organization=organization)
        .select_related("assignee", "team")
        .prefetch_related(_contact_identities())
        .filter(pk__in=ids)
    )


def _counts_cache_key(organization_id: int) -> str:
    return f"inbox:view-counts:v1:{organization_id}"


def _open_tallies(organization: Organization) -> list[tuple[int | None, int | None, int]]:
    """(team_id, assignee_id, n) of the organization's open conversations: one scan, a few dozen rows
    (teams x assignees), shared by every member of the organization.

    Cached for settings.INBOX_COUNTS_CACHE_SECONDS: at 60,000 open conversations the scan costs ~20 ms
    and every list page, list refresh and conversation page needs it. The cache key is the organization
    (never the user), so one organization's counts cannot reach another's page. An agent's action drops
    the entry (view_counts_forget, inbox/views/actions.py) before the other pages refresh on its live
    event; any other change shows once the entry expires, and the page re-fetches its list that long
    after the last conversation event (static/js/inbox.js), so the counts catch up without a reload."""
    seconds = settings.INBOX_COUNTS_CACHE_SECONDS
    key = _counts_cache_key(organization.pk)
    if seconds > 0:
        cached = cache.get(key)
        if cached is not None:
            return cached
    tallies = list(
        Conversation.objects.filter(organization=organization, status=Conversation.Status.OPEN)
        .values_list("team_id", "assignee_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    if seconds > 0:
        cache.set(key, tallies, seconds)
    return tallies


def view_counts_forget(*, organization_id: int) -> None:
    """Drop the organization's cached counts, so the next page or list refresh counts afresh."""
    cache.delete(_counts_cache_key(organization_id))


def view_counts(*, organization: Organization, user) -> dict:
    """Open conversations per view: {"mine", "unassigned", "all", "teams": {team_id: n}}, one query
    (none while the organization's tallies are cached)."""
    mine = unassigned = total = 0
    teams: dict[int, int] = {}
    for team_id, assignee_id, n in _open_tallies(organization):
        total += n
        if assignee_id is None:
            unassigned += n
        elif assignee_id == user.pk:
            mine += n
        if team_id is not None:
            teams[team_id] = teams.get(team_id, 0) + n
    return {"mine": mine, "unassigned": unassigned, "all": total, "teams": dict(sorted(teams.items()))}


@dataclass(frozen=True)
class Sidebar:
    teams: list[Team]
    channels: list[Channel]
    labels: list[Label]
    members: list[Membership]


def sidebar(*, organization: Organization) -> Sidebar:
    """What the filters and action menus offer: teams, channels, labels, members (four queries)."""
    return Sidebar(
        teams=list(Team.objects.filter(organization=organization).order_by("name")),
        channels=list(Channel.objects.filter(organization=organization).order_by("name")),
        labels=list(Label.objects.filter(organization=organization).order_by("name")),
        members=list(
            Membership.objects.filter(organization=organization, user__is_active=True)
            .select_related("user")
            .order_by("user__first_name", "user__username")
        ),
    )


def canned_responses(*, organization: Organization) -> list[dict]:
    return list(CannedResponse.objects.filter(organization=organization).order_by("shortcut").values("shortcut", "text"))


# --- the conversation pane ----------------------------------------------------------------------------
def inbox_conversation_get(*, organization: Organization, conversation_id: int) -> Conversation:
    return (
        selectors.conversation_list(organization=organization)
        .select_related("assignee", "team")
        .prefetch_related(_contact_identities())
        .get(pk=conversation_id)
    )


def _thread_queryset(organization: Organization, conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(organization=organization, conversation=conversation)
        .select_related("sender", "channel")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))
    )


def thread_page(
    *, organization: Organization, conversation: Conversation, before_id: int | None = None, limit: int = THREAD_PAGE
) -> tuple[list[Message], bool]:
    """The newest `limit` messages (or those before message `before_id`), oldest first, and whether
    older ones exist. Three queries whatever the page size."""
    messages = _thread_queryset(organization, conversation)
    if before_id is not None:
        anchor = Message.objects.filter(organization=organization, conversation=conversation, pk=before_id).first()
        if anchor is None:
            return [], False
        messages = messages.filter(
            Q(created_at__lt=anchor.created_at) | Q(created_at=anchor.created_at, id__lt=anchor.pk)
        )
    page = list(messages.order_by("-created_at", "-id")[: limit + 1])
    has_more = len(page) > limit
    return list(reversed(page[:limit])), has_more


def thread_message_get(*, organization: Organization, message_id: int) -> Message:
    return (
        Message.objects.filter(organization=organization)
        .select_related("sender", "channel", "conversation")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))
        .get(pk=message_id)
    )


def attachment_get(*, organization: Organization, attachment_id: int) -> Attachment:
    return Attachment.objects.get(organization=organization, pk=attachment_id, status=Attachment.Status.STORED)


# --- the contact panel --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContactPanel:
    contact: Contact
    identities: list[ContactIdentity]
    conversations: list[Conversation]
    merges: list[ContactMerge]


def contact_panel(*, organization: Organization, contact_id: int) -> ContactPanel:
    """A contact with its identities on every channel, all its conversations on all channels, and
    the merges into it that can still be undone (four queries)."""
    contact = Contact.objects.get(organization=organization, pk=contact_id)
    identities = list(
        ContactIdentity.objects.filter(organization=organization, contact=contact).select_related("channel").order_by("id")
    )
    conversations = list(
        Conversation.objects.filter(organization=organization, contact=contact)
        .select_related("channel")
        .order_by("-last_activity_at", "-id")[:50]
    )
    merges = list(
        ContactMerge.objects.filter(organization=organization, primary=contact, undone_at__isnull=True)
        .select_related("merged")
        .order_by("-created_at")
    )
    return ContactPanel(contact=contact, identities=identities, conversations=conversations, merges=merges)


def merge_candidates(*, organization: Organization, contact: Contact, q: str, limit: int = 8) -> list[Contact]:
    if not q.strip():
        return []
    return list(selectors.contact_list(organization=organization, q=q).exclude(pk=contact.pk)[:limit])


# --- the dashboard ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dashboard:
    open: int
    unassigned: int
    pending: int
    snoozed: int
    waiting: list[Conversation]
    volume: list[dict]
    median_first_response: timedelta | None
    first_response_sample: int
    today_start: datetime


def _waiting_conversations(organization: Organization, limit: int) -> list[Conversation]:
    """Open conversations whose last public message is the customer's, longest wait first.

    `waiting_since` is the customer's first message after our last public reply.
    """
    public = Message.objects.filter(conversation_id=OuterRef("pk"), private=False)
    last_direction = public.order_by("-created_at", "-id").values("direction")[:1]
    last_out = (
        public.filter(direction=Message.Direction.OUT).order_by().values("conversation_id")
        .annotate(at=Max("created_at")).values("at")
    )
    first_unanswered = (
        public.filter(direction=Message.Direction.IN)
        .filter(Q(created_at__gt=Subquery(last_out)) | ~Exists(public.filter(direction=Message.Direction.OUT)))
        .order_by().values("conversation_id").annotate(at=Min("created_at")).values("at")
    )
    return list(
        Conversation.objects.filter(organization=organization, status=Conversation.Status.OPEN)
        .annotate(last_direction=Subquery(last_direction), waiting_since=Subquery(first_unanswered))
        .filter(last_direction=Message.Direction.IN, waiting_since__isnull=False)
        .select_related("contact", "channel", "assignee")
        .order_by("waiting_since", "id")[:limit]
    )


def dashboard(*, organization: Organization, now: datetime | None = None, waiting_limit: int = 8) -> Dashboard:
    """Live counts, today's volume per channel (UTC day), and the median first-response time of
    conversations that started in the last 7 days (the agent's first public reply minus the
    customer's first message). A bounded number of queries."""
    now = now or timezone.now()
    today_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = Conversation.objects.filter(organization=organization).aggregate(
        open=Count("id", filter=Q(status=Conversation.Status.OPEN)),
        unassigned=Count("id", filter=Q(status=Conversation.Status.OPEN, assignee__isnull=True)),
        pending=Count("id", filter=Q(status=Conversation.Status.PENDING)),
        snoozed=Count("id", filter=Q(status=Conversation.Status.SNOOZED)),
    )
    volume = list(
        Message.objects.filter(organization=organization, created_at__gte=today_start)
        .exclude(type=Message.Type.SYSTEM)
        .values("channel_id", "channel__name", "channel__kind")
        .annotate(
            inbound=Count("id", filter=Q(direction=Message.Direction.IN)),
            outbound=Count("id", filter=Q(direction=Message.Direction.OUT, private=False)),
            notes=Count("id", filter=Q(private=True)),
        )
        .order_by("channel__name")
    )
    for row in volume:
        row["total"] = row["inbound"] + row["outbound"]
    first_inbound = (
        Message.objects.filter(conversation_id=OuterRef("pk"), direction=Message.Direction.IN)
        .order_by("created_at").values("created_at")[:1]
    )
    pairs = (
        Conversation.objects.filter(
            organization=organization, created_at__gte=now - timedelta(days=7), first_response_at__isnull=False
        )
        .annotate(first_in=Subquery(first_inbound))
        .filter(first_in__isnull=False, first_response_at__gte=F("first_in"))
        .values_list("first_in", "first_response_at")[:5000]
    )
    durations = [(responded - asked).total_seconds() for asked, responded in pairs]
    median = timedelta(seconds=statistics.median(durations)) if durations else None
    return Dashboard(
        open=counts["open"],
        unassigned=counts["unassigned"],
        pending=counts["pending"],
        snoozed=counts["snoozed"],
        waiting=_waiting_conversations(organization, waiting_limit),
        volume=volume,
        median_first_response=median,
        first_response_sample=len(durations),
        today_start=today_start,
    )


# --- presence -----------------------------------------------------------------------------------------
def member_names(*, organization: Organization, user_ids: list[int]) -> dict[int, str]:
    memberships = Membership.objects.filter(organization=organization, user_id__in=user_ids).select_related("user")
    return {m.user_id: (m.user.get_full_name() or m.user.get_username()) for m in memberships}


def member_ids(*, organization: Organization) -> list[int]:
    return list(Membership.objects.filter(organization=organization).values_list("user_id", flat=True))
