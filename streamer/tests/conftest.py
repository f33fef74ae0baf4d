"""Shared fixtures: the release binary of the service on a free port, a loopback media
origin with generated sources, and small network helpers (free ports, hung listeners)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from media import Origin, make_sources

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "rust-transcoder"
START_TIMEOUT_SECS = 10.0


def free_port() -> int:
    """A loopback port nothing listens on (bound, read and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AsyncListener:
    """A loopback asyncio server for scripted peers (`serve` handles one connection);
    `stop` cancels every handler and closes every connection it saw."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The listener's base URL."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> str:
        """Starts listening on a free port; returns the URL."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.url

    async def stop(self) -> None:
        """Stops listening and ends every connection."""
        assert self.server is not None
        self.server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in self.writers), return_exceptions=True)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handles one connection (closed afterwards)."""
        raise NotImplementedError

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self.writers.add(writer)
        try:
            await self.serve(reader, writer)
        finally:
            writer.close()
            self._handlers.discard(handler)


def ffmpeg_children() -> list[str]:
    """The ffmpeg processes this test process started that still exist (even as zombies)."""
    # ps exits with 1 when no process matches.
    listed = subprocess.run(
        ["ps", "-o", "pid=,comm=", "--ppid", str(os.getpid())], capture_output=True, text=True, check=False
    )
    return [line for line in listed.stdout.splitlines() if "ffmpeg" in line]


@dataclass
class ServiceProcess:
    """The release binary serving on a loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    log: list[str] = field(default_factory=list)
    log_reader: threading.Thread | None = None

    @classmethod
    def start(cls, **env: str) -> ServiceProcess:
        """Starts the binary with `TRANSCODER_*` settings `env` and waits for /health."""
        port = free_port()
        settings = {
            "TRANSCODER_BIND": f"127.0.0.1:{port}",
            "TRANSCODER_ALLOW_NETS": "127.0.0.0/8",
            "RUST_LOG": "warn",
            **env,
        }
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run `cargo build --release` first")
        process = subprocess.Popen(
            [str(BINARY)],
            env={**os.environ, **settings},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        service = cls(process, f"http://127.0.0.1:{port}")
        service.log_reader = threading.Thread(target=service._drain_log, daemon=True)
        service.log_reader.start()
        service._wait_healthy()
        return service

    def _drain_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.decode(errors="replace"))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"service exited: {''.join(self.log)}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        pytest.fail("service did not become healthy")

    def kill(self) -> None:
        """Kills the process at once (SIGKILL), as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stops the process if it still runs, and closes its log pipe."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.log_reader is not None:
            self.log_reader.join(timeout=5)
        assert self.process.stderr is not None
        self.process.stderr.close()

    def metric(self, name: str) -> float:
        """The value of one series of /metrics (exact name with labels), 0 if absent."""
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of generated sources (see `media.SOURCES`)."""
    directory = tmp_path_factory.mktemp("media")
    make_sources(directory)
    return directory


@pytest.fixture(scope="session")
def origin(media_dir: Path) -> Iterator[Origin]:
    """The loopback origin serving `media_dir`."""
    server = Origin.start(media_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service() -> Iterator[ServiceProcess]:
    """One release binary shared by the tests that do not stop it."""
    running = ServiceProcess.start()
    yield running
    running.stop()


@pytest.fixture
def start_service() -> Iterator[Callable[..., ServiceProcess]]:
    """Starts services private to one test (`start_service(**env)`), stopped after it."""
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        running = ServiceProcess.start(**env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def dead_url() -> str:
    """A service URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A service URL that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()
