"""Sends in batches: one runner per channel sends its pending messages a chunk at a time.

Why: a send through message_send, a Celery task of its own, costs about 21 queries and 34 ms of CPU
(bench/, docs/performance.md). The runner keeps the three steps of CONVENTIONS.md §6 for every message
and does steps 1 and 3 for a whole chunk:

1. One transaction claims up to a chunk of the channel's pending messages: oldest first, at most one
   per conversation (a conversation's messages go out in order), SKIP LOCKED. It reserves each one's
   rate slots (the channel's and the recipient's, shared with every other sender through Redis) and
   its credit when the send is priced, and moves them PENDING -> SENDING.
2. The platform calls run outside any transaction, `provider.send_concurrency` at a time, each at its
   reserved slot.
3. One transaction records the accepted sends: statuses and platform ids, the usage rows in bulk, the
   live events. A failure takes the single send's handling (message_fail, send_retry_record).

A chunk is about half a second of the channel's rate (at most CHUNK_MAX), so a worker killed mid-chunk
leaves at most that many messages `sending`, which the sweeper resolves as for a single send: looked
up where the platform can be asked, else marked unconfirmed; never sent twice.

Coordination, through Redis when REDIS_URL is set: a new message "kicks" its channel, which queues a
runner task unless one is already queued or running (a key per channel, cleared when a run ends: one
task per run, not per message); one runner at a time per channel (a lock with a TTL, renewed every
chunk). A runner stops after SEND_RUN_SECONDS so one busy channel does not hold a worker, and when it
ends it looks once more: messages still ready queue the next run at once, and the earliest
`send_after` (a retry's backoff, a recipient's rate limit) schedules it for then.
"""

import logging
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from billing.errors import InsufficientCredits
from billing.meters import country_for_address
from billing.services import credit_reserve, price_book, usage_record_many
from inbox import live
from inbox.models import Message
from inbox.services.messages import (
    RATE_MARGIN,
    _estimated_units,
    _outbound_for,
    _send_meter,
    channel_sent_stamp,
    message_fail,
    send_retry_record,
    sent_apply,
    sent_usage,
)
from providers import ratelimit
from providers.errors import AmbiguousFailure, PermanentFailure, RateLimited, TransientFailure
from providers.models import Channel
from providers.registry import get_provider

logger = logging.getLogger(__name__)

CHUNK_MAX = 50
CHUNK_SECONDS = 0.5  # a chunk holds about this much of the channel's rate
SLOT_MAX_WAIT = 1.0  # a rate slot further away than this is not reserved: the message waits (send_after)
LATE_AFTER = 0.02  # a send this far behind its slot takes a new channel slot (and pushes the recipient's)
LATE_MAX_WAIT = 10.0
LOCK_TTL_MS = 30_000
KICK_TTL_MS = 15_000


# --- coordination ------------------------------------------------------------------------------------
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class _RedisCoordination:
    def __init__(self) -> None:
        import redis

        self.redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        self._unlock = self.redis.register_script(_UNLOCK)
        self._renew = self.redis.register_script(_RENEW)

    @staticmethod
    def _key(channel_id: int, what: str) -> str:
        return f"alexia:send:{channel_id}:{what}"

    def kick_claim(self, channel_id: int) -> bool:
        return bool(self.redis.set(self._key(channel_id, "kick"), 1, nx=True, px=KICK_TTL_MS))

    def kick_clear(self, channel_id: int) -> None:
        self.redis.delete(self._key(channel_id, "kick"))

    def lock(self, channel_id: int) -> str | None:
        token = uuid.uuid4().hex
        return token if self.redis.set(self._key(channel_id, "run"), token, nx=True, px=LOCK_TTL_MS) else None

    def renew(self, channel_id: int, token: str) -> None:
        self._renew(keys=[self._key(channel_id, "run")], args=[token, LOCK_TTL_MS])

    def unlock(self, channel_id: int, token: str) -> None:
        self._unlock(keys=[self._key(channel_id, "run")], args=[token])


class _LocalCoordination:
    """No Redis (the embedded topology): the web process that kicks and the worker that runs do not
    share memory, so every kick queues a runner (a runner with nothing to claim costs one query); the
    lock holds within this worker process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[int, tuple[str, float]] = {}

    def kick_claim(self, channel_id: int) -> bool:
        return True

    def kick_clear(self, channel_id: int) -> None:
        return None

    def lock(self, channel_id: int) -> str | None:
        with self._guard:
            held = self._held.get(channel_id)
            if held and held[1] > time.monotonic():
                return None
            token = uuid.uuid4().hex
            self._held[channel_id] = (token, time.monotonic() + LOCK_TTL_MS / 1000)
            return token

    def renew(self, channel_id: int, token: str) -> None:
        with self._guard:
            if self._held.get(channel_id, ("",))[0] == token:
                self._held[channel_id] = (token, time.monotonic() + LOCK_TTL_MS / 1000)

    def unlock(self, channel_id: int, token: str) -> None:
        with self._guard:
            if self._held.get(channel_id, ("",))[0] == token:
                del self._held[channel_id]


_coordination = None
_coordination_guard = threading.Lock()


def _coord():
    global _coordination
    with _coordination_guard:
        if _coordination is None:
            _coordination = _RedisCoordination() if settings.REDIS_URL else _LocalCoordination()
        return _coordination


# --- services ----------------------------------------------------------------------------------------
def channel_sends_kick(*, channel_id: int) -> None:
    """Queue the channel's send runner unless one is already queued. Call on commit of a message that
    became pending (created, retried, requeued)."""
    if _coord().kick_claim(channel_id):
        from inbox.tasks import channel_sends_run_task

        channel_sends_run_task.delay(channel_id)


def channel_sends_run(*, channel_id: int) -> dict:
    """Send the channel's ready pending messages, a chunk at a time, for at most SEND_RUN_SECONDS.
    Returns counts by outcome ("busy" when another runner holds the channel: it sends these too)."""
    coordination = _coord()
    token = coordination.lock(channel_id)
    if token is None:
        # The runner at work sends these too: its chunks claim them, or its last look queues a runner.
        # The kick stays set, so the messages created meanwhile queue no task each.
        return {"busy": 1}
    counts: Counter = Counter()
    started = time.monotonic()
    pause = 0.0
    try:
        while True:
            channel = Channel.objects.filter(pk=channel_id).first()
            if channel is None:
                break
            chunk = _Chunk(channel)
            chunk.claim()
            chunk.send()
            counts.update(chunk.record())
            if chunk.rate_limited_for:
                pause = chunk.rate_limited_for  # the platform asked us to slow down: resume after that
                break
            if not chunk.claimed and not chunk.ended and not chunk.channel_wait:
                break
            if time.monotonic() - started > settings.SEND_RUN_SECONDS:
                break
            if chunk.channel_wait:
                time.sleep(min(chunk.channel_wait, SLOT_MAX_WAIT))
            coordination.renew(channel_id, token)
    finally:
        coordination.unlock(channel_id, token)
    # Cleared before the last look: a message committed after the look queues a runner itself, one
    # committed before it is seen by the look.
    coordination.kick_clear(channel_id)
    _next_run(channel_id, pause=pause)
    return dict(counts)


def _next_run(channel_id: int, *, pause: float) -> None:
    from inbox.tasks import channel_sends_run_task

    now = timezone.now()
    ready_q = Q(send_after__isnull=True) | Q(send_after__lte=now)
    left = Message.objects.filter(
        channel_id=channel_id, status=Message.Status.PENDING, direction=Message.Direction.OUT, private=False
    ).aggregate(ready=Count("pk", filter=ready_q), later=Min("send_after", filter=~ready_q))
    if left["ready"] and not pause:
        channel_sends_run_task.delay(channel_id)
    elif left["ready"] or left["later"]:
        wait = pause if left["ready"] else max(pause, (left["later"] - now).total_seconds())
        channel_sends_run_task.apply_async((channel_id,), countdown=max(0.05, wait))


class _Chunk:
    """Steps 1 to 3 for one chunk of a channel's pending messages."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.provider = get_provider(channel)
        self.rate = self.provider.rate_limit()
        self.size = (
            max(1, min(CHUNK_MAX, int(self.rate * RATE_MARGIN * CHUNK_SECONDS))) if self.rate else CHUNK_MAX
        )
        self.claimed: list[tuple[Message, object, float]] = []  # (message, outbound, monotonic slot)
        self.results: list[tuple[Message, object, Exception | None]] = []
        self.channel_wait = 0.0  # the channel's bucket is full for this long
        self.book = None  # the organization's prices, read at the claim, used again at the record
        self.rate_limited_for = 0.0
        self.ended: Counter = Counter()

    # Step 1 ------------------------------------------------------------------------------------------
    def claim(self) -> None:
        channel = self.channel
        now = timezone.now()
        with transaction.atomic():
            candidates = list(
                Message.objects.select_for_update(skip_locked=True)
                .filter(
                    channel_id=channel.pk,
                    status=Message.Status.PENDING,
                    direction=Message.Direction.OUT,
                    private=False,
                )
                .filter(Q(send_after__isnull=True) | Q(send_after__lte=now))
                .prefetch_related("attachments")
                .order_by("id")[: self.size * 2]
            )
            conversations: set[int] = set()
            ready: list[tuple[Message, float]] = []
            deferred: list[Message] = []
            for message in candidates:
                if len(ready) >= self.size:
                    break
                if message.conversation_id in conversations:
                    continue  # its conversation's earlier message goes first
                conversations.add(message.conversation_id)
                message.channel = channel
                if not channel.is_active:
                    self._end(
                        message,
                        "channel_inactive",
                        f"The channel is {channel.status}; activate it and retry.",
                    )
                    continue
                slot = self._reserve(message)
                if slot is None:
                    if self.channel_wait:
                        break
                    deferred.append(message)
                    continue
                ready.append((message, slot))
            for message, slot in ready:
                self.book = self.book or price_book(organization_id=message.organization_id)
                if not self._credit(message, self.book, at=now):
                    continue
                message.status = Message.Status.SENDING
                message.sending_started_at = now
                message.attempts += 1
                message.send_after = None
                self.claimed.append((message, None, slot))
            if self.claimed:
                Message.objects.filter(pk__in=[m.pk for m, _, _ in self.claimed]).update(
                    status=Message.Status.SENDING,
                    sending_started_at=now,
                    attempts=F("attempts") + 1,
                    send_after=None,
                    updated_at=now,
                )
            if deferred:
                Message.objects.bulk_update(deferred, ["send_after"])
            self.claimed = [(m, _outbound_for(m), slot) for m, _, slot in self.claimed]

    def _reserve(
        self, message: Message, *, max_wait: float = SLOT_MAX_WAIT, recipient: bool = True
    ) -> float | None:
        """The moment (monotonic) this message may go out, its slots reserved; None when the channel's
        bucket is full (channel_wait set) or the recipient's slot is too far (send_after set).

        The channel's slot first, then the recipient's at that slot or later: each bucket records the
        send when it will happen (a recipient slot taken for an earlier moment than the send let a
        Telegram chat get two messages within one second)."""
        now = time.monotonic()
        if not self.rate:
            return now
        slot = ratelimit.acquire(f"ch:{self.channel.pk}", rate=self.rate * RATE_MARGIN, max_wait=max_wait)
        if not slot.granted:
            self.channel_wait = slot.wait
            return None
        wait = slot.wait
        to = message.content.get("to", "") if recipient else ""
        per_recipient = self.provider.per_recipient_rate_per_second
        if per_recipient and to:
            slot = ratelimit.acquire(
                f"ch:{self.channel.pk}:to:{to}",
                rate=per_recipient * RATE_MARGIN,
                burst=1,
                max_wait=max_wait + wait,
                not_before=wait,
            )
            if not slot.granted:
                message.send_after = timezone.now() + timedelta(seconds=slot.wait)
                return None
            wait = slot.wait
        return now + wait

    def _credit(self, message: Message, book, *, at) -> bool:
        """Hold the price of a priced send (strict, as message_send does); a free one holds nothing."""
        country = country_for_address(message.content.get("to", ""))
        meter = _send_meter(message)
        units = _estimated_units(message)
        if (
            book.cost(meter=meter, quantity=units, at=at, channel_kind=self.channel.kind, country=country)
            <= 0
        ):
            return True
        try:
            credit_reserve(
                organization_id=message.organization_id,
                meter=meter,
                quantity=units,
                idempotency_key=f"msg:{message.pk}",
                channel_kind=self.channel.kind,
                country=country,
            )
        except InsufficientCredits as exc:
            self._end(message, exc.code, exc.message)
            return False
        return True

    def _end(self, message: Message, code: str, reason: str) -> None:
        """Fail a claimed candidate before any platform call (inside the claim's transaction)."""
        message.status = Message.Status.FAILED
        message.error_code = code
        message.error_reason = reason
        message.failed_at = timezone.now()
        message.save()
        live.message_changed(message, created=False)
        self.ended["failed"] += 1

    # Step 2 ------------------------------------------------------------------------------------------
    def _call(self, item) -> tuple[Message, object, Exception | None]:
        message, outbound, slot = item
        delay = slot - time.monotonic()
        if delay < -LATE_AFTER and self.rate:
            # Its thread came to it late (the others' calls were slow, or the CPU busy): sent now, it
            # would crowd the second that later slots fill. It takes a new channel slot instead, and
            # moves its recipient's next slot a full interval behind the moment it goes out.
            slot = self._reserve(message, max_wait=LATE_MAX_WAIT, recipient=False)
            delay = (slot - time.monotonic()) if slot is not None else LATE_MAX_WAIT
            per_recipient = self.provider.per_recipient_rate_per_second
            to = message.content.get("to", "")
            if per_recipient and to:
                ratelimit.push_back(
                    f"ch:{self.channel.pk}:to:{to}", rate=per_recipient * RATE_MARGIN, after=max(0.0, delay)
                )
        if delay > 0:
            time.sleep(delay)
        try:
            return message, self.provider.send(outbound), None
        except Exception as exc:  # noqa: BLE001 - sorted in record(); one send must not lose the chunk
            return message, None, exc

    def send(self) -> None:
        if not self.claimed:
            return
        workers = max(1, min(self.provider.send_concurrency, len(self.claimed)))
        if workers == 1:
            self.results = [self._call(item) for item in self.claimed]
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
            self.results = list(pool.map(self._call, self.claimed))

    # Step 3 ------------------------------------------------------------------------------------------
    def record(self) -> Counter:
        counts = Counter(self.ended)
        accepted = {m.pk: (m, result) for m, result, exc in self.results if exc is None}
        if accepted:
            counts.update(self._record_accepted(accepted))
        for message, _, exc in self.results:
            if exc is not None:
                counts[self._record_failure(message, exc)] += 1
        return counts

    def _record_accepted(self, accepted: dict) -> Counter:
        try:
            self._record_sent(accepted)
            return Counter(sent=len(accepted))
        except IntegrityError:
            pass
        # A platform id already stored for another message of the channel (the platform reused one):
        # the others are recorded one by one; that one stays `sending` for the sweeper, as a single
        # send's would.
        counts: Counter = Counter()
        for pk, item in accepted.items():
            try:
                self._record_sent({pk: item})
                counts["sent"] += 1
            except IntegrityError:
                logger.error(
                    "message %s: platform id %r is already another message's; left for the sweeper",
                    pk,
                    item[1].platform_message_id,
                )
                counts["error"] += 1
        return counts

    def _record_sent(self, accepted: dict) -> None:
        at = timezone.now()
        with transaction.atomic():
            locked = list(Message.objects.select_for_update().filter(pk__in=list(accepted)).order_by("pk"))
            for message in locked:
                claimed, result = accepted[message.pk]
                message.channel = self.channel
                # The payload lists the attachments: those read at the claim.
                message._prefetched_objects_cache = getattr(claimed, "_prefetched_objects_cache", {})
                sent_apply(
                    message, platform_message_id=result.platform_message_id, segments=result.segments, at=at
                )
                message.updated_at = at
            _sent_rows_update(locked)
            usage_record_many(
                organization_id=self.channel.organization_id,
                events=[sent_usage(message, at=at) for message in locked],
                book=self.book,
            )
            channel_sent_stamp(self.channel.pk, at=at)
            for message in locked:
                live.message_changed(message, created=False)

    def _record_failure(self, message: Message, exc: Exception) -> str:
        if isinstance(exc, PermanentFailure):
            message_fail(message_id=message.pk, code=exc.code, reason=exc.reason)
            if exc.channel_error:
                Channel.objects.filter(pk=self.channel.pk).update(
                    status=Channel.Status.ERROR, last_error=exc.reason[:2000], last_error_at=timezone.now()
                )
            return "failed"
        if isinstance(exc, AmbiguousFailure):
            Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
                error_reason=f"Waiting for the platform to confirm ({exc.reason})."
            )
            return "unconfirmed"
        if isinstance(exc, TransientFailure):
            outcome, countdown = send_retry_record(message_id=message.pk, attempts=message.attempts, exc=exc)
            if isinstance(exc, RateLimited):
                self.rate_limited_for = max(self.rate_limited_for, countdown)
            return outcome.status if outcome else "retrying"
        # Not a platform answer (a bug, a misconfiguration): left `sending`, as when a single send's task
        # raises, for the sweeper to resolve without sending twice.
        logger.error("send of message %s raised", message.pk, exc_info=exc)
        return "error"


SENT_FIELDS = (
    "status",
    "error_code",
    "error_reason",
    "failed_at",
    "platform_message_id",
    "sent_at",
    "segments",
)


def _sent_rows_update(messages: list[Message]) -> None:
    """Write the sent fields of a chunk's messages in one UPDATE ... FROM (VALUES ...) on PostgreSQL.
    Django's bulk_update builds a CASE expression per row and field: 70 % of the record step's CPU for
    a chunk of 50 (measured)."""
    if not messages:
        return
    if connection.vendor != "postgresql":
        Message.objects.bulk_update(messages, [*SENT_FIELDS, "updated_at"])
        return
    quote = connection.ops.quote_name
    table = quote(Message._meta.db_table)
    row = "(%s::bigint, %s, %s, %s, %s::timestamptz, %s, %s::timestamptz, %s::integer, %s::timestamptz)"
    columns = ", ".join(quote(name) for name in ("id", *SENT_FIELDS, "updated_at"))
    assignments = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in (*SENT_FIELDS, "updated_at"))
    params: list = []
    for message in messages:
        params.extend([message.pk, *(getattr(message, name) for name in SENT_FIELDS), message.updated_at])
    sql = (
        f"UPDATE {table} AS m SET {assignments} "
        f"FROM (VALUES {', '.join([row] * len(messages))}) AS v({columns}) WHERE m.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
