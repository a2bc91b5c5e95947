"""`make bench`: the benchmarks of issue 7 against the production topology on this machine.

    .venv/bin/python bench/run.py                      # every scenario (about 20 minutes)
    .venv/bin/python bench/run.py --quick              # every scenario, small and short (about 3 minutes)
    .venv/bin/python bench/run.py --only inbound,fanout

Writes bench/results/<scenario>.json and the table in bench/README.md. Everything runs on 127.0.0.1
against a database of its own (alexia_bench*) and a private Redis on a free port, Redis db 5; every
process it starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import lib  # noqa: E402

SCENARIOS = ["inbound", "outbound", "faults", "inbox", "fanout"]


@dataclass
class Context:
    topo: lib.Topology
    quick: bool
    partial: dict = field(default_factory=dict)  # figures measured so far, kept if a later step fails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts and short steps (about 3 minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios among {','.join(SCENARIOS)}")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the table in bench/README.md")
    args = parser.parse_args(argv)
    selected = [s.strip() for s in args.only.split(",") if s.strip()] or [
        s for s in SCENARIOS if not (args.quick and s == "faults")  # faults waits for the sweepers: minutes
    ]
    unknown = set(selected) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    topo = lib.Topology()
    failures = 0
    started = time.monotonic()
    try:
        topo.start_redis()
        env = topo.env()
        lib.ensure_template(env)
        lib.fresh_db()
        lib.django_setup(env)
        from django.db import connections

        for name in selected:
            lib.log(f"--- {name}{' (quick)' if args.quick else ''} --- load {lib.loadavg()}")
            connections.close_all()
            lib.fresh_db()
            topo.flush_redis()
            info = lib.machine()
            t0 = time.monotonic()
            ctx = Context(topo=topo, quick=args.quick)
            try:
                module = importlib.import_module(f"bench.scenarios.{name}")
                result = module.run(ctx)
                status = "ok"
            except Exception:  # noqa: BLE001 - one scenario's failure must not lose the others' results
                failures += 1
                status = "error"
                result = {**ctx.partial, "error": traceback.format_exc()}
                lib.log(f"{name} failed:\n{result['error']}")
            finally:
                topo.stop_processes()
            lib.write_result(name, {"status": status, "quick": args.quick, "machine": info,
                                    "wall_s": round(time.monotonic() - t0, 1), **result})
        connections.close_all()
    finally:
        topo.stop_all()
    if not args.no_readme:
        from bench import report

        report.update_readme()
    lib.log(f"done in {time.monotonic() - started:.0f} s, {failures} scenario(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
