"""Live fan-out: N agent websockets on /ws/inbox/, then one event published to their organization's
group, timed until every socket has it. `fanout_client.py JOB_JSON`; prints one JSON document.

The event is published the way the product does (channels_redis group_send on "org.<id>", the layer
config of alexia.settings), from this process, so the same clock times the publish and the arrivals.
"""

import asyncio
import json
import sys
import time
from pathlib import Path


async def main(job: dict) -> dict:
    from channels_redis.core import RedisChannelLayer
    from websockets.asyncio.client import connect

    n, url, origin = job["sockets"], job["url"], job["origin"]
    cookies = job["cookies"]
    sockets: list = []
    failures = 0
    sem = asyncio.Semaphore(job.get("connect_concurrency", 50))
    t0 = time.monotonic()

    async def open_one(i: int):
        nonlocal failures
        async with sem:
            try:
                ws = await connect(url, additional_headers={"Cookie": cookies[i % len(cookies)]}, origin=origin,
                                   open_timeout=30, ping_interval=None, max_queue=64)
                hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if hello.get("type") != "hello":
                    raise RuntimeError(hello)
                sockets.append(ws)
            except Exception:  # noqa: BLE001 - counted
                failures += 1

    await asyncio.gather(*(open_one(i) for i in range(n)))
    connect_s = time.monotonic() - t0
    Path(job["ready_file"]).write_text(str(len(sockets)))
    # Let the server settle (and the orchestrator read its memory) before timing.
    await asyncio.sleep(job.get("settle_s", 2))
    layer = RedisChannelLayer(hosts=[job["redis_url"]], prefix=job["prefix"])
    rounds = []
    for r in range(job.get("rounds", 5)):
        marker = f"fanout-{r}-{time.time_ns()}"
        event = {"type": "message.created", "v": 1, "data": {"id": r, "text": marker}}
        arrivals: list[float] = []

        async def wait_one(ws, marker=marker, arrivals=arrivals):
            while True:
                data = json.loads(await ws.recv())
                if (data.get("data") or {}).get("text") == marker:
                    arrivals.append(time.monotonic())
                    return

        waiters = [asyncio.create_task(wait_one(ws)) for ws in sockets]
        start = time.monotonic()
        await layer.group_send(job["group"], {"type": "live.event", "event": event})
        done, pending = await asyncio.wait(waiters, timeout=job.get("timeout_s", 10))
        for t in pending:
            t.cancel()
        lat = sorted(a - start for a in arrivals)
        rounds.append({
            "received": len(arrivals), "of": len(sockets),
            "first_ms": round(lat[0] * 1000, 1) if lat else None,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
            "all_ms": round(lat[-1] * 1000, 1) if len(lat) == len(sockets) and lat else None,
        })
        await asyncio.sleep(0.5)
    for ws in sockets:
        await ws.close()
    return {"sockets": len(sockets), "connect_failures": failures, "connect_s": round(connect_s, 2), "rounds": rounds}


if __name__ == "__main__":
    job = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(main(job))))
