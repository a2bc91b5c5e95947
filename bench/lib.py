"""Shared machinery of the benchmarks: the production topology as child processes, stats, results.

Everything here runs only against 127.0.0.1. Every process started is a child in its own session and
is stopped (SIGTERM, then SIGKILL by its own pid/process group) when the scenario ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LOGS = ROOT / "var" / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable

DB_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
DB_USER = os.environ.get("BENCH_PGUSER", "postgres")
DB_TEMPLATE = "alexia_bench_template"
DB_NAME = os.environ.get("BENCH_DB", "alexia_bench")
REDIS_DB = 5
PREFIX = "benchalexia"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited before listening on {port}")
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


# --- statistics -------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values: list[float]) -> dict:
    """values in seconds -> p50/p95/p99/max in ms."""
    r = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    return {
        "n": len(values),
        "p50_ms": r(pct(values, 50)),
        "p95_ms": r(pct(values, 95)),
        "p99_ms": r(pct(values, 99)),
        "max_ms": r(max(values) if values else None),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children (MiB)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in out]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1) if total else None


def machine() -> dict:
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    return {
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_start": loadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"scenario": name, **data, "loadavg_end": loadavg()}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")
    return path


# --- processes --------------------------------------------------------------------------------------
class Proc:
    """A child process in its own session with its output in var/bench/<name>.log."""

    def __init__(self, name: str, argv: list[str], env: dict, cwd: Path = ROOT) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"\n=== {datetime.now().isoformat()} {' '.join(argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


# --- database ---------------------------------------------------------------------------------------
def _admin_conn():
    import psycopg

    return psycopg.connect(f"host={DB_HOST} user={DB_USER} dbname=postgres", autocommit=True)


def db_url(name: str = DB_NAME) -> str:
    return f"postgres://{DB_USER}@{DB_HOST}:5432/{name}"


def _drop(cur, name: str) -> None:
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [name],
    )
    cur.execute(f'DROP DATABASE IF EXISTS "{name}"')


def ensure_template(env: dict) -> None:
    """Migrate a template database once per code version (the migration files' names and sizes)."""
    import hashlib

    files = sorted(f"{p.relative_to(ROOT)}:{p.stat().st_size}" for p in ROOT.glob("*/migrations/0*.py"))
    stamp = hashlib.sha256("\n".join(files).encode()).hexdigest()
    stamp_file = LOGS / "template.stamp"
    with _admin_conn() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_TEMPLATE])
        exists = cur.fetchone() is not None
        if exists and stamp_file.exists() and stamp_file.read_text() == stamp:
            return
        _drop(cur, DB_TEMPLATE)
        cur.execute(f'CREATE DATABASE "{DB_TEMPLATE}"')
    log("migrating the template database")
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": db_url(DB_TEMPLATE)},
        check=True,
    )
    LOGS.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp)


def fresh_db(name: str = DB_NAME, template: str = DB_TEMPLATE) -> None:
    with _admin_conn() as conn, conn.cursor() as cur:
        _drop(cur, name)
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def db_exists(name: str) -> bool:
    with _admin_conn() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cur.fetchone() is not None


def drop_db(name: str) -> None:
    with _admin_conn() as conn, conn.cursor() as cur:
        _drop(cur, name)


def rename_db(old: str, new: str) -> None:
    with _admin_conn() as conn, conn.cursor() as cur:
        _drop(cur, new)
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [old]
        )
        cur.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')


# --- the topology -------------------------------------------------------------------------------------
SERVERS = {
    # name: (protocol, how it is started)
    "daphne": "asgi",
    "uvicorn": "asgi",
    "gunicorn-uvicorn": "asgi",
    "gunicorn-sync": "wsgi",
}


class Topology:
    """A private Redis (restartable without touching anyone else's), web servers, Celery workers, beat
    and the fake platforms, all on 127.0.0.1, against the bench database."""

    def __init__(self, db: str = DB_NAME) -> None:
        self.db = db
        self.redis_port = free_port()
        self.redis: Proc | None = None
        self.webs: dict[str, Proc] = {}
        self.workers: list[Proc] = []
        self.beat: Proc | None = None
        self.fakes: dict[str, tuple[Proc, int]] = {}
        self._n = 0

    # environment ------------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{REDIS_DB}"

    def env(self, *, pool: bool = True, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
        env.update(
            DATABASE_URL=db_url(self.db),
            REDIS_URL=self.redis_url,
            CHANNELS_PREFIX=PREFIX,
            DEBUG="false",
            LOG_LEVEL="WARNING",
            ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
            PROVIDER_HTTP_TIMEOUT="5",
            MEDIA_ROOT=str(LOGS / "media"),
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        # The children get the product's own defaults, never this process's settings (CONN_MAX_AGE=0 here).
        env.pop("CONN_MAX_AGE", None)
        if pool:
            env["DATABASE_POOL"] = "true"
        else:
            env.pop("DATABASE_POOL", None)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    # redis ---------------------------------------------------------------------------------------
    def start_redis(self) -> None:
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
            "--save", "", "--appendonly", "no", "--dir", str(LOGS),
        ]  # fmt: skip
        self.redis = Proc(f"redis-{self.redis_port}", argv, os.environ.copy())
        wait_port(self.redis_port, 10, self.redis.proc)

    def restart_redis(self) -> float:
        """`redis-cli shutdown nosave`, then the same start command: every queued task is lost."""
        t0 = time.monotonic()
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)
        if self.redis:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.redis.proc.wait(10)
            self.redis.stop()
        self.start_redis()
        return time.monotonic() - t0

    def flush_redis(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "-n", str(REDIS_DB), "flushdb"],
                       capture_output=True)

    def stop_workers(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers.clear()

    def stop_processes(self) -> None:
        """Everything but Redis (between scenarios)."""
        for w in self.workers:
            w.stop()
        self.workers.clear()
        if self.beat:
            self.beat.stop()
            self.beat = None
        for name in list(self.webs):
            self.webs.pop(name).stop()
        for proc, _ in self.fakes.values():
            proc.stop()
        self.fakes.clear()

    # web servers ------------------------------------------------------------------------------------
    def start_web(
        self, server: str = "daphne", *, app: str = "alexia", workers: int = 2, port: int | None = None
    ) -> int:
        """app: "alexia" (the product) or "baseline" (bench/baseline: the bare view)."""
        port = port or free_port()
        asgi = "alexia.asgi:application" if app == "alexia" else "bench.baseline.app:asgi_application"
        wsgi = "alexia.wsgi:application" if app == "alexia" else "bench.baseline.app:wsgi_application"
        b = str(VENV_BIN)
        argv = {
            "daphne": [f"{b}/daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", asgi],
            "uvicorn": [
                f"{b}/uvicorn", asgi, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--no-access-log", "--log-level", "warning", "--lifespan", "off",
            ],
            "gunicorn-uvicorn": [
                f"{b}/gunicorn", asgi, "-k", "uvicorn.workers.UvicornWorker", "-w", str(workers),
                "-b", f"127.0.0.1:{port}", "--log-level", "warning",
            ],
            "gunicorn-sync": [
                f"{b}/gunicorn", wsgi, "-w", str(workers), "-b", f"127.0.0.1:{port}",
                "--log-level", "warning", "--backlog", "2048",
            ],
        }[server]  # fmt: skip
        env = self.env(pool=SERVERS[server] == "asgi")
        if app == "baseline":
            env["DJANGO_SETTINGS_MODULE"] = "bench.baseline.settings"
        name = f"web-{app}-{server}-{port}"
        proc = Proc(name, argv, env)
        wait_port(port, 30, proc.proc)
        self.webs[name] = proc
        self._warm(port)
        return port

    def _warm(self, port: int) -> None:
        for _ in range(4):
            with contextlib.suppress(Exception):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5).read()

    def web_proc(self, port: int) -> Proc:
        return next(p for n, p in self.webs.items() if n.endswith(f"-{port}"))

    def stop_web(self, port: int) -> None:
        name = next(n for n in self.webs if n.endswith(f"-{port}"))
        self.webs.pop(name).stop()

    # celery -----------------------------------------------------------------------------------------
    def start_worker(self, *, concurrency: int = 4, queues: str = "live,default", pool: str = "prefork") -> Proc:
        self._n += 1
        ready = LOGS / f"worker-{self.redis_port}-{self._n}.ready"
        ready.unlink(missing_ok=True)
        argv = [
            PY, "-m", "celery", "-A", "bench.celery_boot", "worker", "-Q", queues, f"--pool={pool}",
            f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel=WARNING", f"--hostname=bench{self._n}-{self.redis_port}@%h",
        ]  # fmt: skip
        proc = Proc(f"worker-{self.redis_port}-{self._n}", argv, self.env(pool=False, BENCH_READY_FILE=ready))
        deadline = time.monotonic() + 60
        while not ready.exists():
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {proc.tail()}")
            time.sleep(0.1)
        self.workers.append(proc)
        return proc

    def start_beat(self) -> None:
        schedule = LOGS / f"beat-{self.redis_port}.schedule"
        for p in LOGS.glob(f"beat-{self.redis_port}.schedule*"):
            p.unlink()
        argv = [PY, "-m", "celery", "-A", "alexia", "beat", "--loglevel=WARNING", f"--schedule={schedule}"]
        self.beat = Proc(f"beat-{self.redis_port}", argv, self.env(pool=False))

    # fakes -------------------------------------------------------------------------------------------
    def start_fake(self, kind: str, **opts) -> str:
        """One fake platform per process (their ThreadingHTTPServer shares a GIL). Returns its base URL."""
        port = free_port()
        argv = [PY, str(BENCH / "fakes_proc.py"), kind, str(port), json.dumps(opts)]
        proc = Proc(f"fake-{kind}-{port}", argv, self.env(pool=False))
        wait_port(port, 20, proc.proc)
        self.fakes[kind] = (proc, port)
        return f"http://127.0.0.1:{port}"

    def fake_url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.fakes[kind][1]}"

    def fake_call(self, kind: str, action: str, payload: dict | None = None):
        url = f"{self.fake_url(kind)}/_fake/{action}"
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(url, data=data, method="POST" if data is not None or action == "reset" else "GET")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    # teardown ---------------------------------------------------------------------------------------
    def stop_all(self) -> None:
        self.stop_processes()
        if self.redis:
            subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)
            self.redis.stop()
            self.redis = None


def django_setup(env: dict) -> None:
    """Configure Django in this process against the bench database and private Redis."""
    for key in ("DATABASE_URL", "REDIS_URL", "CHANNELS_PREFIX", "DEBUG", "ALLOWED_HOSTS", "MEDIA_ROOT", "LOG_LEVEL"):
        os.environ[key] = env[key]
    os.environ.pop("DATABASE_POOL", None)
    os.environ["CONN_MAX_AGE"] = "0"  # this process only: Topology.env() drops it for the children
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alexia.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class PgWaits:
    """Samples pg_stat_activity of the bench database (every 0.2 s, in a thread) while a phase runs:
    what active backends wait on, and which statements wait on row locks. Evidence for "what bounds it"."""

    def __init__(self, db: str = DB_NAME, interval: float = 0.2) -> None:
        import threading

        self.db, self.interval = db, interval
        self.samples = 0
        self.active = 0
        self.waits: dict[str, int] = {}
        self.lock_queries: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PgWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(f"host={DB_HOST} user={DB_USER} dbname=postgres", autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, ''), left(query, 90) "
                    "FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()",
                    [self.db],
                ).fetchall()
                self.samples += 1
                for wtype, wevent, query in rows:
                    self.active += 1
                    key = f"{wtype}:{wevent}"
                    self.waits[key] = self.waits.get(key, 0) + 1
                    if wtype == "Lock":
                        self.lock_queries[query] = self.lock_queries.get(query, 0) + 1
                self._stop.wait(self.interval)

    def result(self) -> dict:
        n = max(1, self.samples)
        top = sorted(self.waits.items(), key=lambda kv: -kv[1])[:8]
        locks = sorted(self.lock_queries.items(), key=lambda kv: -kv[1])[:5]
        return {
            "samples": self.samples,
            "mean_active_backends": round(self.active / n, 2),
            "mean_backends_by_wait": {k: round(v / n, 2) for k, v in top},
            "lock_waiting_statements": {q: round(v / n, 2) for q, v in locks},
        }


class CpuAccount:
    """CPU seconds used by each part of the topology while a phase runs: every process on the machine
    is sampled once a second from /proc (utime + stime), grouped by what it is, and each process keeps
    its last sample, so one that exits during the phase still counts. Evidence for "what bounds it":
    divide by the messages handled to get CPU per message per component."""

    GROUPS = (
        ("celery workers", ("celery", "celery_boot")),
        ("message creators", ("outbound_create",)),
        ("load generator", ("loadgen", "wrk")),
        ("fake platforms", ("fakes_proc",)),
        ("web server", ("daphne", "gunicorn", "uvicorn")),
        ("postgresql", ("postgres",)),
        ("redis", ("redis-server",)),
    )

    def __init__(self, interval: float = 1.0) -> None:
        import threading

        self.interval = interval
        self.start: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _group(self, cmdline: str) -> str:
        for name, needles in self.GROUPS:
            if any(n in cmdline for n in needles):
                return name
        return "other"

    def _sample(self) -> dict[int, tuple[str, float]]:
        out = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / self._tick  # utime, stime
            out[int(entry)] = (self._group(cmd or stat), cpu)
        return out

    def __enter__(self) -> CpuAccount:
        self.start = self._sample()
        self.last = dict(self.start)
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.last.update(self._sample())
        self.seconds = time.monotonic() - self._t0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.last.update(self._sample())

    def result(self, per: int | None = None) -> dict:
        """CPU seconds per group over the phase, and per item (ms) when `per` items were handled."""
        used: dict[str, float] = {}
        for pid, (group, cpu) in self.last.items():
            before = self.start.get(pid, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + max(0.0, cpu - before)
        total = sum(used.values())
        out = {
            "wall_s": round(self.seconds, 1),
            "cpu_s": {k: round(v, 1) for k, v in sorted(used.items(), key=lambda kv: -kv[1])},
            "cpu_s_total": round(total, 1),
            "cores_busy": round(total / self.seconds, 2) if self.seconds else None,
        }
        if per:
            out["per_item_ms"] = {k: round(v / per * 1000, 2) for k, v in out["cpu_s"].items()}
            out["per_item_ms_total"] = round(total / per * 1000, 2)
        return out
