"""Per-channel (and per-recipient) send rate limits shared by every worker process.

A token bucket with reservations: `acquire()` takes a token now or reserves the next free slot and
says how long to wait for it, so N workers together never exceed the rate. Redis holds the buckets
when REDIS_URL is set (one Lua script, Redis's own clock); otherwise an in-process bucket serves the
single embedded worker.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings

_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local offset = tonumber(ARGV[4]) or 0
local at = now + offset
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or at
tokens = math.min(burst, tokens + (at - ts) * rate)
tokens = tokens - 1
local wait = offset
if tokens < 0 then wait = offset - tokens / rate end
if wait > max_wait then return {'0', tostring(wait)} end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + wait) * 1000) + 1000)
return {'1', tostring(wait)}
"""


# A send of a burst-1 bucket happens `ARGV[2]` seconds from now, later than the slot it reserved: the
# bucket's next free slot moves to at least one interval after it (never earlier than it was).
_PUSH_BACK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local at = now + tonumber(ARGV[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil or ts == nil or ts + (1 - tokens) / rate < at + 1 / rate then
  redis.call('HSET', KEYS[1], 'tokens', '0', 'ts', tostring(at))
  redis.call('PEXPIRE', KEYS[1], math.ceil((1 / rate + (at - now)) * 1000) + 1000)
end
return 1
"""


@dataclass(frozen=True)
class Reservation:
    granted: bool  # a slot is reserved: send after `wait` seconds
    wait: float  # seconds until the slot (granted), or until one could be had (not granted)


class _LocalBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, rate: float, burst: float, max_wait: float, not_before: float) -> Reservation:
        with self._lock:
            at = time.monotonic() + not_before
            tokens, ts = self._buckets.get(key, (burst, at))
            tokens = min(burst, tokens + (at - ts) * rate) - 1
            wait = not_before - tokens / rate if tokens < 0 else not_before
            if wait > max_wait:
                return Reservation(False, wait)
            self._buckets[key] = (tokens, at)
            return Reservation(True, wait)

    def push_back(self, key: str, rate: float, after: float) -> None:
        with self._lock:
            at = time.monotonic() + after
            tokens, ts = self._buckets.get(key, (None, None))
            if tokens is None or ts + (1 - tokens) / rate < at + 1 / rate:
                self._buckets[key] = (0.0, at)


_local = _LocalBuckets()
_redis_client = None
_redis_script = None
_redis_push_back = None


def _redis():
    global _redis_client, _redis_script, _redis_push_back
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        _redis_script = _redis_client.register_script(_LUA)
        _redis_push_back = _redis_client.register_script(_PUSH_BACK_LUA)
    return _redis_script


def push_back(key: str, *, rate: float, after: float = 0.0) -> None:
    """A send of burst-1 bucket `key` happens `after` seconds from now, later than its reserved slot:
    the bucket's next slot becomes at least one interval after that send. A late send to a Telegram
    chat so keeps the chat's next message a full second behind it, without waiting for a new slot."""
    if settings.REDIS_URL:
        _redis()
        _redis_push_back(keys=[f"alexia:rl:{key}"], args=[rate, after])
        return
    _local.push_back(key, rate, after)


def acquire(
    key: str, *, rate: float, burst: float | None = None, max_wait: float = 1.0, not_before: float = 0.0
) -> Reservation:
    """Reserve one send on bucket `key` at `rate` per second, `not_before` seconds from now at the
    earliest: a send bound by two buckets (the channel's, then the recipient's) reserves the second at
    the slot the first gave, so neither bucket records a send earlier than it happens.

    burst defaults to 1: sends are spaced 1/rate apart, so no one-second window ever holds more than
    `rate` of them. A bucket of one second's worth lets a full bucket plus a second's refill through in
    the same second, up to twice the platform's limit (measured in bench/: Twilio 17-18 sends in one
    second on a 10/s channel, Telegram 55 on a 30/s bot after a Redis restart emptied the buckets)."""
    burst = max(1.0, burst if burst is not None else 1.0)
    if settings.REDIS_URL:
        granted, wait = _redis()(keys=[f"alexia:rl:{key}"], args=[rate, burst, max_wait, not_before])
        return Reservation(granted in (b"1", "1"), float(wait))
    return _local.acquire(key, rate, burst, max_wait, not_before)
