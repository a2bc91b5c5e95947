"""Scenario 3, the inbox at scale: 100,000 conversations and 1,000,000 messages in one organization
(plus noise in two others), then the agent UI's conversation list, a filtered list, a search and a
conversation page through the real views (bench/inbox_measure.py)."""

from __future__ import annotations

import json
import subprocess
import time

from .. import fixtures, seed
from ..lib import BENCH, LOGS, PY, log


def _org_with_furniture(name: str, agents: int):
    from inbox.models import Label
    from organizations.models import Team

    org = fixtures.organization(name)
    fixtures.agents(org, agents)
    for i in range(3):
        Team.objects.create(organization=org, name=f"Team {i}")
    Label.objects.bulk_create([Label(organization=org, name=n) for n in
                               ("vip", "billing", "bug", "lead", "churn-risk", "spam", "press", "partner")])
    fixtures.whatsapp_channel(org, "http://127.0.0.1:9", f"10910{org.pk:010d}")
    fixtures.telegram_channel(org, "http://127.0.0.1:9", org.pk)
    fixtures.twilio_channel(org, "http://127.0.0.1:9", org.pk)
    return org


def run(ctx) -> dict:
    topo, quick = ctx.topo, ctx.quick
    n_conv, n_msg = (10_000, 100_000) if quick else (100_000, 1_000_000)
    noise_conv, noise_msg = (1_000, 10_000) if quick else (10_000, 100_000)
    from django.db.models import Count

    from inbox.models import Conversation
    from organizations.models import Membership

    t0 = time.monotonic()
    org = _org_with_furniture("Scale", 20)
    seeded = {"main": seed.seed_organization(org, conversations=n_conv, messages=n_msg)}
    for name in ("NoiseA", "NoiseB"):
        noise = _org_with_furniture(name, 5)
        seeded[name] = seed.seed_organization(noise, conversations=noise_conv, messages=noise_msg)
    seed_s = round(time.monotonic() - t0, 1)
    log(f"seeded {n_conv} conversations / {n_msg} messages (+ noise) in {seed_s} s")
    ctx.partial["seed"] = {"seconds": seed_s, **seeded}
    topo.flush_redis()  # the channels' activation tasks (nobody consumes them here)

    user_id = Membership.objects.filter(organization=org).order_by("id").values_list("user_id", flat=True).first()
    by_size = Conversation.objects.filter(organization=org).annotate(n=Count("messages"))
    big = by_size.order_by("-n").values_list("pk", "n").first()
    small = Conversation.objects.filter(organization=org).order_by("-last_activity_at").values_list("pk", flat=True)[7]
    channel_id = org.channels.order_by("id").values_list("pk", flat=True).first() if hasattr(org, "channels") else None
    if channel_id is None:
        from providers.models import Channel

        channel_id = Channel.objects.filter(organization=org).order_by("id").values_list("pk", flat=True).first()
    pages = {
        "list": "/",
        "list_fragment": "/fragments/conversations/",
        "list_page_2": None,
        "filtered": "/fragments/conversations/?view=unassigned&status=open&priority=high",
        "filtered_channel_label": f"/fragments/conversations/?status=all&channel={channel_id}&label=vip",
        "search_word": "/fragments/conversations/?status=all&q=refund",
        "search_contact": "/fragments/conversations/?status=all&q=Customer%204242",
        "search_phone": "/fragments/conversations/?status=all&q=5550000424",
        "conversation_big": f"/conversations/{big[0]}/",
        "conversation_small": f"/conversations/{small}/",
    }
    from inbox.models import Conversation as C

    row = C.objects.filter(organization=org, status="open").order_by("-last_activity_at", "-id")[49]
    pages["list_page_2"] = f"/fragments/conversations/?before={row.last_activity_at.isoformat()}|{row.pk}".replace(
        "+", "%2B")
    job = {"user_id": user_id, "pages": pages, "warmup": 2, "repeat": 8 if quick else 30}
    path = LOGS / "inbox-job.json"
    path.write_text(json.dumps(job))
    env = topo.env(pool=False, CONN_MAX_AGE=600)
    proc = subprocess.run([PY, str(BENCH / "inbox_measure.py"), str(path)], capture_output=True, text=True,
                          env=env, timeout=900)
    print(proc.stderr[-4000:])
    if proc.returncode:
        raise RuntimeError(f"inbox_measure failed: {proc.stderr[-3000:]}")
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    # Steady state: the fewest queries seen per page (the request that refills the view-counts cache,
    # once per INBOX_COUNTS_CACHE_SECONDS, runs one more whatever the page).
    fewest = {name: min(page["queries"]) for name, page in measured.items()}
    constant = fewest["conversation_big"] == fewest["conversation_small"] and \
        fewest["list_fragment"] == fewest["list_page_2"]
    return {
        "scale": {"conversations": n_conv, "messages": n_msg, "noise_orgs": 2,
                  "noise_each": {"conversations": noise_conv, "messages": noise_msg},
                  "big_conversation_messages": big[1]},
        "seed": {"seconds": seed_s, **seeded},
        "pages": measured,
        "constant_query_count": constant,
    }
