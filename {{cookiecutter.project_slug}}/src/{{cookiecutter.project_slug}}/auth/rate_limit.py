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
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from {{ cookiecutter.project_slug }}.errors import ProblemError

# Bounds the memory an attacker can make this process hold (oldest keys are forgotten).
MAX_TRACKED_KEYS = 100_000


class TooManyAttemptsError(ProblemError):
    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many attempts; retry later.", headers={"Retry-After": str(retry_after)}
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

    def refuse_while_locked(self, email: str, client_address: str) -> None:
        waits = [
            seconds
            for limiter, key in self._keys(email, client_address)
            if (seconds := limiter.retry_after(key)) is not None
        ]
        if waits:
            raise TooManyAttemptsError(max(waits))

    def record_failure(self, email: str, client_address: str) -> None:
        for limiter, key in self._keys(email, client_address):
            limiter.record_failure(key)

    def reset(self, email: str, client_address: str) -> None:
        """After a successful login. Only this account-and-address count starts again: a
        login to one's own account must not wipe the count of a spraying address."""
        limiter, key = self._keys(email, client_address)[0]
        limiter.reset(key)
