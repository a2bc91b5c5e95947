"""Seed an organization's inbox at scale, fast: set-based INSERT ... SELECT generate_series inside
PostgreSQL (no rows travel through Python), in one transaction per table.

    seed_organization(org, conversations=100_000, messages=1_000_000)

Shape: one contact (with one identity) per conversation, conversations spread over the organization's
channels, statuses (60% open, 15% pending, 5% snoozed, 20% resolved), priorities, assignees, teams
and labels; messages spread over conversations (10 on average), one "big" conversation holding 5,000
of them, texts drawn from a small vocabulary so that search has matches to find.
"""

from __future__ import annotations

import time

WORDS = ["order", "refund", "delivery", "invoice", "password", "shipping", "hello", "thanks", "broken",
         "upgrade", "cancel", "address", "payment", "coupon", "warranty", "return", "login", "urgent",
         "tracking", "bonjour"]
BIG_THREAD = 5000


def seed_organization(org, *, conversations: int, messages: int, big_thread: bool = True) -> dict:
    from django.db import connection, transaction

    from inbox.models import Label
    from organizations.models import Membership, Team
    from providers.models import Channel

    channels = list(Channel.objects.filter(organization=org).order_by("id").values_list("id", flat=True))
    users = list(Membership.objects.filter(organization=org).order_by("id").values_list("user_id", flat=True))
    teams = list(Team.objects.filter(organization=org).order_by("id").values_list("id", flat=True))
    labels = list(Label.objects.filter(organization=org).order_by("id").values_list("id", flat=True))
    words = "ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "]"
    n_ch = len(channels)
    t0 = time.monotonic()
    timings = {}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS seed_ch (rn int, id bigint) ON COMMIT DROP")
        cur.execute("TRUNCATE seed_ch")
        cur.executemany("INSERT INTO seed_ch VALUES (%s, %s)", list(enumerate(channels)))
        t = time.monotonic()
        cur.execute(
            f"""
            INSERT INTO inbox_contact (name, notes, attributes, created_at, updated_at, organization_id)
            SELECT 'Customer ' || g || ' ' || ({words})[1 + g % 20], '', '{{}}',
                   now() - (g || ' seconds')::interval, now(), {org.pk}
            FROM generate_series(1, {conversations}) g
            """,
        )
        cur.execute(
            """CREATE TEMP TABLE seed_contact ON COMMIT DROP AS
               SELECT id, row_number() OVER (ORDER BY id) AS rn FROM inbox_contact WHERE organization_id = %s""",
            [org.pk],
        )
        cur.execute(
            f"""
            INSERT INTO inbox_contactidentity (kind, value, created_at, channel_id, contact_id, organization_id)
            SELECT 'phone', '+1555' || lpad((c.rn + {org.pk} * 10000000)::text, 9, '0'), now(), ch.id, c.id, {org.pk}
            FROM seed_contact c JOIN seed_ch ch ON ch.rn = c.rn % {n_ch}
            """,
        )
        timings["contacts_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        users_arr = "ARRAY[" + ",".join(map(str, users or [0])) + "]::int[]"
        teams_arr = "ARRAY[" + ",".join(map(str, teams or [0])) + "]::bigint[]"
        cur.execute(
            f"""
            INSERT INTO inbox_conversation (thread_key, subject, status, priority, last_activity_at,
                last_inbound_at, last_message_preview, unread_count, created_at, updated_at,
                assignee_id, channel_id, contact_id, organization_id, team_id, snoozed_until)
            SELECT '', '',
                   CASE WHEN c.rn % 20 < 12 THEN 'open' WHEN c.rn % 20 < 15 THEN 'pending'
                        WHEN c.rn % 20 < 16 THEN 'snoozed' ELSE 'resolved' END,
                   (ARRAY['none','low','medium','high','urgent'])[1 + c.rn % 5],
                   now() - (c.rn * 7 || ' seconds')::interval, now() - (c.rn * 7 || ' seconds')::interval,
                   'hello ' || (({words})[1 + c.rn % 20]), (c.rn % 3)::int, now() - interval '30 days', now(),
                   CASE WHEN c.rn % 3 = 0 THEN NULL ELSE ({users_arr})[1 + c.rn % {max(1, len(users))}] END,
                   ch.id, c.id, {org.pk},
                   CASE WHEN c.rn % 4 = 0 THEN ({teams_arr})[1 + c.rn % {max(1, len(teams))}] END,
                   CASE WHEN c.rn % 20 = 15 THEN now() + interval '1 day' END
            FROM seed_contact c JOIN seed_ch ch ON ch.rn = c.rn % {n_ch}
            """
        )
        if not users:
            cur.execute("UPDATE inbox_conversation SET assignee_id = NULL WHERE organization_id = %s", [org.pk])
        if not teams:
            cur.execute("UPDATE inbox_conversation SET team_id = NULL WHERE organization_id = %s", [org.pk])
        cur.execute(
            """CREATE TEMP TABLE seed_conv ON COMMIT DROP AS
               SELECT id, channel_id, last_activity_at, row_number() OVER (ORDER BY id) AS rn
               FROM inbox_conversation WHERE organization_id = %s""",
            [org.pk],
        )
        cur.execute("CREATE INDEX ON seed_conv (rn)")
        if labels:
            labels_arr = "ARRAY[" + ",".join(map(str, labels)) + "]::bigint[]"
            cur.execute(
                f"""INSERT INTO inbox_conversation_labels (conversation_id, label_id)
                    SELECT id, ({labels_arr})[1 + rn % {len(labels)}] FROM seed_conv WHERE rn % 5 = 0"""
            )
        timings["conversations_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        big = BIG_THREAD if big_thread and messages > BIG_THREAD * 4 else 0
        spread = messages - big
        cur.execute(
            f"""
            INSERT INTO inbox_message (direction, private, type, text, content, status, error_code,
                error_reason, attempts, created_at, updated_at, channel_id, conversation_id, organization_id,
                platform_message_id, sent_at)
            SELECT CASE WHEN g % 2 = 0 THEN 'in' ELSE 'out' END, false, 'text',
                   ({words})[1 + g % 20] || ' ' || ({words})[1 + (g / 20) % 20] || ' #' || g, '{{}}',
                   CASE WHEN g % 2 = 0 THEN 'received' ELSE 'delivered' END, '', '', 0,
                   c.last_activity_at - ((g / {conversations}) * 60 || ' seconds')::interval, now(),
                   c.channel_id, c.id, {org.pk}, 'seed-{org.pk}-' || g,
                   CASE WHEN g % 2 = 1 THEN c.last_activity_at END
            FROM generate_series(1, {spread}) g JOIN seed_conv c ON c.rn = 1 + (g % {conversations})
            """,
        )
        if big:
            cur.execute(
                f"""
                INSERT INTO inbox_message (direction, private, type, text, content, status, error_code,
                    error_reason, attempts, created_at, updated_at, channel_id, conversation_id, organization_id,
                    platform_message_id)
                SELECT CASE WHEN g % 2 = 0 THEN 'in' ELSE 'out' END, false, 'text',
                       ({words})[1 + g % 20] || ' big #' || g, '{{}}',
                       CASE WHEN g % 2 = 0 THEN 'received' ELSE 'delivered' END, '', '', 0,
                       c.last_activity_at - ((g * 30) || ' seconds')::interval, now(),
                       c.channel_id, c.id, {org.pk}, 'seed-big-{org.pk}-' || g
                FROM generate_series(1, {big}) g JOIN seed_conv c ON c.rn = 1
                """,
            )
        timings["messages_s"] = round(time.monotonic() - t, 1)
    with connection.cursor() as cur:
        t = time.monotonic()
        for table in ("inbox_contact", "inbox_contactidentity", "inbox_conversation", "inbox_message",
                      "inbox_conversation_labels"):
            cur.execute(f"ANALYZE {table}")
        timings["analyze_s"] = round(time.monotonic() - t, 1)
    return {"conversations": conversations, "messages": messages, "seconds": round(time.monotonic() - t0, 1),
            **timings}
