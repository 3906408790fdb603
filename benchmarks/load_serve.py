"""Bounded load check of `stocksent serve` on loopback (a benchmark script, not a test).

Starts `stocksent serve --model DIR` on 127.0.0.1 on a free port (or uses --url), then runs two
phases at a fixed concurrency over keep-alive connections: N requests of 1 message and M requests of
256 messages, real StockTwits messages from the dataset. Prints requests/s, messages/s, p50/p99
latency and the error count per phase. Every loop is bounded in count and in time; it stops itself.
The goal on a 2-core machine: p99 <= 20 ms for single messages, >= 10,000 messages/s batched.

    .venv/bin/python benchmarks/load_serve.py --model runs/demo

The client is plain asyncio streams (one HTTP/1.1 connection per concurrent client) because a
heavier client would take CPU from the server on a 2-core machine and measure itself instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"
PHASE_TIMEOUT_S = 300.0  # a phase that takes longer is cut short and reported as such


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen | None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} not healthy after {timeout:.0f} s")


def server_for(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str] = ()
) -> tuple[str, subprocess.Popen | None]:
    """(URL, process): `stocksent serve --model args.model --workers args.workers EXTRA` on a free
    loopback port, or the loopback server at `args.url` (no process)."""
    if not (args.model or args.url):
        parser.error("give --model DIR (to start a server) or --url")
    if args.url:
        url = args.url.rstrip("/")
        host = urlsplit(url).hostname or ""
        if not (host == "localhost" or host == "::1" or host.startswith("127.")):
            parser.error("--url must be a loopback address (127.x.x.x, localhost, ::1): this is a local load test")
        return url, None
    port = free_port()
    command = [str(Path(sys.executable).with_name("stocksent")), "serve", "--model", args.model, "--port", str(port)]
    command += ["--workers", str(args.workers), *extra]
    return f"http://127.0.0.1:{port}", subprocess.Popen(command, stdout=subprocess.DEVNULL)  # its log shows here


def stop_server(process: subprocess.Popen | None, timeout: float = 60.0) -> None:
    """Stop a server this script started (SIGTERM, then SIGKILL after `timeout` s)."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its live descendants (uvicorn's workers), from /proc."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)], parents[int(entry.name)] = fields, int(fields[1])
    family = {pid}
    for _ in range(3):  # server -> workers -> their helpers
        family |= {p for p, parent in parents.items() if parent in family}
    for p in family & stats.keys():
        total += (int(stats[p][11]) + int(stats[p][12])) / tick
    return total


def load_messages(path: Path, limit: int = 50_000) -> list[str]:
    from stocksent.readers import iter_batches

    messages = [t for batch in iter_batches(path) for t in batch.column("message").to_pylist() if t.strip()][:limit]
    if not messages:
        raise SystemExit(f"no messages in {path}")
    return messages


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def client(
    host: str, port: int, bodies: list[tuple[bytes, int]], next_job, latencies: list, errors: list, deadline: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (job := next_job()) is not None and time.perf_counter() < deadline:
            body, expected = bodies[job % len(bodies)]
            request = (
                b"POST /v1/predict HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body))
            ) + body
            start = time.perf_counter()
            try:
                writer.write(request)
                await writer.drain()
                status, payload = await read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as err:
                errors.append(f"connection: {err}")
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(f"HTTP {status}: {payload[:200]!r}")
            elif len(json.loads(payload)["predictions"]) != expected:
                errors.append("wrong number of predictions")
    finally:
        writer.close()


async def phase(
    host: str,
    port: int,
    messages: list[str],
    requests: int,
    batch: int,
    concurrency: int,
    server_pid: int | None = None,
) -> dict:
    rng = np.random.default_rng(0)
    bodies = []
    for _ in range(min(requests, 256)):  # distinct bodies, reused round-robin
        chosen = [messages[i] for i in rng.integers(0, len(messages), batch)]
        bodies.append((json.dumps({"messages": chosen}).encode(), batch))
    issued = iter(range(requests))
    latencies: list[float] = []
    errors: list[str] = []
    cpu_before = cpu_seconds(server_pid) if server_pid else None
    start = time.perf_counter()
    deadline = start + PHASE_TIMEOUT_S
    await asyncio.gather(
        *(
            client(host, port, bodies, lambda: next(issued, None), latencies, errors, deadline)
            for _ in range(concurrency)
        )
    )
    seconds = time.perf_counter() - start
    done = len(latencies)
    server_cpu = cpu_seconds(server_pid) - cpu_before if server_pid else None
    ms = np.asarray(latencies) * 1000
    return {
        "requests": requests,
        "completed": done,
        "messages_per_request": batch,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_s": round(done / seconds, 1),
        "messages_per_s": round(done * batch / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if done else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if done else None,
        "max_ms": round(float(ms.max()), 2) if done else None,
        "server_cpu_ms_per_request": round(server_cpu * 1000 / done, 3) if server_cpu is not None and done else None,
        "errors": len(errors) + (requests - done),
        "first_error": errors[0] if errors else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory to serve (starts `stocksent serve`)")
    parser.add_argument("--url", help="use an already running server on this machine, e.g. http://127.0.0.1:8000")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="messages to send (the StockTwits dataset)")
    parser.add_argument("--single", type=int, default=2000, help="requests of 1 message (default 2000)")
    parser.add_argument("--batched", type=int, default=200, help="requests of --batch-size messages (default 200)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--backend", default="torch", help="server scoring backend: torch or onnx")
    parser.add_argument("--threads", type=int, help="server scoring threads per worker (default: its own)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    extra = ["--backend", args.backend] + (["--threads", str(args.threads)] if args.threads else [])
    url, process = server_for(parser, args, extra)
    try:
        wait_healthy(url, process)
        messages = load_messages(Path(args.data))
        split = urlsplit(url)
        host, port = split.hostname, split.port or 80
        asyncio.run(phase(host, port, messages, 200, 1, args.concurrency))  # warm-up, not reported
        results = {
            "server": url,
            "model": args.model,
            "workers": args.workers,
            "backend": args.backend,
            "cpus": os.cpu_count(),
            "load_avg_before": os.getloadavg()[0],
        }
        pid = process.pid if process else None
        results["single"] = asyncio.run(phase(host, port, messages, args.single, 1, args.concurrency, pid))
        results["batched"] = asyncio.run(
            phase(host, port, messages, args.batched, args.batch_size, args.concurrency, pid)
        )
    finally:
        stop_server(process)
    print(
        f"server {url}  workers {args.workers}  threads {args.threads or 1}  backend {args.backend}  "
        f"cpus {os.cpu_count()}  concurrency {args.concurrency}  "
        f"load average before {results['load_avg_before']:.2f}"
    )
    print(
        f"{'phase':<8} {'requests':>8} {'msgs/req':>8} {'req/s':>8} {'msgs/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'errors':>6} {'server cpu ms/req':>17}"
    )
    for name in ("single", "batched"):
        r = results[name]
        if not r["completed"]:
            print(f"{name:<8} {0:>8} (no requests completed)")
            continue
        cpu = r["server_cpu_ms_per_request"]
        print(
            f"{name:<8} {r['completed']:>8} {r['messages_per_request']:>8} {r['requests_per_s']:>8.1f} "
            f"{r['messages_per_s']:>9.1f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['max_ms']:>7.2f} "
            f"{r['errors']:>6} "
            f"{'-' if cpu is None else f'{cpu:.3f}':>17}"
        )
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if results["single"]["errors"] or results["batched"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
