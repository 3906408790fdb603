"""Memory of `stocksent serve` under many clients sending the largest requests (a benchmark script).

Starts `stocksent serve --model DIR` on a free loopback port (or uses --url), then for each
concurrency in --clients: that many clients at once, each posting --rounds requests of 1,024 real
messages of about 10,000 characters (~10 MB of JSON, the most a request may hold in characters).
It samples the resident memory (RSS) of the server's process tree from /proc every 0.05 s and
prints, per concurrency: the answers (200 and 503 with Retry-After, the bound on work in flight at
work), the peak RSS, and the RSS once the server has been idle for --idle seconds (memory given
back). Every loop is bounded; it stops itself.

    .venv/bin/python benchmarks/serve_memory.py --model runs/demo --clients 30 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from load_serve import DEFAULT_DATA, load_messages, server_for, stop_server, wait_healthy
from score import TreeSampler, memory_kib, tree

REQUEST_TIMEOUT_S = 600.0


def tree_rss(pid: int) -> int:
    """Bytes resident in process `pid` and all its descendants (uvicorn's workers), from /proc."""
    return sum(memory_kib(p)[0] for p in tree(pid)) * 1024


async def post(host: str, port: int, body: bytes) -> str:
    """One request on its own connection: the status code, or the connection error."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        head = f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), REQUEST_TIMEOUT_S)
        writer.close()
    except (OSError, TimeoutError) as err:
        return f"error {type(err).__name__}"
    status = raw.split(b" ", 2)[1].decode() if raw.startswith(b"HTTP/1.1 ") else "no answer"
    return status


async def clients(host: str, port: int, body: bytes, count: int, rounds: int) -> Counter:
    async def one() -> list[str]:
        return [await post(host, port, body) for _ in range(rounds)]

    results = await asyncio.gather(*(one() for _ in range(count)))
    return Counter(status for statuses in results for status in statuses)


def big_body(messages: list[str], chars: int = 10_000) -> bytes:
    out, i = [], 0
    for _ in range(1024):
        parts: list[str] = []
        while sum(map(len, parts)) < chars:
            parts.append(messages[i % len(messages)])
            i += 1
        out.append(" ".join(parts)[:chars])
    return json.dumps({"messages": out}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory to serve (starts `stocksent serve`)")
    parser.add_argument("--url", help="a server already running on this machine (its memory is not sampled)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="messages to send (the StockTwits dataset)")
    parser.add_argument("--clients", type=int, nargs="+", default=[30, 60], help="concurrencies (default 30 60)")
    parser.add_argument("--rounds", type=int, default=2, help="requests per client (default 2)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before the memory is read again")
    args = parser.parse_args()
    url, process = server_for(parser, args)
    split = urlsplit(url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    rows = []
    try:
        wait_healthy(url, process)
        body = big_body(load_messages(Path(args.data)))
        idle_before = tree_rss(process.pid) if process else 0
        for count in args.clients:
            started = time.perf_counter()
            if process:
                with TreeSampler(process.pid, interval=0.05) as sampler:
                    answers = asyncio.run(clients(host, port, body, count, args.rounds))
                peak = int(sampler.peak_rss * 2**20)
            else:
                answers, peak = asyncio.run(clients(host, port, body, count, args.rounds)), 0
            seconds = time.perf_counter() - started
            time.sleep(args.idle)
            after = tree_rss(process.pid) if process else 0
            rows.append((count, dict(answers), peak, after, seconds))
    finally:
        stop_server(process)
    mib = 2**20
    print(
        f"server {url}  workers {args.workers}  body {len(body) / 1e6:.1f} MB (1,024 x 10,000 characters)  "
        f"cpus {os.cpu_count()}  load average {os.getloadavg()[0]:.2f}  idle RSS before {idle_before / mib:.0f} MiB"
    )
    print(f"{'clients':>7} {'requests':>8} {'answers':<34} {'peak RSS':>9} {'RSS idle':>9} {'seconds':>8}")
    for count, answers, peak, after, seconds in rows:
        shown = " ".join(f"{k}:{v}" for k, v in sorted(answers.items()))
        print(
            f"{count:>7} {count * args.rounds:>8} {shown:<34} {peak / mib:>8.0f}M {after / mib:>8.0f}M {seconds:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
