"""Rewrite the figures table in bench/README.md from bench/results/*.json (between the markers)."""

from __future__ import annotations

import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _v(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def table() -> str:
    rows = []
    machines = []
    inbound = _load("inbound")
    if inbound and "machine" in inbound:
        machines.append(("inbound", inbound))
        for row in inbound.get("comparison", []):
            a, b = row.get("alexia", {}), row.get("baseline", {})
            rows.append((f"intake, closed loop, {row['server']} ({row['processes']} proc.)",
                         f"{_v(a.get('rps'))} req/s (p50 {_v(a.get('p50_ms'))} ms, p99 {_v(a.get('p99_ms'))} ms); "
                         f"bare view {_v(b.get('rps'))} req/s; ratio {row.get('ratio', '–')}",
                         ">= 0.70 of bare view", _mark(row.get("ratio") and row["ratio"] >= 0.7)))
        for ol in inbound.get("open_loop", []):
            name = f"{ol['http_server']} + ws on {ol['ws_server']}"
            knee = (f"{_v(ol['knee_rps'])} webhooks/s accepted" if ol.get("knee_rps") else
                    f"no step sustained (95 % accepted, p99 < 1 s); at most {_v(ol.get('max_achieved_rps'))}/s accepted")
            rows.append((f"intake knee, open loop, {name}", knee,
                         ">= 1,000/s", _mark((ol.get("knee_rps") or 0) >= 1000)))
            at500 = (f"p50 {_v(ol.get('intake_p50_ms_at_500'))} ms, p99 {_v(ol.get('intake_p99_ms_at_500'))} ms"
                     if ol.get("intake_p99_ms_at_500") is not None else "not reached: saturated below 500/s")
            rows.append((f"intake at 500/s, {name}", at500,
                         "p99 < 50 ms", _mark(ol.get("intake_p99_ms_at_500") is not None
                                              and ol["intake_p99_ms_at_500"] < 50)))
            rows.append((f"end-to-end at 200/s (webhook -> websocket), {name}",
                         f"p50 {_v(ol.get('e2e_p50_ms_at_200'))} ms, p95 {_v(ol.get('e2e_p95_ms_at_200'))} ms",
                         "p95 < 250 ms", _mark(ol.get("e2e_p95_ms_at_200") is not None
                                               and ol["e2e_p95_ms_at_200"] < 250)))
            if "sustained_e2e_rps" in ol:
                rows.append((f"highest rate carried end to end (intake kept up, e2e p95 < 250 ms), {name}",
                             f"{_v(ol['sustained_e2e_rps'])} webhooks/s" if ol["sustained_e2e_rps"] else "none of the steps",
                             "(measured)", "–"))
    outbound = _load("outbound")
    if outbound and "mixed" in outbound:
        machines.append(("outbound", outbound))
        m = outbound["mixed"]
        rows.append((f"outbound, {_v(outbound['messages'])} messages, 8 channels, 3 platforms, created while sent",
                     f"{_v(m.get('messages_per_s'))} msg/s (created to all sent); created at {_v(m['created']['per_s'])}/s",
                     ">= 300 msg/s", _mark(m.get("messages_per_s", 0) >= 300)))
        q = outbound.get("queued")
        runs = [("", m)]
        if q:
            rows.append((f"outbound, the same {_v(q.get('messages', 0))} queued first, then sent",
                         f"{_v(q['messages_per_s'])} msg/s (drain {_v(q['drain_s'])} s; the channels' limits allow "
                         f"{_v(q['rate_limited_floor_s'])} s at best)", ">= 300 msg/s", _mark(q["messages_per_s"] >= 300)))
            runs.append((" (queued)", q))
        for label, run in runs:
            rows.append((f"outbound{label}: duplicates / lost", f"{run.get('duplicates')} / {run.get('lost')}", "0 / 0",
                         _mark(run.get("duplicates") == 0 and run.get("lost") == 0)))
            worst = ", ".join(f"{c['max_in_any_1s']}/{_v(c['limit_per_s'])}" for c in run.get("channels", {}).values())
            per_chat = run.get("per_recipient_max_in_any_1s") or {}
            if per_chat:
                worst += f"; per Telegram chat {max(per_chat.values())}/1"
            rows.append((f"outbound{label}: max sends in any 1 s window / limit, per channel", worst,
                         "never above the limit",
                         _mark(not run.get("rate_limit_exceeded") and not run.get("per_recipient_exceeded"))))
        t = outbound.get("telegram_vs_apprise")
        if t:
            rows.append((f"Telegram only, {_v(t['messages'])} messages: ours vs Apprise",
                         f"{_v(t['ours_per_s'])} vs {_v(t['apprise']['per_s'])} msg/s; ratio {t['ratio_ours_to_apprise']}",
                         "(comparison)", "–"))
    inbox = _load("inbox")
    if inbox and "pages" in inbox:
        machines.append(("inbox", inbox))
        s = inbox["scale"]
        for name, page in inbox["pages"].items():
            target = "p95 < 100 ms" if name.startswith(("list", "conversation")) else "(measured)"
            ok = page["p95_ms"] < 100 if target != "(measured)" else None
            rows.append((f"inbox {s['conversations']:,} conv. / {s['messages']:,} msgs: {name}",
                         f"p50 {_v(page['p50_ms'])} ms, p95 {_v(page['p95_ms'])} ms, {page['queries']} queries",
                         target, _mark(ok)))
        rows.append(("inbox: query count constant (small vs 5,000-message conversation, page 1 vs 2)",
                     str(inbox.get("constant_query_count")), "constant", _mark(inbox.get("constant_query_count"))))
        rows.append(("inbox: seed time", f"{_v(inbox['seed']['seconds'])} s", "bounded", "–"))
    fanout = _load("fanout")
    if fanout and "rounds" in fanout:
        machines.append(("fanout", fanout))
        rows.append((f"fan-out to {fanout['sockets']:,} websockets (one event, all received)",
                     f"worst {_v(fanout.get('all_received_ms_worst'))} ms, median {_v(fanout.get('all_received_ms_median'))} ms; "
                     f"daphne RSS {_v(fanout.get('web_rss_mb_idle'))} -> {_v(fanout.get('web_rss_mb_connected'))} MiB",
                     "< 1,000 ms", _mark(fanout.get("all_received_ms_worst") is not None
                                          and fanout["all_received_ms_worst"] < 1000 and fanout["sockets"] >= 1000)))
    faults = _load("faults")
    if faults and "inbound" in faults:
        machines.append(("faults", faults))
        rows.append(("faults (Redis restart, worker SIGKILL, 429/500): lost / duplicates",
                     f"{faults['lost_total']} / {faults['duplicates_total']} "
                     f"(inbound {faults['inbound']['sent_accepted']}, outbound {faults['outbound']['messages']}; "
                     f"recovered after {faults['recovered_after_s']} s)",
                     "0 / 0", _mark(faults["lost_total"] == 0 and faults["duplicates_total"] == 0)))
        rows.append(("faults: outbound rate limit held during faults",
                     ", ".join(f"{c['max_in_any_1s']}/{_v(c['limit_per_s'])}" for c in faults["outbound"]["channels"].values()),
                     "never above the limit", _mark(not faults["outbound"]["rate_limit_exceeded"])))
    lines = ["| measure | figure | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines.append("")
    lines.append("| scenario | date (UTC) | cores | memory | load average start -> end | quick | wall |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, data in machines:
        m = data["machine"]
        lines.append(f"| {name} | {m['date']} | {m['cores']} | {m['memory_mib']:,} MiB | {m['loadavg_start']} -> "
                     f"{data.get('loadavg_end')} | {data.get('quick')} | {data.get('wall_s')} s |")
    return "\n".join(lines)


def update_readme() -> None:
    path = BENCH / "README.md"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    update_readme()
    print(table())
