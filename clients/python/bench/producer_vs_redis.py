"""One Python Producer emitting one event per emit() call, against redis-py calling XADD once
per event on a local Redis: events per second, alternated repetitions in one run, medians.

    python3 clients/python/bench/producer_vs_redis.py [--events 20000] [--repetitions 3]

Needs a release build of runlog (swift build -c release --product runlog), redis-server
(Debian's redis-server package) and redis-py (pip install redis).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPOSITORY / "clients" / "python"))

import redis  # noqa: E402

from runlog_client import Producer  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(arguments, ready: str) -> subprocess.Popen:
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if ready in line:
            return process
    raise RuntimeError(f"{arguments[0]} did not start")


def payload(index: int) -> dict:
    return {"line": f"step {index}: compiling module {index % 97} of the build", "level": "info"}


def producer_rate(url: str, run: str, events: int) -> float:
    with Producer(url, workspace="bench", run=run) as producer:
        started = time.perf_counter()
        for index in range(events):
            producer.emit("console.line", payload(index))
        producer.flush()
        return events / (time.perf_counter() - started)


def redis_rate(client: "redis.Redis", stream: str, events: int) -> float:
    started = time.perf_counter()
    for index in range(events):
        client.xadd(stream, {"type": "console.line", "payload": json.dumps(payload(index), separators=(",", ":"))})
    return events / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--runlog", default=str(REPOSITORY / ".build" / "release" / "runlog"))
    options = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="runlog-bench-python-")
    processes = []
    try:
        servers = {}
        for durability in ("fsync", "flush"):
            port = free_port()
            processes.append(start([options.runlog, "serve", "--port", str(port), "--storage", f"{scratch}/{durability}", "--durability", durability], "listening on"))
            servers[durability] = f"http://127.0.0.1:{port}"
        redis_port = free_port()
        processes.append(start(["redis-server", "--port", str(redis_port), "--dir", scratch, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"], "Ready to accept connections"))
        client = redis.Redis(port=redis_port)

        results = {"runlog, --durability fsync": [], "runlog, --durability flush": [], "redis-py XADD (AOF, fsync every second)": []}
        for repetition in range(options.repetitions):
            results["runlog, --durability fsync"].append(producer_rate(servers["fsync"], f"run_{repetition}", options.events))
            results["runlog, --durability flush"].append(producer_rate(servers["flush"], f"run_{repetition}", options.events))
            results["redis-py XADD (AOF, fsync every second)"].append(redis_rate(client, f"run:{repetition}", options.events))
        baseline = statistics.median(results["redis-py XADD (AOF, fsync every second)"])
        print(f"# one Python producer, one event per call ({options.events:,} events, medians of {options.repetitions})\n")
        print("| producer | events/s | against redis-py XADD |")
        print("|---|---:|---:|")
        for name, rates in results.items():
            rate = statistics.median(rates)
            print(f"| {name} | {rate:,.0f} | {rate / baseline:.1f}x |")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
