"""The comparison: the same Telegram messages sent with Apprise (tgram://) to the same fake.

`apprise_send.py JOB_JSON` with {"api_base": "http://127.0.0.1:PORT", "threads": n,
"items": [[bot_token, chat_id, text], ...]}. Apprise's Telegram plugin posts to a fixed
https://api.telegram.org/bot URL: the class attribute is pointed at the fake, nothing else changes.
Prints {"sent": n, "ok": n, "seconds": s}.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> None:
    import apprise
    from apprise.plugins.telegram import NotifyTelegram

    job = json.loads(Path(sys.argv[1]).read_text())
    NotifyTelegram.notify_url = job["api_base"].rstrip("/") + "/bot"
    NotifyTelegram.request_rate_per_sec = 0  # Apprise throttles between calls by default; we do not
    items = job["items"]

    def send(item) -> bool:
        token, chat, text = item
        obj = apprise.Apprise()
        obj.add(f"tgram://{token}/{chat}/?format=text")
        return obj.notify(body=text)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=job.get("threads", 1)) as pool:
        results = list(pool.map(send, items))
    print(json.dumps({"sent": len(items), "ok": sum(bool(r) for r in results), "seconds": round(time.monotonic() - t0, 2),
                      "threads": job.get("threads", 1), "apprise": apprise.__version__}))


if __name__ == "__main__":
    main()
