"""Open-loop load generator for signed WhatsApp webhooks, with a websocket listener for end-to-end times.

Run as its own process (so its CPU is not the server's GIL): `loadgen.py CONFIG_JSON_PATH`; prints one
JSON document. Requests are scheduled at fixed times (rate steps); latency is measured from the
scheduled time, so a saturated server cannot hide its queueing (no coordinated omission). Every step
is bounded in count and time; the whole run stops by itself.

Config keys: port, path, secret, phone_number_id, steps [{rate, duration}], connections, seq_start,
run_id, senders, ws {url, cookie, origin} | null, retries (0: none; faults mode retries failures like
a platform does), stop_when_saturated, drain_seconds, timeout.
"""

import asyncio
import hashlib
import hmac
import json
import sys
import time


def body_for(cfg: dict, seq: int) -> bytes:
    sender = str(15550000000 + seq % cfg.get("senders", 5000))
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550104477", "phone_number_id": cfg["phone_number_id"]},
                            "contacts": [{"profile": {"name": f"Customer {sender[-4:]}"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.BENCH{cfg['run_id']}{seq:010d}",
                                    "timestamp": str(int(time.time())),
                                    "text": {"body": f"bench-{seq}"},
                                    "type": "text",
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def request_bytes(cfg: dict, body: bytes) -> bytes:
    sig = "sha256=" + hmac.new(cfg["secret"].encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {cfg['path']} HTTP/1.1\r\nHost: 127.0.0.1:{cfg['port']}\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {sig}\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader = self.writer = None

    async def request(self, data: bytes, timeout: float) -> int:
        for attempt in (0, 1):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.writer.write(data)
                return await asyncio.wait_for(self._response(), timeout)
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if attempt:
                    raise
            except TimeoutError:
                self.close()
                raise
        return 0

    async def _response(self) -> int:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length, close, chunked = 0, False, False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and "close" in v.lower():
                close = True
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def ws_listener(cfg: dict, received: dict, ready: asyncio.Event, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    ws_cfg = cfg["ws"]
    async with connect(
        ws_cfg["url"], additional_headers={"Cookie": ws_cfg["cookie"]}, origin=ws_cfg["origin"], max_size=2**22
    ) as ws:
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.monotonic()
            event = json.loads(raw)
            if event.get("type") != "message.created":
                continue
            text = (event.get("data") or {}).get("text") or ""
            if text.startswith("bench-") and text[6:].isdigit():
                received.setdefault(int(text[6:]), now)


async def run(cfg: dict) -> dict:
    timeout = cfg.get("timeout", 10.0)
    retries = cfg.get("retries", 0)
    conns = [Conn(cfg["port"]) for _ in range(cfg.get("connections", 64))]
    free: asyncio.Queue = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    received: dict[int, float] = {}
    sent_at: dict[int, float] = {}
    stop_ws = asyncio.Event()
    ws_task = None
    if cfg.get("ws"):
        ready = asyncio.Event()
        ws_task = asyncio.create_task(ws_listener(cfg, received, ready, stop_ws))
        await asyncio.wait_for(ready.wait(), 20)
    seq = cfg.get("seq_start", 0)
    failed: list[int] = []
    steps_out = []
    saturated = False
    for index, step in enumerate(cfg["steps"]):
        # A saturated step stops the climb, except below `climb_at_least` (the rates the targets name
        # are measured even when a lower step already saturated) and for the first step.
        if (saturated and index > 1 and cfg.get("stop_when_saturated", True)
                and float(step["rate"]) > cfg.get("climb_at_least", 0)):
            break
        rate, duration = float(step["rate"]), float(step["duration"])
        n = int(rate * duration)
        seqs = list(range(seq, seq + n))
        seq += n
        reqs = [request_bytes(cfg, body_for(cfg, s)) for s in seqs]
        intake: list[float] = []
        service: list[float] = []
        statuses: dict[int, int] = {}
        errors = 0
        tasks = []
        t0 = time.monotonic() + 0.05

        async def one(i: int, target: float, seqs=seqs, reqs=reqs, statuses=statuses, intake=intake,
                      service=service) -> None:
            nonlocal errors
            conn = await free.get()
            try:
                for attempt in range(retries + 1):
                    start = time.monotonic()
                    sent_at.setdefault(seqs[i], start)
                    try:
                        status = await conn.request(reqs[i], timeout)
                    except Exception:  # noqa: BLE001 - counted, retried like a platform would
                        status = 0
                    end = time.monotonic()
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 200:
                        intake.append(end - target)
                        service.append(end - start)
                        return
                    if attempt < retries:
                        free.put_nowait(conn)
                        await asyncio.sleep(1.0)
                        conn = await free.get()
                errors += 1
                failed.append(seqs[i])
            finally:
                free.put_nowait(conn)

        for i in range(n):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, target)))
        send_end = time.monotonic()
        # Bounded: whatever has not answered 30 s after the step is counted as failed.
        done, pending = await asyncio.wait(tasks, timeout=30 + retries * 2)
        for t in pending:
            t.cancel()
        elapsed = max(time.monotonic(), send_end) - t0
        ok = len(intake)
        achieved = ok / elapsed if elapsed > 0 else 0
        late_queue = send_end - t0 - duration
        out = {
            "offered_rps": rate,
            "duration_s": duration,
            "sent": n,
            "accepted": ok,
            "errors": errors + len(pending),
            "statuses": {str(k): v for k, v in statuses.items()},
            "achieved_rps": round(achieved, 1),
            "intake": _summary(intake),
            "service": _summary(service),
            "scheduler_lag_s": round(late_queue, 3),
            "seq_range": [seqs[0], seqs[-1]] if seqs else None,
        }
        out["ok"] = achieved >= 0.95 * rate and out["errors"] <= 0.01 * n and (out["intake"]["p99_ms"] or 0) < 1000
        saturated = not out["ok"]
        if ws_task is not None and cfg.get("settle_seconds"):
            # Let the workers finish this step's messages before the next step starts, so that each
            # step's end-to-end latency is its own, not the backlog of a saturated step before it.
            settle_start = time.monotonic()
            want = {s for s in seqs if s not in failed}
            while time.monotonic() - settle_start < cfg["settle_seconds"] and not want.issubset(received):
                await asyncio.sleep(0.2)
            out["settle_s"] = round(time.monotonic() - settle_start, 1)
            out["settled"] = want.issubset(received)
        steps_out.append(out)
        print(json.dumps({"step": rate, "achieved": out["achieved_rps"], "p50": out["intake"]["p50_ms"],
                          "p99": out["intake"]["p99_ms"], "errors": out["errors"]}), file=sys.stderr, flush=True)
    if ws_task is not None:
        deadline = time.monotonic() + cfg.get("drain_seconds", 10)
        while time.monotonic() < deadline and len(received) < len(sent_at) - len(failed):
            await asyncio.sleep(0.1)
        stop_ws.set()
        await asyncio.gather(ws_task, return_exceptions=True)
        for step in steps_out:
            lo, hi = step["seq_range"] or (0, -1)
            e2e = [received[s] - sent_at[s] for s in range(lo, hi + 1) if s in received and s in sent_at]
            step["e2e"] = _summary(e2e)
            step["e2e_missing"] = (hi - lo + 1) - len(e2e)
    for c in conns:
        c.close()
    return {"steps": steps_out, "failed_seqs": failed[:5000], "failed_count": len(failed), "next_seq": seq,
            "ws_events": len(received)}


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(values)

    def p(q: float) -> float:
        k = (len(s) - 1) * q
        lo = int(k)
        hi = min(lo + 1, len(s) - 1)
        return round((s[lo] + (s[hi] - s[lo]) * (k - lo)) * 1000, 2)

    return {"n": len(s), "p50_ms": p(0.5), "p95_ms": p(0.95), "p99_ms": p(0.99), "max_ms": round(s[-1] * 1000, 2)}


def main() -> None:
    cfg = json.loads(open(sys.argv[1]).read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(cfg))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
