"""The engine host supervised as a real child process: start, restart, stop."""

import asyncio
from collections.abc import Iterator
import logging
import os
from pathlib import Path
import signal
import sys

import pytest

from custom_components.private_voice import engine_host
from custom_components.private_voice.protocol.client import (
    Endpoint,
    PeerError,
    async_ping,
)
from custom_components.private_voice.supervisor import (
    EngineHostError,
    EngineHostProcess,
)

LOGGER_NAME = "tests.engine_host"
# Generous: a guard against a hang, not a measurement.
GUARD = 120


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Skip Home Assistant: the supervisor runs without it."""


@pytest.fixture(autouse=True)
def setup_core() -> None:
    """Skip Home Assistant: the supervisor runs without it."""


@pytest.fixture(autouse=True)
def debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    """Capture everything the supervisor logs, down to debug."""
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """Return an empty models folder: the packaged tiny.en and joe are found anyway.

    Its path also marks this test's engine host processes in /proc.
    """
    return tmp_path / "models"


class Callbacks:
    """Records on_ready / on_exit calls, in order."""

    def __init__(self) -> None:
        """Start with nothing recorded."""
        self.calls: list[str] = []
        self._changed = asyncio.Event()

    def on_ready(self) -> None:
        """Record that the host serves."""
        self.calls.append("ready")
        self._changed.set()

    def on_exit(self) -> None:
        """Record that the host went away."""
        self.calls.append("exit")
        self._changed.set()

    async def until(self, *calls: str) -> None:
        """Wait until exactly ``calls`` have been made."""
        async with asyncio.timeout(GUARD):
            while len(self.calls) < len(calls):
                self._changed.clear()
                await self._changed.wait()
        assert self.calls == list(calls)


@pytest.fixture
def callbacks() -> Callbacks:
    """Fresh callbacks for one supervised host."""
    return Callbacks()


def _host(  # noqa: PLR0913 - mirrors the keyword-only constructor
    callbacks: Callbacks,
    models_dir: Path,
    port: int,
    *,
    scheme: str = "tcp",
    start_timeout: float = 300,
    health_interval: float = 30,
    health_failures: int = 3,
) -> EngineHostProcess:
    """Supervise ``python -m engine_host`` on ``port`` as Home Assistant does."""
    return EngineHostProcess(
        command=[
            sys.executable,
            "-m",
            "engine_host",
            "--uri",
            f"{scheme}://127.0.0.1:{port}",
            "--models-dir",
            str(models_dir),
            "--stt-model",
            "tiny.en",
            "--debug",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(engine_host.__file__).parent.parent)},
        endpoint=Endpoint("127.0.0.1", port),
        on_ready=callbacks.on_ready,
        on_exit=callbacks.on_exit,
        logger=logging.getLogger(LOGGER_NAME),
        start_timeout=start_timeout,
        health_interval=health_interval,
        health_failures=health_failures,
    )


def _processes(models_dir: Path) -> set[int]:
    """Pids of the engine host processes that use ``models_dir``."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(models_dir).encode() in cmdline.read_bytes():
                pids.add(int(cmdline.parent.name))
        except OSError:  # ended while we looked
            continue
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _records(caplog: pytest.LogCaptureFixture, level: int) -> Iterator[str]:
    return (
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER_NAME and record.levelno == level
    )


@pytest.fixture
async def host(
    socket_enabled: None, free_port: int, models_dir: Path, callbacks: Callbacks
) -> EngineHostProcess:
    """Return a supervised engine host, not started yet."""
    return _host(callbacks, models_dir, free_port)


async def test_start_serves_and_stop_leaves_nothing(
    host: EngineHostProcess,
    free_port: int,
    callbacks: Callbacks,
    models_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Started, the host answers; stopped (twice), no process is left."""
    await host.async_start()
    assert host.running
    pid = host.pid
    assert pid is not None
    assert _processes(models_dir) == {pid}
    assert callbacks.calls == ["ready"]
    await async_ping(Endpoint("127.0.0.1", free_port))

    # The child's log lines arrive with their own levels.
    assert any(
        "Offering speech-to-text ['tiny.en']" in m
        for m in _records(caplog, logging.INFO)
    )
    assert any(
        "Loading speech-to-text model tiny.en" in m
        for m in _records(caplog, logging.DEBUG)
    )

    await host.async_stop()
    assert not host.running
    assert host.pid is None
    assert not _alive(pid)
    assert not _processes(models_dir)
    with pytest.raises(PeerError):
        await async_ping(Endpoint("127.0.0.1", free_port))
    await host.async_stop()

    # Stopping is no outage.
    assert callbacks.calls == ["ready"]
    assert host.restarts == 0
    assert not list(_records(caplog, logging.WARNING))


async def test_restarts_a_killed_host(
    host: EngineHostProcess,
    free_port: int,
    callbacks: Callbacks,
    models_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGKILL: on_exit once, one warning, a new process, on_ready, answers again."""
    await host.async_start()
    pid = host.pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    await callbacks.until("ready", "exit", "ready")

    assert host.running
    assert host.restarts == 1
    assert host.pid not in (None, pid)
    assert _processes(models_dir) == {host.pid}
    await async_ping(Endpoint("127.0.0.1", free_port))
    assert list(_records(caplog, logging.WARNING)) == [
        "The engine host stopped unexpectedly (killed by SIGKILL); restarting it"
    ]
    assert (
        list(_records(caplog, logging.INFO)).count("The engine host is serving again")
        == 1
    )

    await host.async_stop()
    assert not _processes(models_dir)


async def test_kills_and_restarts_a_hung_host(
    socket_enabled: None,
    free_port: int,
    models_dir: Path,
    callbacks: Callbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A host that stops answering ping is killed and started again."""
    host = _host(
        callbacks, models_dir, free_port, health_interval=0.1, health_failures=2
    )
    await host.async_start()
    pid = host.pid
    assert pid is not None

    os.kill(pid, signal.SIGSTOP)
    await callbacks.until("ready", "exit", "ready")

    assert not _alive(pid)
    assert host.restarts == 1
    await async_ping(Endpoint("127.0.0.1", free_port))
    assert list(_records(caplog, logging.WARNING)) == [
        "The engine host did not answer 2 pings in a row; restarting it"
    ]

    await host.async_stop()
    assert not _processes(models_dir)


async def test_start_fails_with_the_hosts_own_error(
    socket_enabled: None, models_dir: Path, callbacks: Callbacks
) -> None:
    """A host that exits at once: the error carries what it wrote on stderr."""
    host = _host(callbacks, models_dir, 1, scheme="udp")

    with pytest.raises(EngineHostError) as failure:
        await host.async_start()

    message = str(failure.value)
    assert message.startswith("the engine host exited (exit code 2)\n")
    assert "--uri must be tcp://HOST:PORT, not udp://127.0.0.1:1" in message
    assert not host.running
    assert not _processes(models_dir)
    assert callbacks.calls == []
    await host.async_stop()


async def test_start_fails_on_a_busy_port(
    socket_enabled: None,
    busy_port: int,
    models_dir: Path,
    callbacks: Callbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The host's error line is logged as an error and ends up in the exception."""
    host = _host(callbacks, models_dir, busy_port)

    with pytest.raises(EngineHostError, match="Cannot listen on"):
        await host.async_start()

    assert any(
        m.startswith(f"engine_host.cli: Cannot listen on tcp://127.0.0.1:{busy_port}")
        for m in _records(caplog, logging.ERROR)
    )
    assert not _processes(models_dir)


async def test_start_gives_up_after_the_start_timeout(
    socket_enabled: None, free_port: int, models_dir: Path, callbacks: Callbacks
) -> None:
    """A host that is not ready in time is killed."""
    host = _host(callbacks, models_dir, free_port, start_timeout=0.01)

    with pytest.raises(EngineHostError, match=r"did not start within 0\.01 s"):
        await host.async_start()

    assert not _processes(models_dir)
    assert callbacks.calls == []
