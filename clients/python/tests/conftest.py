"""A real `runlog serve` for the client's tests: started on a free port over a temporary storage
root, and SIGKILLed and restarted at will on the same port and root."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]


def runlog_binary() -> str:
    """`RUNLOG_BINARY`, else the package's debug build (`swift build` makes it)."""
    binary = os.environ.get("RUNLOG_BINARY") or str(REPOSITORY / ".build" / "debug" / "runlog")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no runlog binary at {binary}: run `swift build` first, or set RUNLOG_BINARY")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, storage: str):
        self.storage = storage
        self.port = free_port()
        self.process = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [runlog_binary(), "serve", "--port", str(self.port), "--storage", self.storage, "--progress-interval", "100ms"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            if "listening on" in line:
                break
        else:
            raise RuntimeError("runlog serve did not start: " + "".join(seen))
        # Keep draining its log so that it never blocks on a full pipe.
        drain = self.process.stdout
        threading.Thread(target=lambda: [None for _ in drain], daemon=True).start()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def server():
    storage = tempfile.mkdtemp(prefix="runlog-python-")
    running = Server(storage)
    yield running
    running.stop()
    shutil.rmtree(storage)
