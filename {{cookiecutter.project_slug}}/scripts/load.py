"""A small HTTP/1.1 load generator (`make bench`): keep-alive connections, each sending its
next request as soon as the previous answer is in, for a fixed time. Raw asyncio streams (and
uvloop), so the generator itself stays cheap; run it next to a server started with
`make run`, ideally on another core or machine.

    uv run python scripts/load.py http://127.0.0.1:8000/api/v1/info
    uv run python scripts/load.py http://127.0.0.1:8000/api/v1/items --connections 64 \\
        --header "Authorization: Bearer $TOKEN" --method POST --body '{"name": "item {n}"}'

`{n}` in the body becomes a number unique to the run. Prints requests per second, latency
percentiles and the answers' statuses; `--json` prints them as one JSON object instead.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvloop


@dataclass
class Target:
    host: str
    port: int
    head: bytes  # request line and headers, without Content-Length
    body: str | None
    numbers: itertools.count[int] = field(default_factory=itertools.count)

    def request(self) -> bytes:
        body = b""
        if self.body is not None:
            body = self.body.replace("{n}", str(next(self.numbers))).encode()
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the next response, and whether the server closes the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if length:
        await reader.readexactly(length)
    return status, close


async def _connection(target: Target, deadline: float, results: Results) -> None:
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as exc:
        results.errors.append(f"connect: {exc}")
        return
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(target.request())
            status, close = await _read_response(reader)
            results.latencies.append(time.perf_counter() - started)
            results.statuses[status] = results.statuses.get(status, 0) + 1
            if close:
                break
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        results.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


def _percentile_ms(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000, 2)


async def load(target: Target, connections: int, duration: float) -> dict[str, object]:
    results = Results()
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(_connection(target, deadline, results) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(results.latencies)
    return {
        "requests": len(ordered),
        "seconds": round(elapsed, 3),
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": _percentile_ms(ordered, 0.50),
        "p99_ms": _percentile_ms(ordered, 0.99),
        "max_ms": _percentile_ms(ordered, 1.0),
        "statuses": {str(status): n for status, n in sorted(results.statuses.items())},
        "errors": results.errors[:5],
    }


def target_from(args: argparse.Namespace) -> Target:
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        raise SystemExit(f"{args.url}: give a plain http:// URL (TLS belongs to your proxy)")
    port = url.port or 80
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    lines = [f"{args.method} {path} HTTP/1.1", f"Host: {url.hostname}:{port}", *args.header]
    if args.body is not None:
        lines.append("Content-Type: application/json")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    return Target(url.hostname, port, head, args.body)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("url", help="http://host:port/path?query")
    parser.add_argument("--connections", type=int, default=32, help="concurrent (32)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--body", help="a JSON body; {n} becomes a number unique to the run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = uvloop.run(load(target_from(args), args.connections, args.duration))
    if args.json:
        print(json.dumps(report))  # noqa: T201
    else:
        _show(report)
    if not report["requests"]:
        raise SystemExit("no request was answered")


def _show(report: dict[str, object]) -> None:
    print(  # noqa: T201
        f"{report['requests']} requests in {report['seconds']} s: {report['rps']} req/s, "
        f"p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, max {report['max_ms']} ms\n"
        f"statuses {report['statuses']}"
    )
    if report["errors"]:
        print(f"errors {report['errors']}")  # noqa: T201


if __name__ == "__main__":
    main()
