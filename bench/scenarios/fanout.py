"""Scenario 4, live fan-out: 1,000 agents of one organization connected to /ws/inbox/ on daphne (the
Procfile's web process, DATABASE_POOL=true), each with its own logged-in session; one event published
to the organization's group; time until all 1,000 sockets have it; the web process's memory."""

from __future__ import annotations

import json
import subprocess
import time

from .. import fixtures
from ..lib import BENCH, LOGS, PREFIX, PY, log, rss_mb


def run(ctx) -> dict:
    topo, quick = ctx.topo, ctx.quick
    n = 200 if quick else 1000
    org = fixtures.organization("Fanout")
    cookies = fixtures.agents(org, n)
    port = topo.start_web("daphne")
    web = topo.web_proc(port)
    rss_idle = rss_mb(web.pid)
    ready = LOGS / "fanout.ready"
    ready.unlink(missing_ok=True)
    job = {
        "sockets": n, "url": f"ws://127.0.0.1:{port}/ws/inbox/", "origin": f"http://127.0.0.1:{port}",
        "cookies": cookies, "redis_url": topo.redis_url, "prefix": PREFIX, "group": f"org.{org.pk}",
        "rounds": 3 if quick else 5, "ready_file": str(ready), "settle_s": 3,
    }
    path = LOGS / "fanout-job.json"
    path.write_text(json.dumps(job))
    proc = subprocess.Popen([PY, str(BENCH / "fanout_client.py"), str(path)], env=topo.env(pool=False),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    rss_connected = rss_mb(web.pid)
    out, err = proc.communicate(timeout=240)
    if proc.returncode:
        raise RuntimeError(f"fanout client failed: {err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    alls = [r["all_ms"] for r in result["rounds"] if r["all_ms"] is not None]
    summary = {
        **result,
        "all_received_ms_worst": max(alls) if alls else None,
        "all_received_ms_median": sorted(alls)[len(alls) // 2] if alls else None,
        "complete_rounds": len(alls),
        "web_rss_mb_idle": rss_idle,
        "web_rss_mb_connected": rss_connected,
        "web_rss_kb_per_socket": round((rss_connected - rss_idle) * 1024 / max(1, result["sockets"]), 1)
        if rss_idle and rss_connected else None,
        "server": "daphne (DATABASE_POOL=true), channels_redis",
    }
    log(f"fan-out to {result['sockets']} sockets: worst {summary['all_received_ms_worst']} ms, "
        f"connect {result['connect_s']} s, rss {rss_idle} -> {rss_connected} MiB")
    return summary
