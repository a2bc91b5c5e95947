"""Scenario 2, outbound: 10,000 messages over WhatsApp, Telegram and Twilio channels to the fakes.

Messages are created through message_create_outbound (three processes, as API calls would), then the
real Celery workers send them through the three-step send and the shared Redis rate limits. The fakes'
recorded requests are the ground truth: every message delivered exactly once, and no channel's (or
Telegram recipient's) send rate above its limit in any sliding one-second window.

Then the same number of Telegram messages, once through our pipeline (a Telegram channel whose rate
limit is lifted, one chat per message so the per-chat limit never binds) and once with Apprise
(tgram://), to the same fake: the ratio compares the two senders, not the platforms' limits.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter, defaultdict
from urllib.parse import parse_qs

from .. import fixtures
from ..lib import BENCH, LOGS, PY, CpuAccount, PgWaits, log

WA_PHONES = [f"10900000000010{i}" for i in range(4)]


def create_messages(topo, items: list[tuple[int, str]], processes: int = 3, max_seconds: float = 3600) -> dict:
    items = list(items)
    random.Random(7).shuffle(items)  # every channel gets its share even when the time bound cuts creation
    chunks = [items[i::processes] for i in range(processes)]
    procs = []
    t0 = time.monotonic()
    for n, chunk in enumerate(chunks):
        path = LOGS / f"outbound-create-{n}.json"
        path.write_text(json.dumps({"items": chunk, "max_seconds": max_seconds}))
        procs.append(subprocess.Popen([PY, str(BENCH / "outbound_create.py"), str(path)],
                                      env=topo.env(pool=False), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    created = 0
    for p in procs:
        out, err = p.communicate(timeout=max_seconds + 300)
        if p.returncode:
            raise RuntimeError(f"outbound_create failed: {err.decode()[-3000:]}")
        created += json.loads(out.decode().strip().splitlines()[-1])["created"]
    seconds = time.monotonic() - t0
    return {"requested": len(items), "created": created, "seconds": round(seconds, 1),
            "per_s": round(created / seconds, 1), "processes": processes, "max_seconds": max_seconds}


def wait_final(texts: set[str], timeout: float) -> dict:
    """Wait (bounded) until no message of this run is pending/sending; returns status counts."""
    from inbox.models import Message

    deadline = time.monotonic() + timeout
    qs = Message.objects.filter(direction="out", text__in=texts) if len(texts) < 2000 else \
        Message.objects.filter(direction="out", private=False)
    while True:
        open_ = qs.filter(status__in=["pending", "sending"]).count()
        if open_ == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    counts = dict(Counter(qs.values_list("status", flat=True)))
    codes = dict(Counter(qs.filter(status="failed").values_list("error_code", flat=True)))
    return {"statuses": counts, "failed_codes": codes, "still_open": open_}


def _params(req: dict) -> dict:
    body = req.get("body") or ""
    ctype = (req.get("headers") or {}).get("Content-Type", "")
    if ctype.startswith("application/json"):
        try:
            return json.loads(body)
        except ValueError:
            return {}
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def sends(topo) -> list[dict]:
    """Every send request the fakes recorded: {kind, key (channel), to, text, at, status}."""
    out = []
    for kind in ("whatsapp", "telegram", "twilio"):
        if kind not in topo.fakes:
            continue
        for req in topo.fake_call(kind, "requests"):
            path, p = req["path"], None
            if kind == "whatsapp" and path.endswith("/messages") and req["method"] == "POST":
                p = _params(req)
                if p.get("status") == "read":
                    continue
                out.append({"kind": kind, "key": path.split("/")[-2], "to": p.get("to"),
                            "text": (p.get("text") or {}).get("body"), "at": req["at"], "status": req.get("status")})
            elif kind == "telegram" and path.endswith("/sendMessage"):
                p = _params(req)
                out.append({"kind": kind, "key": path.split("/")[1][3:], "to": str(p.get("chat_id")),
                            "text": p.get("text"), "at": req["at"], "status": req.get("status")})
            elif kind == "twilio" and path.endswith("/Messages.json") and req["method"] == "POST":
                p = _params(req)
                out.append({"kind": kind, "key": p.get("From"), "to": p.get("To"), "text": p.get("Body"),
                            "at": req["at"], "status": req.get("status")})
    return out


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def verify(recorded: list[dict], texts: set[str], limits: dict[str, float], per_recipient: dict[str, float]) -> dict:
    """Exactly-once and rate checks over the fakes' records (every request counts toward the rate,
    whatever the fake answered; only 2xx answers count as deliveries)."""
    from inbox.models import Message

    mine = [r for r in recorded if r["text"] in texts]
    delivered = Counter(r["text"] for r in mine if r["status"] and 200 <= r["status"] < 300)
    duplicates = {t: n for t, n in delivered.items() if n > 1}
    failed_visible = set(
        Message.objects.filter(direction="out", status="failed", text__in=list(texts - set(delivered)))
        .values_list("text", flat=True)
    ) if len(texts - set(delivered)) < 50000 else set()
    lost = sorted(texts - set(delivered) - failed_visible)
    by_channel = defaultdict(list)
    by_recipient = defaultdict(list)
    for r in mine:
        by_channel[r["key"]].append(r["at"])
        if r["key"] in per_recipient:
            by_recipient[(r["key"], r["to"])].append(r["at"])
    channels = {}
    for key, times in by_channel.items():
        limit = limits.get(key)
        peak = max_in_window(times)
        channels[key] = {"requests": len(times), "limit_per_s": limit, "max_in_any_1s": peak,
                         "exceeded": bool(limit and peak > limit)}
    worst_recipient = {}
    for (key, _to), times in by_recipient.items():
        worst_recipient[key] = max(worst_recipient.get(key, 0), max_in_window(times))
    delivered_times = sorted(r["at"] for r in mine if r["status"] and 200 <= r["status"] < 300)
    span = (delivered_times[-1] - delivered_times[0]) if len(delivered_times) > 1 else None
    return {
        "messages": len(texts),
        "delivered": len(delivered),
        "duplicates": len(duplicates),
        "duplicate_examples": list(duplicates.items())[:5],
        "failed_visible": len(failed_visible),
        "lost": len(lost),
        "lost_examples": lost[:5],
        "requests": len(mine),
        "channels": channels,
        "rate_limit_exceeded": any(c["exceeded"] for c in channels.values()),
        "per_recipient_limit": per_recipient,
        "per_recipient_max_in_any_1s": worst_recipient,
        "per_recipient_exceeded": any(v > per_recipient[k] for k, v in worst_recipient.items()),
        "first_to_last_delivery_s": round(span, 2) if span else None,
        "delivered_per_s": round(len(delivered) / span, 1) if span else None,
    }


def _created_texts(texts: set[str]) -> set[str]:
    from inbox.models import Message

    return set(Message.objects.filter(direction="out", text__in=list(texts)).values_list("text", flat=True))


def setup_mixed(topo, org, total: int):
    """4 WhatsApp (80/s), 2 Telegram (30/s, 1/s per chat), 2 Twilio SMS (10/s) channels; messages split
    in proportion to the limits. Returns (items, limits, per_recipient)."""
    wa = topo.fake_url("whatsapp")
    tg = topo.fake_url("telegram")
    tw = topo.fake_url("twilio")
    channels = [fixtures.whatsapp_channel(org, wa, p) for p in WA_PHONES]
    channels += [fixtures.telegram_channel(org, tg, n) for n in range(2)]
    channels += [fixtures.twilio_channel(org, tw, n) for n in range(2)]
    from providers.registry import get_provider

    limits, per_recipient, weights = {}, {}, {}
    for ch in channels:
        provider = get_provider(ch)
        rate = provider.rate_limit()
        key = {"whatsapp_cloud": ch.config.get("phone_number_id"), "telegram": ch.credentials.get("bot_token"),
               "twilio_sms": ch.config.get("from")}[ch.kind]
        limits[key] = rate
        if provider.per_recipient_rate_per_second:
            per_recipient[key] = provider.per_recipient_rate_per_second
        weights[ch.pk] = rate
    scale = total / sum(weights.values())
    items = []
    seq = 0
    for ch in channels:
        n = round(weights[ch.pk] * scale)
        if ch is channels[-1]:
            n = total - len(items)
        convs = fixtures.conversations(org, ch, max(10, min(n, 300)))
        for i in range(n):
            items.append((convs[i % len(convs)], f"out-{seq}"))
            seq += 1
    return items, limits, per_recipient


def run(ctx) -> dict:
    topo, quick = ctx.topo, ctx.quick
    total = 500 if quick else 10000
    topo.start_fake("whatsapp", phone_number_ids=WA_PHONES, access_token=fixtures.WA_TOKEN)
    topo.start_fake("telegram")
    topo.start_fake("twilio", account_sid=fixtures.TWILIO_SID, auth_token=fixtures.TWILIO_TOKEN)
    org = fixtures.organization()
    items, limits, per_recipient = setup_mixed(topo, org, total)
    texts = {t for _, t in items}
    worker_spec = {"workers": 2, "pool": os.environ.get("BENCH_POOL", "prefork"), "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "4"))}

    # A. mixed channels: workers run while the messages are created (as API traffic would arrive) ----
    t0 = time.monotonic()
    for _ in range(worker_spec["workers"]):
        topo.start_worker(pool=worker_spec["pool"], concurrency=worker_spec["concurrency"])
    topo.start_beat()
    with PgWaits() as waits, CpuAccount() as cpu:
        created = create_messages(topo, items, max_seconds=60 if quick else 240)
        texts = _created_texts(texts)
        log(f"created {created['created']} messages in {created['seconds']} s ({created['per_s']}/s)")
        final = wait_final(texts, timeout=90 if quick else 300)
    drain_s = time.monotonic() - t0
    check = verify(sends(topo), texts, limits, per_recipient)
    mixed = {"created": created, "final": final, "drain_s": round(drain_s, 1),
             "messages_per_s": round(len(texts) / drain_s, 1), **check, "pg_waits": waits.result(),
             "cpu": cpu.result(per=len(texts))}
    log(f"mixed: {mixed['messages_per_s']} msg/s (drain), delivered/s {check['delivered_per_s']}, "
        f"dup {check['duplicates']} lost {check['lost']} exceeded {check['rate_limit_exceeded']}")
    ctx.partial["mixed"] = mixed
    topo.stop_workers()

    # A2. the same mix queued first (no worker running), then drained: the send pipeline's own rate,
    # without the creators on the same two cores. Same channels and conversations, new texts.
    # The fakes are not reset: Telegram's fake would number each chat's messages from 1 again, and our
    # unique (channel, platform id) would refuse the repeated ids. verify() counts this phase's texts.
    queued_items = [(conversation, f"q-{n}") for n, (conversation, _) in enumerate(items)]
    queued_created = create_messages(topo, queued_items, max_seconds=60 if quick else 240)
    queued_texts = _created_texts({t for _, t in queued_items})
    t0 = time.monotonic()
    for _ in range(worker_spec["workers"]):
        topo.start_worker(pool=worker_spec["pool"], concurrency=worker_spec["concurrency"])
    with CpuAccount() as cpu_q:
        final_q = wait_final(queued_texts, timeout=90 if quick else 300)
    queued_drain_s = time.monotonic() - t0
    check_q = verify(sends(topo), queued_texts, limits, per_recipient)
    ideal_s = max(
        check_q["channels"][key]["requests"] / (limit * 0.9) for key, limit in limits.items()
        if key in check_q["channels"]
    )  # fmt: skip
    queued = {"created": queued_created, "final": final_q, "drain_s": round(queued_drain_s, 1),
              "messages_per_s": round(len(queued_texts) / queued_drain_s, 1),
              "rate_limited_floor_s": round(ideal_s, 1), **check_q,
              "cpu": cpu_q.result(per=len(queued_texts))}  # fmt: skip
    log(f"queued then drained: {queued['messages_per_s']} msg/s (drain {queued['drain_s']} s, the channels' "
        f"limits allow {queued['rate_limited_floor_s']} s at the fastest), delivered/s {check_q['delivered_per_s']}, "
        f"dup {check_q['duplicates']} lost {check_q['lost']} exceeded {check_q['rate_limit_exceeded']}")
    ctx.partial["queued"] = queued
    topo.stop_workers()

    # B. Telegram only: our pipeline vs Apprise ----------------------------------------------------------
    tg_url = topo.fake_url("telegram")
    topo.fake_call("telegram", "reset")
    tg = fixtures.telegram_channel(org, tg_url, 9, rate=100000)
    n_tg = 300 if quick else 2000  # a rate comparison; 10,000 would take ours ~5 minutes (see docs)
    convs = fixtures.conversations(org, tg, n_tg)
    tg_items = [(convs[i], f"tg-{i}") for i in range(n_tg)]
    tg_texts = {t for _, t in tg_items}
    created_tg = create_messages(topo, tg_items, max_seconds=60 if quick else 120)
    tg_texts = _created_texts(tg_texts)
    tg_items = [(c, t) for c, t in tg_items if t in tg_texts]
    t0 = time.monotonic()
    for _ in range(worker_spec["workers"]):
        topo.start_worker(pool=worker_spec["pool"], concurrency=worker_spec["concurrency"])
    with CpuAccount() as cpu_tg:
        final_tg = wait_final(tg_texts, timeout=90 if quick else 300)
    ours_s = time.monotonic() - t0
    check_tg = verify(sends(topo), tg_texts, {}, {})
    topo.stop_workers()

    from inbox.models import ContactIdentity

    chats = dict(ContactIdentity.objects.filter(channel=tg).values_list("contact__conversations__id", "value"))
    token = tg.credentials["bot_token"]
    job = {"api_base": tg_url, "threads": worker_spec["workers"] * worker_spec["concurrency"],
           "items": [[token, chats[c], f"ap-{i}"] for i, (c, _) in enumerate(tg_items)]}
    path = LOGS / "apprise-job.json"
    path.write_text(json.dumps(job))
    topo.fake_call("telegram", "reset")
    proc = subprocess.run([PY, str(BENCH / "apprise_send.py"), str(path)], capture_output=True, text=True,
                          timeout=900, env=topo.env(pool=False))
    if proc.returncode:
        raise RuntimeError(f"apprise failed: {proc.stderr[-3000:]}")
    apprise = json.loads(proc.stdout.strip().splitlines()[-1])
    apprise_recorded = [r for r in sends(topo) if (r["text"] or "").startswith("ap-")]
    apprise["recorded"] = len(apprise_recorded)
    apprise["per_s"] = round(apprise["ok"] / apprise["seconds"], 1)
    ours_per_s = round(len(tg_texts) / ours_s, 1)
    telegram = {
        "messages": len(tg_texts), "created": created_tg, "final": final_tg, "ours_drain_s": round(ours_s, 1),
        "ours_per_s": ours_per_s, "ours_check": check_tg, "ours_cpu": cpu_tg.result(per=len(tg_texts)),
        "apprise": apprise,
        "ratio_ours_to_apprise": round(ours_per_s / apprise["per_s"], 2) if apprise["per_s"] else None,
    }
    log(f"telegram: ours {ours_per_s}/s vs apprise {apprise['per_s']}/s")
    return {"messages": len(texts), "messages_requested": total, "workers": worker_spec, "mixed": mixed,
            "queued": queued, "telegram_vs_apprise": telegram, "messages_per_s": mixed["messages_per_s"],
            "sends_per_s": queued["messages_per_s"]}  # fmt: skip
