"""Create outbound messages through message_create_outbound: `outbound_create.py JOB_JSON`.

JOB_JSON: {"items": [[conversation_id, text], ...], "max_seconds": s}. Run in a few processes at once by the outbound
scenario (as API requests would arrive from several web workers); prints {"created": n, "seconds": s}.
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
    from inbox.models import Conversation
    from inbox.services.messages import message_create_outbound

    job = json.loads(Path(sys.argv[1]).read_text())
    ids = {pk for pk, _ in job["items"]}
    conversations = {c.pk: c for c in Conversation.objects.select_related("channel", "contact").filter(pk__in=ids)}
    t0 = time.monotonic()
    deadline = t0 + job.get("max_seconds", 3600)
    created = 0
    for pk, text in job["items"]:
        if time.monotonic() > deadline:
            break  # bounded: the scenario reports how many were created in the time allowed
        message_create_outbound(conversation=conversations[pk], text=text)
        created += 1
    print(json.dumps({"created": created, "seconds": round(time.monotonic() - t0, 2)}))


if __name__ == "__main__":
    main()
