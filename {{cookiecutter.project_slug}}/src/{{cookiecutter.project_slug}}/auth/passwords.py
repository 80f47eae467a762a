"""Passwords: argon2id through pwdlib, off the event loop, a few at a time, with load
shedding; Unicode normalisation; and refusal of passwords that are easy to guess.

An argon2 hash or verify takes ~100 ms of CPU and 64 MiB by design. Run inline in an
`async def` it would stall every other request, so it runs in a worker thread; and at most
one per CPU runs at once, so a flood of logins cannot take all the memory and every thread
of the pool that other blocking work shares. The queue for those slots is bounded too: a
request that finds MAX_WAITING_HASHES already waiting, or gets no slot within
MAX_HASH_WAIT_SECONDS, is answered 503 with Retry-After at once. A flood of registrations
then costs a real login a few seconds at most, not a queue without end.

Every password is normalised to Unicode NFC before it is hashed, verified or judged, so
"é" typed as one code point or as "e" plus a combining accent is the same password.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections.abc import Callable
from functools import cache

import anyio
from anyio import CapacityLimiter, to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn import zxcvbn

from {{ cookiecutter.project_slug }}.errors import ProblemError, ServiceUnavailableError

# NIST SP 800-63B-4: at least 15 characters for a password that is the only factor, no
# composition rules; an upper bound keeps a request from buying unbounded hashing work.
PASSWORD_MIN_LENGTH = 15
PASSWORD_MAX_LENGTH = 128
MAX_CONCURRENT_HASHES = os.cpu_count() or 1
# About two seconds of queued work per slot, and never more than two seconds of waiting.
MAX_WAITING_HASHES = 16 * MAX_CONCURRENT_HASHES
MAX_HASH_WAIT_SECONDS = 2.0
OVERLOADED_RETRY_AFTER_SECONDS = 2

# Strength: zxcvbn (Dropbox's estimator, the Python port) ships frequency lists of leaked
# passwords, English words, names and keyboard patterns, and works offline. It scores how
# many guesses a password needs, so it refuses long common ones ("passwordpassword",
# "iloveyouiloveyou", "qwertyuiopasdfgh") that a length rule lets through, and a plain list
# would miss their variants. Score 3 means at least 10^8 guesses.
MIN_STRENGTH_SCORE = 3
# zxcvbn's cost grows with length (~0.3 s of CPU for 128 random characters): judge the
# first 64; a password whose first 64 characters are strong is strong.
STRENGTH_CHECKED_LENGTH = 64
# zxcvbn keeps the user inputs of a call in a module-level dictionary: one call at a time.
_strength_lock = threading.Lock()

password_hash = PasswordHash((Argon2Hasher(),))


class WeakPasswordError(ProblemError):
    """A password that is easy to guess. The message never repeats the password."""

    status = 422  # Unprocessable Content (HTTPStatus has that name only from Python 3.13)


class HashingQueue:
    """`slots` hashes at once; a bounded number of waiters, each for a bounded time."""

    def __init__(self, slots: int, max_waiting: int, max_wait_seconds: float) -> None:
        self.slots = CapacityLimiter(slots)
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self.waiting = 0

    async def run[T, *Args](self, function: Callable[[*Args], T], *args: *Args) -> T:
        """`function(*args)` in a worker thread once a slot is free; 503 when overloaded."""
        if self.waiting >= self.max_waiting:
            raise _overloaded()
        self.waiting += 1
        try:
            with anyio.move_on_after(self.max_wait_seconds) as waited:
                await self.slots.acquire()
        finally:
            self.waiting -= 1
        if waited.cancelled_caught:
            raise _overloaded()
        try:
            return await to_thread.run_sync(function, *args)
        finally:
            self.slots.release()


def _overloaded() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "The service is busy; retry shortly.",
        headers={"Retry-After": str(OVERLOADED_RETRY_AFTER_SECONDS)},
    )


@cache
def hashing_queue() -> HashingQueue:
    # Made lazily: its limiter belongs to the running event loop.
    return HashingQueue(MAX_CONCURRENT_HASHES, MAX_WAITING_HASHES, MAX_HASH_WAIT_SECONDS)


def normalized(password: str) -> str:
    return unicodedata.normalize("NFC", password)


@cache
def dummy_hash() -> str:
    """A hash of nothing anyone knows, made by the current hasher: a login for an unknown
    email verifies against it, so it costs what a wrong password costs."""
    return password_hash.hash("dummy password for unknown accounts")


async def hash_password(password: str) -> str:
    return await hashing_queue().run(password_hash.hash, normalized(password))


async def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """(whether it matches, a new hash when the stored one uses outdated parameters)."""
    return await hashing_queue().run(password_hash.verify_and_update, normalized(password), hashed)


def _weakness(password: str, user_inputs: list[str]) -> str | None:
    """Why `password` is easy to guess, or None when it is not."""
    with _strength_lock:
        result = zxcvbn(password[:STRENGTH_CHECKED_LENGTH], user_inputs=user_inputs)
    if result["score"] >= MIN_STRENGTH_SCORE:
        return None
    warning: str = result["feedback"]["warning"]
    return warning or "It is a common pattern."


async def check_password_strength(password: str, *, email: str) -> None:
    """WeakPasswordError (422) for a password that is common, a pattern, or the email."""
    local_part = email.partition("@")[0]
    weakness = await hashing_queue().run(_weakness, normalized(password), [email, local_part])
    if weakness is not None:
        raise WeakPasswordError(
            f"The password is too easy to guess: {weakness} "
            "Use a passphrase of several unrelated words."
        )
