"""Attempt limits: after N failures (or attempts) within a window, a key is refused with 429.

Failed logins are counted three ways (`LoginLimiter`), and a login is refused while any
count is at its limit:
- per account and client address: one address cannot grind through a password list for
  one account, and cannot lock its owner out elsewhere;
- per client address, across accounts: one address cannot spray a common password over
  many accounts (unknown emails count too);
- per account, across addresses, with a higher limit: many addresses (a botnet) cannot
  grind through one account either. Reaching it locks the account for everyone until the
  window ends, which is why the window is short (LOGIN_WINDOW_SECONDS, 5 minutes).
Registrations are counted per client address (every attempt, not only failures).
{% if cookiecutter.redis %}
Scope: the counts live in Redis (`RedisFailureLimiter`), shared by every worker and
replica, on Redis's clock; a Redis that does not answer makes logins and registrations 503
(they fail closed). A count is checked before the password is, and recorded after: attempts
already in flight when the limit is reached (at most the password hasher's slots per
process) still finish.
{%- else %}
Scope: the counts live in this process. With WEB_CONCURRENCY workers and several replicas
an attacker gets up to (limit x workers x replicas) attempts per window; implement
`FailureLimiter` over a shared store (Redis, the database) to make the limit global.
{%- endif %}
The client address is the one uvicorn resolves, trusting X-Forwarded-For only from
FORWARDED_ALLOW_IPS: set that to your load balancer, or every client shares its address.
"""

from __future__ import annotations

{% if cookiecutter.redis -%}
import hashlib
import math
import uuid
{%- else -%}
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
{%- endif %}
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from {{ cookiecutter.project_slug }}.errors import ProblemError
{%- if cookiecutter.redis %}
from {{ cookiecutter.project_slug }}.redis import RedisStore
{%- endif %}
{%- if not cookiecutter.redis %}

# Bounds the memory an attacker can make this process hold (oldest keys are forgotten).
MAX_TRACKED_KEYS = 100_000
{%- endif %}


class TooManyAttemptsError(ProblemError):
    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many attempts; retry later.", headers={"Retry-After": str(retry_after)}
        )


class FailureLimiter(Protocol):
    async def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None when it may try now."""

    async def record_failure(self, key: str) -> None: ...

    async def reset(self, key: str) -> None: ...
{%- if not cookiecutter.redis %}


class InMemoryFailureLimiter:
    """A sliding window of failure times per key, in this process's memory."""

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque())
        horizon = self.clock() - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures

    async def retry_after(self, key: str) -> int | None:
        failures = self._recent(key)
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_seconds - self.clock()))

    async def record_failure(self, key: str) -> None:
        failures = self._recent(key)
        failures.append(self.clock())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.popitem(last=False)

    async def reset(self, key: str) -> None:
        self._failures.pop(key, None)
{%- else %}


# A key's failures are a sorted set of (unique member, time in ms on Redis's clock), each
# script one atomic step. Only the newest `max_failures` are kept: the count reaches the
# limit, and falls below it, exactly when the in-process window's would.
_RECORD_FAILURE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window, max_failures = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -max_failures - 1)
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
# Milliseconds until the oldest counted failure leaves the window, or -1 below the limit.
_RETRY_AFTER_MS = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window, max_failures = tonumber(ARGV[1]), tonumber(ARGV[2])
local horizon = '(' .. (now - window)
if redis.call('ZCOUNT', KEYS[1], horizon, '+inf') < max_failures then
    return -1
end
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], horizon, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return tonumber(oldest[2]) + window - now
"""


class RedisFailureLimiter:
    """The same sliding window as `InMemoryFailureLimiter`, in Redis: one count for every
    process that shares the store. Keys are hashed: no email or address is stored."""

    def __init__(self, store: RedisStore, max_failures: int, window_seconds: float) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_ms = max(1, round(window_seconds * 1000))
        self._record = store.client.register_script(_RECORD_FAILURE)
        self._retry_after = store.client.register_script(_RETRY_AFTER_MS)

    def _key(self, key: str) -> str:
        return self.store.key("limit", hashlib.sha256(key.encode()).hexdigest())

    async def retry_after(self, key: str) -> int | None:
        args: list[int | str] = [self.window_ms, self.max_failures]
        milliseconds = int(await self._retry_after(keys=[self._key(key)], args=args))
        return None if milliseconds < 0 else max(1, math.ceil(milliseconds / 1000))

    async def record_failure(self, key: str) -> None:
        args: list[int | str] = [self.window_ms, self.max_failures, uuid.uuid4().hex]
        await self._record(keys=[self._key(key)], args=args)

    async def reset(self, key: str) -> None:
        await self.store.client.unlink(self._key(key))
{%- endif %}


async def refuse_while_locked(limiter: FailureLimiter, key: str) -> None:
    if (seconds := await limiter.retry_after(key)) is not None:
        raise TooManyAttemptsError(seconds)


@dataclass(frozen=True)
class LoginLimiter:
    """Failed logins per account and address, per address, and per account (see above)."""

    per_account_and_address: FailureLimiter
    per_address: FailureLimiter
    per_account: FailureLimiter

    def _keys(self, email: str, client_address: str) -> list[tuple[FailureLimiter, str]]:
        account = email.lower()
        return [
            (self.per_account_and_address, f"login:{account}:{client_address}"),
            (self.per_address, f"login-address:{client_address}"),
            (self.per_account, f"login-account:{account}"),
        ]

    async def refuse_while_locked(self, email: str, client_address: str) -> None:
        waits = [
            seconds
            for limiter, key in self._keys(email, client_address)
            if (seconds := await limiter.retry_after(key)) is not None
        ]
        if waits:
            raise TooManyAttemptsError(max(waits))

    async def record_failure(self, email: str, client_address: str) -> None:
        for limiter, key in self._keys(email, client_address):
            await limiter.record_failure(key)

    async def reset(self, email: str, client_address: str) -> None:
        """After a successful login. Only this account-and-address count starts again: a
        login to one's own account must not wipe the count of a spraying address."""
        limiter, key = self._keys(email, client_address)[0]
        await limiter.reset(key)
