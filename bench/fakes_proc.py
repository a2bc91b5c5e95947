"""Serve one fake platform (providers/fakes) on a port until killed: `fakes_proc.py KIND PORT OPTS_JSON`.

The benchmark drives it over HTTP (/_fake/requests, /_fake/fail, /_fake/reset).
"""

import json
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alexia.settings")


def main() -> None:
    import http.server

    # The default listen backlog (5) drops SYNs under load: the client then waits a 1 s retransmit.
    http.server.ThreadingHTTPServer.request_queue_size = 1024
    kind, port, opts = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}")
    from providers.fakes.server import FakePlatform, RecordedRequest

    # Record the status each request was answered with, so the benchmark can tell a delivered send
    # from one the fake refused on purpose (fail_next) when it counts duplicates.
    original_dispatch = FakePlatform._dispatch

    def dispatch(self, req):
        resp = original_dispatch(self, req)
        req.status = resp.status
        return resp

    original_as_dict = RecordedRequest.as_dict
    FakePlatform._dispatch = dispatch
    RecordedRequest.as_dict = lambda self: {**original_as_dict(self), "status": getattr(self, "status", None)}

    if kind == "whatsapp":
        from providers.fakes.whatsapp import FakeWhatsApp

        fake = FakeWhatsApp(access_token=opts.get("access_token", "bench-wa-token"), port=port)
        for number in opts.get("phone_number_ids", []):
            fake.add_phone_number(number, "+1 555-010-0000", "Bench")
    elif kind == "telegram":
        from providers.fakes.telegram import FakeTelegram

        original_reset = FakeTelegram.reset

        def reset(self):
            original_reset(self)
            self.require_https = False  # the benchmark's webhook URLs are plain http://127.0.0.1

        FakeTelegram.reset = reset
        fake = FakeTelegram(port=port)
        fake.require_https = False
    elif kind == "twilio":
        from providers.fakes.twilio import FakeTwilio

        fake = FakeTwilio(opts["account_sid"], opts["auth_token"], port=port)
    else:
        raise SystemExit(f"unknown fake {kind}")
    fake.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    fake.stop()


if __name__ == "__main__":
    main()
