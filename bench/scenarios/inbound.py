"""Scenario 1, inbound: signed WhatsApp webhooks.

A. Servers, closed loop (wrk, 32 connections, no worker consuming): the product's webhook view and the
   bare view (bench/baseline) under daphne, uvicorn, gunicorn + uvicorn workers and gunicorn sync
   (WSGI); the product's figure as a ratio of the bare view's under the same server.
B. The full topology (web server, 2 Celery workers, beat, PostgreSQL, Redis, fake WhatsApp), open loop
   at rising rates from a separate process; a websocket client logged in as an agent times each
   message from webhook sent to message.created received. Run for the Procfile topology (daphne for
   everything) and for the split one (gunicorn sync for HTTP, daphne for /ws/).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from .. import fixtures
from ..lib import BENCH, LOGS, PY, CpuAccount, PgWaits, log, rss_mb
from ..loadgen import body_for

PHONE = "109000000000001"


def _wrk_file(path: str, n: int, run_id: str) -> str:
    import hashlib
    import hmac

    cfg = {"phone_number_id": PHONE, "run_id": run_id, "senders": 5000}
    out = LOGS / f"wrk-{run_id}.txt"
    with open(out, "w") as f:
        for seq in range(n):
            body = body_for(cfg, seq)
            sig = "sha256=" + hmac.new(fixtures.WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
            f.write(f"{path}\t{sig}\t{body.decode()}\n")
    return str(out)


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", value)
    num, unit = float(m[1]), m[2]
    return round(num * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 2)


def wrk(port: int, path: str, duration: int, run_id: str, rps_guess: int = 4000, conns: int = 32) -> dict:
    file = _wrk_file(path, rps_guess * duration, run_id)
    env = {"BENCH_WRK_FILE": file, "BENCH_WRK_THREADS": "2", "PATH": "/usr/bin:/bin"}
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "--latency",
            "-s", str(BENCH / "wrk_webhook.lua"), f"http://127.0.0.1:{port}"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60).stdout
    (LOGS / f"wrk-{run_id}.txt").unlink(missing_ok=True)
    result = {"connections": conns, "duration_s": duration}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = round(float(m[1]), 1)
    for p in ("50", "90", "99"):
        if m := re.search(rf"^\s+{p}(?:\.000)?%\s+(\S+)", out, re.M):
            result[f"p{p}_ms"] = _ms(m[1])
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = int(m[1]) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m[1]) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = m[1] if m else ""
    return result


def loadgen(cfg: dict, timeout: float) -> dict:
    path = LOGS / f"loadgen-{cfg['run_id']}.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([PY, str(BENCH / "loadgen.py"), str(path)], capture_output=True, text=True,
                          timeout=timeout)
    sys.stderr.write(proc.stderr[-2000:])
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_processed(expected_min: int, timeout: float) -> dict:
    """Wait (bounded) until every stored webhook event is processed; returns the counts."""
    from inbox.models import Message
    from providers.models import WebhookEvent

    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while True:
        left = WebhookEvent.objects.exclude(status__in=["processed", "ignored", "failed"]).count()
        total = WebhookEvent.objects.count()
        if (left == 0 and total >= expected_min) or time.monotonic() > deadline:
            break
        time.sleep(1)
    return {
        "events": total,
        "unprocessed": left,
        "failed": WebhookEvent.objects.filter(status="failed").count(),
        "messages": Message.objects.filter(direction="in", text__startswith="bench-").count(),
        "drain_wait_s": round(time.monotonic() - t0, 1),
    }


def run(ctx) -> dict:
    topo, quick = ctx.topo, ctx.quick
    from django.db import connection

    from inbox.models import Message
    from providers.models import WebhookEvent

    wa_url = topo.start_fake("whatsapp", phone_number_ids=[PHONE], access_token=fixtures.WA_TOKEN)
    org = fixtures.organization()
    cookie = fixtures.agents(org, 1)[0]
    ch = fixtures.whatsapp_channel(org, wa_url, PHONE)
    path = f"/webhooks/whatsapp_cloud/{ch.webhook_token}/"
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_baseline_event "
                    "(id bigserial PRIMARY KEY, token text NOT NULL, body bytea NOT NULL, "
                    "created_at timestamptz NOT NULL DEFAULT now())")

    # A. servers, closed loop --------------------------------------------------------------------------
    duration = 3 if quick else 8
    servers = ["daphne", "gunicorn-sync"] if quick else ["daphne", "uvicorn", "gunicorn-uvicorn", "gunicorn-sync"]
    workers_for = {"daphne": 1, "uvicorn": 2, "gunicorn-uvicorn": 2, "gunicorn-sync": 4}
    comparison = []
    for server in servers:
        row = {"server": server, "processes": workers_for[server]}
        for app in ("alexia", "baseline"):
            port = topo.start_web(server, app=app, workers=workers_for[server])
            run_id = f"{server[:3]}{app[:1]}{int(time.time()) % 100000}"
            target = path if app == "alexia" else "/webhooks/whatsapp_cloud/baseline/"
            result = wrk(port, target, duration, run_id)
            result["rss_mb"] = rss_mb(topo.web_proc(port).pid)
            topo.stop_web(port)
            row[app] = result
            log(f"{server:17s} {app:8s} {result.get('rps')} req/s p50 {result.get('p50_ms')} ms "
                f"p99 {result.get('p99_ms')} ms non2xx {result['non_2xx']} {result['socket_errors']}")
        if row["alexia"].get("rps") and row["baseline"].get("rps"):
            row["ratio"] = round(row["alexia"]["rps"] / row["baseline"]["rps"], 3)
        comparison.append(row)
        ctx.partial["comparison"] = comparison
    # Nothing consumed the queue: forget those events so the sweeper does not replay them below.
    topo.flush_redis()
    WebhookEvent.objects.all().delete()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE bench_baseline_event")

    # B. full topology, open loop, rising rates ---------------------------------------------------
    for _ in range(2):
        topo.start_worker(concurrency=2)
    topo.start_beat()
    # Rising rates; after each step the load generator waits (bounded) until the workers have delivered
    # that step's messages to the websocket, so a saturated step's backlog never inflates the next.
    if quick:
        steps = [{"rate": r, "duration": 3} for r in (50, 100, 200, 500, 1000)]
    else:
        steps = [{"rate": r, "duration": 10 if r == 200 else 6}
                 for r in (25, 50, 100, 150, 200, 300, 500, 800, 1000, 1500, 2000)]
    topologies = [("daphne", None)] if quick else [("daphne", None), ("gunicorn-sync", "daphne")]
    seq = 0
    open_loop = []
    for http_server, ws_server in topologies:
        ws_port = topo.start_web(ws_server or http_server, workers=1)
        http_port = topo.start_web(http_server, workers=workers_for[http_server]) if ws_server else ws_port
        cfg = {
            "port": http_port, "path": path, "secret": fixtures.WA_SECRET, "phone_number_id": PHONE,
            "run_id": f"ol{int(time.time()) % 100000}", "steps": steps, "connections": 64, "seq_start": seq,
            "ws": {"url": f"ws://127.0.0.1:{ws_port}/ws/inbox/", "cookie": cookie,
                   "origin": f"http://127.0.0.1:{ws_port}"},
            "drain_seconds": 20 if quick else 60, "stop_when_saturated": True, "climb_at_least": 500,
            "settle_seconds": 30 if quick else 45,
        }
        before = Message.objects.filter(direction="in").count()
        started = time.monotonic()
        with PgWaits() as waits, CpuAccount() as cpu:
            out = loadgen(cfg, timeout=1500)
            seq = out["next_seq"]
            accepted = sum(s["accepted"] for s in out["steps"])
            drained = wait_processed(before + accepted, timeout=60 if quick else 90)
        ok_steps = [s for s in out["steps"] if s["ok"]]
        knee = max(ok_steps, key=lambda s: s["offered_rps"]) if ok_steps else None
        at = {int(s["offered_rps"]): s for s in out["steps"]}
        summary = {
            "http_server": http_server,
            "ws_server": ws_server or http_server,
            "steps": out["steps"],
            "knee_rps": knee["achieved_rps"] if knee else None,
            "knee_offered_rps": knee["offered_rps"] if knee else None,
            "max_achieved_rps": max(s["achieved_rps"] for s in out["steps"]),
            "intake_p50_ms_at_500": at.get(500, {}).get("intake", {}).get("p50_ms"),
            "intake_p99_ms_at_500": at.get(500, {}).get("intake", {}).get("p99_ms"),
            "e2e_p50_ms_at_200": at.get(200, {}).get("e2e", {}).get("p50_ms"),
            "e2e_p95_ms_at_200": at.get(200, {}).get("e2e", {}).get("p95_ms"),
            # The highest offered rate the whole topology carried: intake kept up and p95 < 250 ms.
            "sustained_e2e_rps": max(
                (s["offered_rps"] for s in out["steps"]
                 if s["ok"] and (s.get("e2e", {}).get("p95_ms") or 1e9) < 250), default=None),
            "accepted": accepted,
            "failed_requests": out["failed_count"],
            "processing": drained,
            "stored_minus_accepted": Message.objects.filter(direction="in").count() - before - accepted,
            "web_rss_mb": rss_mb(topo.web_proc(http_port).pid),
            "wall_s": round(time.monotonic() - started, 1),
            "pg_waits": waits.result(),
            "cpu": cpu.result(per=accepted),
        }
        log(f"open loop {http_server}/{summary['ws_server']}: knee {summary['knee_rps']} req/s, "
            f"p99@500 {summary['intake_p99_ms_at_500']} ms, e2e p95@200 {summary['e2e_p95_ms_at_200']} ms, "
            f"unprocessed {drained['unprocessed']}")
        open_loop.append(summary)
        for port in {ws_port, http_port}:
            topo.stop_web(port)

    best = max(comparison, key=lambda r: r["alexia"].get("rps") or 0)
    return {
        "comparison": comparison,
        "open_loop": open_loop,
        "recommended_http_server": best["server"],
        "workers": "2 x celery prefork --concurrency=2 -Q live,default",
    }
