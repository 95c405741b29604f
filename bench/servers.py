"""Server processes the benchmarks measure: the engine host and the peers.

Every server is a real process on a loopback port of this machine, started in
a session of its own so that it stops as a whole. The peers (bench/setup-peers)
run in venvs of their own under bench/.peers/, with data folders that link in
the project's packaged models: the same Whisper tiny.en and the same piper
voice as ours, never a download.
"""

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import shlex
import signal
import socket
import subprocess
import time

from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

TOP = Path(__file__).resolve().parent.parent
PEERS = TOP / "bench" / ".peers"
HOST = "127.0.0.1"
# The engine host's package, importable as ``engine_host`` from here.
ENGINE_HOST_PATH = TOP / "custom_components" / "private_voice"

READY_TIMEOUT = 180.0


class BenchError(Exception):
    """A server misbehaved or could not be run."""


@dataclass(kw_only=True)
class Server:
    """A server process on a loopback port, and where its output goes."""

    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    # Model and voice to ask for by name (None: the server's default).
    stt_model: str | None = None
    voice: str | None = None
    process: asyncio.subprocess.Process | None = None
    ready_seconds: float = 0.0
    info: Info | None = None

    @property
    def uri(self) -> str:
        """Where the server listens, as Wyoming writes it."""
        return f"tcp://{HOST}:{self.port}"

    async def start(self) -> None:
        """Start the process, in a session of its own so it stops as a whole."""
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=TOP,
                env=environment(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, started: float) -> None:
        """Poll with ``describe`` until the server answers with ``info``."""
        assert self.process is not None
        deadline = started + READY_TIMEOUT
        while time.perf_counter() < deadline:
            if self.process.returncode is not None:
                code = self.process.returncode
                msg = f"{self.name} exited with {code}:\n{self.log_tail()}"
                raise BenchError(msg)
            with contextlib.suppress(OSError, TimeoutError):
                async with (
                    asyncio.timeout(5),
                    AsyncTcpClient(HOST, self.port) as client,
                ):
                    await client.write_event(Describe().event())
                    event = await read_until(client, Info.is_type)
                    self.info = Info.from_event(event)
                    self.ready_seconds = time.perf_counter() - started
                    return
            await asyncio.sleep(0.25)
        msg = f"{self.name} not ready after {READY_TIMEOUT:g} s:\n{self.log_tail()}"
        raise BenchError(msg)

    async def stop(self) -> None:
        """Terminate the process group this bench started."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()

    def pids(self) -> list[int]:
        """List the process and its descendants (a wrapper may sit on top)."""
        assert self.process is not None
        return process_tree(self.process.pid)

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process tree so far."""
        return cpu_seconds(self.pids())

    def memory_mib(self) -> dict[str, float]:
        """Resident set now (VmRSS) and at its peak (VmHWM), over the tree."""
        totals = {"rss_mib": 0.0, "peak_rss_mib": 0.0}
        keys = {"VmRSS:": "rss_mib", "VmHWM:": "peak_rss_mib"}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    name, *value = line.split()
                    if name in keys:
                        totals[keys[name]] += int(value[0]) / 1024
        return {key: round(value, 1) for key, value in totals.items()}

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the server's output, for error messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def environment(extra: dict[str, str]) -> dict[str, str]:
    """Return this environment without the project's venv and path, plus ``extra``.

    Each server gets only what it asks for: the peers run in venvs of their own.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    return inherited | extra


def _stat_fields(path: Path) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state is index 0)."""
    stat = path.read_text()
    return stat[stat.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """List ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int(_stat_fields(entry / "stat")[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found = [root]
    for pid in found:
        found.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """Return the user and system CPU time of ``pids`` so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat_fields(Path(f"/proc/{pid}/stat"))
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Return a loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def peer_python(name: str) -> Path:
    """Return a peer venv's interpreter; BenchError if setup-peers has not run."""
    python = PEERS / name / "bin" / "python"
    if not python.exists():
        msg = f"peer {name} is not installed: run bench/setup-peers first"
        raise BenchError(msg)
    return python


def engine_host_server(command: str, python: str, models: Path, logs: Path) -> Server:
    """Our engine host, as ``command`` ({python}, {models}, {uri} filled in) runs it.

    ``custom_components/private_voice`` is its PYTHONPATH: the package alone,
    without the integration and Home Assistant around it.
    """
    port = free_port()
    argv = command.format(python=python, models=models, uri=f"tcp://{HOST}:{port}")
    return Server(
        name="ours",
        argv=shlex.split(argv),
        port=port,
        log=logs / "ours.log",
        env={"PYTHONPATH": str(ENGINE_HOST_PATH)},
    )


def peer_servers(logs: Path) -> dict[str, Server]:
    """wyoming-faster-whisper and wyoming-piper, keyed stt-peer and tts-peer."""
    data = PEERS / "data"
    stt_port, tts_port = free_port(), free_port()
    return {
        # Same model, device, compute type, beam size and CTranslate2 thread
        # count (0: its default) as ours; never a download.
        "stt-peer": Server(
            name="wyoming-faster-whisper",
            argv=[
                str(peer_python("faster-whisper")),
                "-m",
                "wyoming_faster_whisper",
                f"--uri=tcp://{HOST}:{stt_port}",
                f"--model={data / 'whisper' / 'tiny.en'}",
                f"--data-dir={data / 'whisper'}",
                "--stt-library=faster-whisper",
                "--device=cpu",
                "--compute-type=int8",
                "--beam-size=1",
                "--cpu-threads=0",
                "--language=en",
                "--local-files-only",
            ],
            port=stt_port,
            log=logs / "wyoming-faster-whisper.log",
        ),
        "tts-peer": Server(
            name="wyoming-piper",
            argv=[
                str(peer_python("piper")),
                "-m",
                "wyoming_piper",
                f"--uri=tcp://{HOST}:{tts_port}",
                "--voice=en_US-joe-medium",
                f"--data-dir={data / 'piper'}",
                "--local-files-only",
            ],
            port=tts_port,
            log=logs / "wyoming-piper.log",
        ),
    }


PEER_STT_FLAGS = (
    "--device=cpu --compute-type=int8 --beam-size=1 --cpu-threads=0 "
    "--language=en, same tiny.en folder"
)
PEER_TTS_FLAGS = "--voice=en_US-joe-medium, same .onnx"


async def start_all(servers: list[Server]) -> None:
    """Start ``servers`` together and wait until every one answers ``describe``."""
    started = time.perf_counter()
    for server in servers:
        await server.start()
    await asyncio.gather(*(server.wait_ready(started) for server in servers))


async def stop_all(servers: list[Server]) -> None:
    """Stop every server that was started."""
    await asyncio.gather(*(server.stop() for server in servers))


async def read_until(client: AsyncTcpClient, wanted: Callable[[str], bool]) -> Event:
    """Read events until one ``wanted`` arrives; an ``error`` is a BenchError."""
    while True:
        event = await client.read_event()
        if event is None:
            msg = "the server closed the connection"
            raise BenchError(msg)
        if Error.is_type(event.type):
            error = Error.from_event(event)
            msg = f"server error {error.code}: {error.text}"
            raise BenchError(msg)
        if wanted(event.type):
            return event
