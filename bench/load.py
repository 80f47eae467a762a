"""A small HTTP/1.1 load generator: C keep-alive connections, each sending its next request
as soon as the previous answer is in (closed loop), for a fixed time. Raw asyncio streams and
uvloop when installed, so the generator itself stays cheap; run it in its own process.

    python load.py --port 8000 --connections 32 --duration 5 --path /health/live
    python load.py ... --method POST --body '{"name": "item-{n}"}' --header 'Authorization: ...'

`{n}` in the body is replaced by a number unique to the run. Prints one JSON object:
requests, elapsed seconds, statuses, latency percentiles (ms), errors.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(share * (len(sorted_values) - 1)))
    return sorted_values[index]


async def connection(
    args: argparse.Namespace,
    head: bytes,
    counter: itertools.count[int],
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
    errors: list[str],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(args.host, args.port)
    except OSError as exc:
        errors.append(f"connect: {exc}")
        return
    try:
        while time.perf_counter() < deadline:
            body = b""
            if args.body is not None:
                body = args.body.replace("{n}", str(next(counter))).encode()
            request = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            started = time.perf_counter()
            writer.write(request)
            header_block = await reader.readuntil(b"\r\n\r\n")
            status = int(header_block[9:12])
            length = 0
            close = False
            for line in header_block.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if close:
                break
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    head = (
        f"{args.method} {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        + "".join(f"{header}\r\n" for header in args.header)
        + ("Content-Type: application/json\r\n" if args.body is not None else "")
    ).encode()
    counter = itertools.count(int(time.time() * 1000) % 10**9 * 1000)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + args.duration
    await asyncio.gather(
        *(
            connection(args, head, counter, deadline, latencies, statuses, errors)
            for _ in range(args.connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        "errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body", default=None, help="JSON body; {n} becomes a unique number")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds")
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(args))))


if __name__ == "__main__":
    main()
