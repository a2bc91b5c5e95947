"""Time the agent inbox's real views at scale: `inbox_measure.py JOB_JSON`.

Django's test client runs the whole request (middleware, view, selectors, template) in this process
against the seeded database; CaptureQueriesContext counts the SQL queries of each request. Prints one
JSON document: per page, p50/p95/max server time and the query counts seen.
"""

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alexia.settings")


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    job = json.loads(Path(sys.argv[1]).read_text())
    user = get_user_model().objects.get(pk=job["user_id"])
    client = Client()
    client.force_login(user)
    out = {}
    for name, url in job["pages"].items():
        times, counts, slowest = [], [], []
        for i in range(job["warmup"] + job["repeat"]):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise SystemExit(f"{name} {url}: HTTP {response.status_code}")
            if i >= job["warmup"]:
                times.append(elapsed)
                counts.append(len(ctx.captured_queries))
                if i == job["warmup"] + job["repeat"] - 1:
                    slowest = sorted(
                        ({"ms": float(q["time"]) * 1000, "sql": q["sql"][:300]} for q in ctx.captured_queries),
                        key=lambda q: -q["ms"],
                    )[:3]
        times.sort()

        def p(q: float, times=times) -> float:
            k = (len(times) - 1) * q
            lo = int(k)
            hi = min(lo + 1, len(times) - 1)
            return round((times[lo] + (times[hi] - times[lo]) * (k - lo)) * 1000, 1)

        out[name] = {"url": url, "n": len(times), "p50_ms": p(0.5), "p95_ms": p(0.95), "max_ms": round(times[-1] * 1000, 1),
                     "queries": sorted(set(counts)), "slowest_queries": slowest, "bytes": len(response.content)}
        print(f"{name:24s} p50 {out[name]['p50_ms']:8.1f} ms  p95 {out[name]['p95_ms']:8.1f} ms  "
              f"queries {out[name]['queries']}", file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
