"""The engine host as a real process, the way Home Assistant and scripts start it."""

import asyncio
from collections.abc import AsyncIterator
import os
from pathlib import Path
import signal
import sys

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from custom_components.private_voice import engine_host
from custom_components.private_voice.engine_host.cli import READY

# Standalone, the package is imported as ``engine_host`` from this folder.
PACKAGE_PARENT = Path(engine_host.__file__).parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)}


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
async def host(
    socket_enabled: None, tmp_path: Path
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """``python -m engine_host`` on a free port, with the packaged models."""
    process = await _run(
        "-m",
        "engine_host",
        "--uri",
        "tcp://127.0.0.1:0",
        "--models-dir",
        str(tmp_path),
        "--stt-model",
        "tiny.en",
    )
    assert process.stdout is not None
    async with asyncio.timeout(120):
        line = (await process.stdout.readline()).decode()
    assert line.startswith(READY), line
    yield int(line.rsplit(":", 1)[1]), process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_serves_over_tcp_and_stops_on_sigterm(
    host: tuple[int, asyncio.subprocess.Process],
) -> None:
    """The ready line names the port; describe works; SIGTERM stops it cleanly."""
    port, process = host
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
    assert event is not None
    info = Info.from_event(event)
    assert [model.name for model in info.asr[0].models] == ["tiny.en"]
    assert [voice.name for voice in info.tts[0].voices] == ["en_US-joe-medium"]
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        assert await process.wait() == 0


async def test_stops_when_its_supervisor_goes(
    socket_enabled: None, tmp_path: Path
) -> None:
    """With --stop-with-stdin, closing its standard input stops the host."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "engine_host", "--uri", "tcp://127.0.0.1:0"),
        *("--models-dir", str(tmp_path), "--stt-model", "tiny.en", "--stop-with-stdin"),
        env=_env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    async with asyncio.timeout(120):
        assert (await process.stdout.readline()).decode().startswith(READY)
    process.stdin.close()
    async with asyncio.timeout(30):
        assert await process.wait() == 0


async def test_runs_without_home_assistant() -> None:
    """Importing the whole engine host pulls in nothing of Home Assistant."""
    process = await _run(
        "-c",
        "import sys, engine_host.cli\n"
        "print([m for m in sys.modules if m.startswith('homeassistant')] or 'clean')",
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == "clean"


async def test_help_documents_the_command() -> None:
    """--help works and names the options the README documents."""
    process = await _run("-m", "engine_host", "--help")
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    for option in ("--uri", "--models-dir", "--stt-model", "--voice", "--openwakeword"):
        assert option in stdout.decode()


async def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    """Asking for a model that is not installed exits 2 and names it."""
    process = await _run(
        "-m",
        "engine_host",
        "--uri",
        "tcp://127.0.0.1:0",
        "--models-dir",
        str(tmp_path),
        "--stt-model",
        "large-v3",
    )
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert "large-v3 is not installed" in stderr.decode()


async def test_bad_uri_is_refused() -> None:
    """A URI that is not tcp://HOST:PORT is a usage error."""
    process = await _run("-m", "engine_host", "--uri", "unix:///tmp/x")
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert "tcp://HOST:PORT" in stderr.decode()


def test_version_matches_the_manifest() -> None:
    """The engine host reports the integration's version."""
    manifest = (PACKAGE_PARENT / "manifest.json").read_text(encoding="utf-8")
    assert f'"version": "{engine_host.__version__}"' in manifest
