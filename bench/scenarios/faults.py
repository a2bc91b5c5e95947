"""Scenario 5, faults under load: inbound webhooks and outbound sends at once while Redis restarts
(`redis-cli shutdown nosave`: every queued task is lost), a worker is SIGKILLed (and another started),
and the fake platforms answer 429 and 500 for a while. Then the sweepers (celery beat) must recover:
messages lost 0, duplicates 0.

Inbound counts a webhook as sent once the load generator got 200 for it (like a platform, it retries
failures up to 10 times, a second apart); lost = sent but never stored as a message. Outbound: lost =
neither delivered (2xx at the fake) nor visible to the agent as failed; duplicate = delivered twice.
Runs ~4 minutes whatever the load: the sweepers look for work older than one and two minutes.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter

from .. import fixtures
from ..lib import BENCH, LOGS, PY, log
from . import outbound
from .inbound import PHONE


def run(ctx) -> dict:
    topo, quick = ctx.topo, ctx.quick
    from django.db.models import Count

    from inbox.models import Message

    rate, duration = (30, 20) if quick else (50, 30)
    n_out = 500 if quick else 2000
    wa = topo.start_fake("whatsapp", phone_number_ids=[PHONE, *outbound.WA_PHONES[:2]],
                         access_token=fixtures.WA_TOKEN)
    tg = topo.start_fake("telegram")
    org = fixtures.organization("Faults")
    inbound_ch = fixtures.whatsapp_channel(org, wa, PHONE)
    out_channels = [fixtures.whatsapp_channel(org, wa, p) for p in outbound.WA_PHONES[:2]]
    out_channels.append(fixtures.telegram_channel(org, tg, 1))
    from providers.registry import get_provider

    limits, per_recipient, items = {}, {}, []
    for ch in out_channels:
        provider = get_provider(ch)
        key = ch.config.get("phone_number_id") or ch.credentials.get("bot_token")
        limits[key] = provider.rate_limit()
        if provider.per_recipient_rate_per_second:
            per_recipient[key] = provider.per_recipient_rate_per_second
    share = {out_channels[0].pk: 0.4, out_channels[1].pk: 0.4, out_channels[2].pk: 0.2}
    seq = 0
    for ch in out_channels:
        k = int(n_out * share[ch.pk])
        convs = fixtures.conversations(org, ch, min(k, 300))
        for i in range(k):
            items.append((convs[i % len(convs)], f"fault-{seq}"))
            seq += 1
    texts = {t for _, t in items}

    workers_spec = {"workers": 2, "pool": "threads", "concurrency": 8}
    for _ in range(workers_spec["workers"]):
        topo.start_worker(pool=workers_spec["pool"], concurrency=workers_spec["concurrency"])
    topo.start_beat()
    port = topo.start_web("daphne")
    cfg = {"port": port, "path": f"/webhooks/whatsapp_cloud/{inbound_ch.webhook_token}/",
           "secret": fixtures.WA_SECRET, "phone_number_id": PHONE, "run_id": f"f{int(time.time()) % 100000}",
           "steps": [{"rate": rate, "duration": duration}], "connections": 32, "retries": 10, "ws": None,
           "stop_when_saturated": False, "timeout": 10}
    cfg_path = LOGS / "faults-loadgen.json"
    cfg_path.write_text(json.dumps(cfg))
    load = subprocess.Popen([PY, str(BENCH / "loadgen.py"), str(cfg_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    creator: dict = {}
    t_create = threading.Thread(target=lambda: creator.update(outbound.create_messages(topo, items, processes=2)))
    t0 = time.monotonic()
    t_create.start()
    events = []

    def at(second: float) -> None:
        delay = t0 + second - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    span = duration
    at(span * 0.15)
    topo.fake_call("whatsapp", "fail", {"count": 150, "status": 429, "path_contains": "/messages",
                                        "headers": {"Retry-After": "2"},
                                        "body": {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException",
                                                           "code": 130429, "fbtrace_id": "Abench"}}})
    topo.fake_call("telegram", "fail", {"count": 100, "status": 500, "path_contains": "sendMessage",
                                        "body": {"ok": False, "error_code": 500, "description": "Internal Server Error"}})
    events.append({"t": round(time.monotonic() - t0, 1), "event": "fakes answer 429 (WhatsApp x150) and 500 (Telegram x100)"})
    at(span * 0.35)
    down = topo.restart_redis()
    events.append({"t": round(time.monotonic() - t0, 1), "event": f"redis restarted (nosave), {down:.1f} s down"})
    log(events[-1]["event"])
    at(span * 0.6)
    victim = topo.workers.pop(0)
    victim.kill()
    events.append({"t": round(time.monotonic() - t0, 1), "event": "worker SIGKILLed"})
    topo.start_worker(pool=workers_spec["pool"], concurrency=workers_spec["concurrency"])
    events.append({"t": round(time.monotonic() - t0, 1), "event": "new worker ready"})
    log("worker killed and replaced")
    out, err = load.communicate(timeout=duration + 200)
    t_create.join(timeout=600)
    loadres = json.loads(out.strip().splitlines()[-1])
    step = loadres["steps"][0]
    lo, hi = step["seq_range"]
    failed = set(loadres["failed_seqs"])
    sent = {f"bench-{s}" for s in range(lo, hi + 1) if s not in failed}

    # Recovery: bounded wait for the sweepers (webhooks `received` > 1 min, sends pending > 2 min).
    deadline = time.monotonic() + (240 if quick else 300)
    while time.monotonic() < deadline:
        stored_in = Message.objects.filter(direction="in", text__in=list(sent)).values("text").distinct().count()
        open_out = Message.objects.filter(direction="out", text__in=list(texts), status__in=["pending", "sending"]).count()
        if stored_in >= len(sent) and open_out == 0:
            break
        time.sleep(3)
    recovered_s = round(time.monotonic() - t0, 1)
    stored = set(Message.objects.filter(direction="in", text__in=list(sent)).values_list("text", flat=True))
    dup_in = Message.objects.filter(direction="in", text__startswith="bench-").values("text").annotate(
        n=Count("id")).filter(n__gt=1).count()
    check = outbound.verify(outbound.sends(topo), texts, limits, per_recipient)
    statuses = dict(Counter(Message.objects.filter(direction="out", text__in=list(texts)).values_list("status", flat=True)))
    result = {
        "timeline": events,
        "inbound": {"rate": rate, "duration_s": duration, "sent_accepted": len(sent), "never_accepted": len(failed),
                    "statuses_seen": step["statuses"], "stored": len(stored), "lost": len(sent - stored),
                    "lost_examples": sorted(sent - stored)[:5], "duplicates": dup_in},
        "outbound": {"messages": len(texts), "created": creator, "statuses": statuses, **check},
        "recovered_after_s": recovered_s,
        "lost_total": len(sent - stored) + check["lost"],
        "duplicates_total": dup_in + check["duplicates"],
        "workers": workers_spec,
    }
    log(f"faults: inbound lost {result['inbound']['lost']} dup {dup_in}; outbound lost {check['lost']} "
        f"dup {check['duplicates']} failed-visible {check['failed_visible']}; recovered after {recovered_s} s")
    return result
