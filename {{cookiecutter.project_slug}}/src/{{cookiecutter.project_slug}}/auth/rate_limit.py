"""Failed-login limits: after N failures within a window, a key is refused with 429.

The key is the account and the client address together, so one attacker cannot lock a
user out from everywhere, and one address cannot grind through a password list.

Scope: the counts live in this process. With WEB_CONCURRENCY workers and several replicas
an attacker gets up to (limit x workers x replicas) attempts per window; implement
`FailureLimiter` over a shared store (Redis, the database) to make the limit global.
The client address is the one uvicorn resolves, trusting X-Forwarded-For only from
FORWARDED_ALLOW_IPS: set that to your load balancer, or every client shares its address.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol

from {{ cookiecutter.project_slug }}.errors import ProblemError

# Bounds the memory an attacker can make this process hold (oldest keys are forgotten).
MAX_TRACKED_KEYS = 100_000


class TooManyAttemptsError(ProblemError):
    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed attempts; retry later.", headers={"Retry-After": str(retry_after)}
        )


class FailureLimiter(Protocol):
    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None when it may try now."""

    def record_failure(self, key: str) -> None: ...

    def reset(self, key: str) -> None: ...


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

    def retry_after(self, key: str) -> int | None:
        failures = self._recent(key)
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_seconds - self.clock()))

    def record_failure(self, key: str) -> None:
        failures = self._recent(key)
        failures.append(self.clock())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)


def refuse_while_locked(limiter: FailureLimiter, key: str) -> None:
    if (seconds := limiter.retry_after(key)) is not None:
        raise TooManyAttemptsError(seconds)
