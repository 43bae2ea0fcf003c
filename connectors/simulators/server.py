"""Serving a simulator (or any ASGI app) on loopback from a background thread, for tests, the benchmark and
`gateway demo`: a real uvicorn server on a real socket, so clients talk genuine HTTP to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


class ThreadedServer:
    """A uvicorn server running in its own thread and event loop, on a socket bound before it starts."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))  # bound here, so port 0 gives the real port before the server starts
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on {self.url} did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


@contextmanager
def run_in_thread(app: Any, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` for the duration of the block; yields its base URL, e.g. http://127.0.0.1:41234."""
    server = ThreadedServer(app, host, port).start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def run_in_process(system: str, *flags: str) -> Iterator[str]:
    """A simulator in a process of its own (it does not share the caller's GIL: benchmarks); yields its URL.
    `flags` are those of `python -m connectors.simulators`."""
    cmd = [sys.executable, "-m", "connectors.simulators", system, "--port", "0", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()  # it prints "<system> <url>" once serving
        if len(line) != 2:
            raise RuntimeError(f"simulator did not start: {' '.join(cmd)}")
        yield line[1]
    finally:
        proc.terminate()
        proc.wait(10)
