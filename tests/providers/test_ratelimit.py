"""Per-channel send rate limits shared across processes (Redis) and in-process (embedded mode)."""

import threading
import time
import uuid

import pytest

from providers import ratelimit


def _hammer(key: str, rate: float, threads: int, per_thread: int) -> list[float]:
    """Each thread reserves slots and 'sends' at its slot time; returns every send time."""
    times: list[float] = []
    lock = threading.Lock()

    def run():
        for _ in range(per_thread):
            while True:
                reservation = ratelimit.acquire(key, rate=rate, max_wait=0.5)
                if reservation.granted:
                    time.sleep(reservation.wait)
                    with lock:
                        times.append(time.monotonic())
                    break
                time.sleep(min(reservation.wait, 0.2))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    return sorted(times)


def _max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("backend", ["redis", "local"])
def test_concurrent_senders_never_exceed_the_rate(settings, backend):
    if backend == "local":
        settings.REDIS_URL = ""
    rate = 20.0
    times = _hammer(f"test:{uuid.uuid4()}", rate=rate, threads=6, per_thread=10)
    assert len(times) == 60
    # Sends are spaced 1/rate apart (burst 1): no one-second window holds more than the rate (one
    # slot of timer slack), and 60 sends take at least 59 intervals.
    assert _max_in_window(times, 1.0) <= rate + 1
    assert times[-1] - times[0] >= 59 / rate - 0.1


def test_a_full_bucket_refuses_without_consuming(settings):
    key = f"test:{uuid.uuid4()}"
    for _ in range(5):
        assert ratelimit.acquire(key, rate=5, burst=5, max_wait=0).granted
    refused = ratelimit.acquire(key, rate=5, burst=5, max_wait=0)
    assert not refused.granted
    assert 0 < refused.wait <= 0.25
    time.sleep(refused.wait + 0.05)
    assert ratelimit.acquire(key, rate=5, burst=5, max_wait=0).granted


@pytest.mark.parametrize("backend", ["redis", "local"])
def test_a_slot_reserved_for_later_counts_from_that_moment(settings, backend):
    if backend == "local":
        settings.REDIS_URL = ""
    key = f"test:{uuid.uuid4()}"
    later = ratelimit.acquire(key, rate=1.0, max_wait=5, not_before=0.7)
    assert later.granted and later.wait == pytest.approx(0.7, abs=0.05)
    # The next send of this bucket comes a full interval after that slot, not after the reservation.
    following = ratelimit.acquire(key, rate=1.0, max_wait=5)
    assert following.wait == pytest.approx(1.7, abs=0.05)
    # A later floor than the bucket's next slot wins; an earlier one changes nothing.
    assert ratelimit.acquire(key, rate=1.0, max_wait=5, not_before=4.0).wait == pytest.approx(4.0, abs=0.05)
    assert ratelimit.acquire(key, rate=1.0, max_wait=9, not_before=1.0).wait == pytest.approx(5.0, abs=0.05)
    refused = ratelimit.acquire(key, rate=1.0, max_wait=5, not_before=1.0)
    assert not refused.granted and refused.wait == pytest.approx(6.0, abs=0.05)


@pytest.mark.parametrize("backend", ["redis", "local"])
def test_a_late_send_pushes_the_next_slot_a_full_interval_behind_it(settings, backend):
    if backend == "local":
        settings.REDIS_URL = ""
    key = f"test:{uuid.uuid4()}"
    assert ratelimit.acquire(key, rate=1.0, max_wait=5).wait == pytest.approx(0.0, abs=0.05)
    # The send of that slot goes out 0.5 s late: the next one waits for 1.5 s, not 1 s.
    ratelimit.push_back(key, rate=1.0, after=0.5)
    assert ratelimit.acquire(key, rate=1.0, max_wait=5).wait == pytest.approx(1.5, abs=0.05)
    # A push back to before the bucket's next free slot changes nothing.
    ratelimit.push_back(key, rate=1.0, after=0.0)
    assert ratelimit.acquire(key, rate=1.0, max_wait=5).wait == pytest.approx(2.5, abs=0.05)
