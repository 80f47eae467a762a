"""Password hashing: argon2id through pwdlib, off the event loop, a few at a time.

An argon2 hash or verify takes ~100 ms of CPU and 64 MiB by design. Run inline in an
`async def` it would stall every other request, so it runs in a worker thread; and at most
one per CPU runs at once, so a flood of logins queues instead of taking all the memory
and every thread of the pool that other blocking work shares.
"""

from __future__ import annotations

import os
from functools import cache

from anyio import CapacityLimiter, to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# NIST SP 800-63B-4: at least 15 characters for a password that is the only factor, no
# composition rules; an upper bound keeps a request from buying unbounded hashing work.
PASSWORD_MIN_LENGTH = 15
PASSWORD_MAX_LENGTH = 128
MAX_CONCURRENT_HASHES = os.cpu_count() or 1

password_hash = PasswordHash((Argon2Hasher(),))


@cache
def hashing_slots() -> CapacityLimiter:
    return CapacityLimiter(MAX_CONCURRENT_HASHES)  # made lazily: it needs a running loop


@cache
def dummy_hash() -> str:
    """A hash of nothing anyone knows, made by the current hasher: a login for an unknown
    email verifies against it, so it costs what a wrong password costs."""
    return password_hash.hash("dummy password for unknown accounts")


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(password_hash.hash, password, limiter=hashing_slots())


async def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """(whether it matches, a new hash when the stored one uses outdated parameters)."""
    return await to_thread.run_sync(
        password_hash.verify_and_update, password, hashed, limiter=hashing_slots()
    )
