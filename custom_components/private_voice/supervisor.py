"""Keep the engine host running as a child process: start, watch, restart, stop.

Pure asyncio, no Home Assistant import: ``local_engines`` builds the command
and hands over the callbacks.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
import contextlib
import logging
import os
import re
import signal
from typing import Final, cast

from .engine_host import READY
from .protocol.client import Endpoint, PeerError, async_ping

# How much of the child's stderr an error carries.
STDERR_TAIL_LINES: Final = 20
# How long a stopping child may take to finish in-flight requests.
STOP_TIMEOUT: Final = 10.0
# Delay before a restart: doubles while restarts keep failing, up to the maximum,
BACKOFF_MIN: Final = 1.0
BACKOFF_MAX: Final = 60.0
# and starts again from the minimum once a run has lasted this long.
STABLE_RUN: Final = 300.0
# Longest line read from the child; longer ones are cut, never a stalled pipe.
LINE_LIMIT: Final = 1 << 20

# The engine host's log format: "%(asctime)s %(levelname)s %(name)s: %(message)s".
_RECORD: Final = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<text>.*)"
)
_LEVELS: Final = logging.getLevelNamesMapping()


class EngineHostError(Exception):
    """The engine host process did not start."""


def _describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:  # a signal without a name (real-time)
        return f"killed by signal {-returncode}"


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    """Yield decoded lines until the end of the stream."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:
            # Over LINE_LIMIT: the reader dropped what it had; carry on reading.
            continue
        if not line:
            return
        yield line.decode(errors="replace").rstrip()


class _Child:
    """One run of the engine host process; its output is read until it ends."""

    def __init__(
        self, process: asyncio.subprocess.Process, logger: logging.Logger
    ) -> None:
        self.process = process
        self.hung = False
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._logger = logger
        # True once the ready line came; False if stdout ended before it.
        self._ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Both pipes (see EngineHostProcess._spawn) are read to the end, so the
        # child never blocks on a full pipe, and the transport closes itself
        # once the process is gone.
        stdout = cast(asyncio.StreamReader, process.stdout)
        stderr = cast(asyncio.StreamReader, process.stderr)
        self._readers = (
            asyncio.create_task(self._read_stdout(stdout), name="engine host stdout"),
            asyncio.create_task(self._read_stderr(stderr), name="engine host stderr"),
        )

    async def _read_stdout(self, stdout: asyncio.StreamReader) -> None:
        async for line in _lines(stdout):
            if not self._ready.done() and line.startswith(READY):
                self._ready.set_result(True)
        if not self._ready.done():
            self._ready.set_result(False)

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        level = logging.INFO
        async for line in _lines(stderr):
            text = line
            if record := _RECORD.fullmatch(line):
                level = _LEVELS.get(record["level"], logging.INFO)
                text = record["text"]
            # A line that starts no record (a traceback, say) belongs to the
            # record before it and keeps its level: debug stays debug.
            self._logger.log(level, "%s", text)
            if level >= logging.INFO:
                self.tail.append(text)

    async def wait_ready(self) -> None:
        """Wait for the ready line; EngineHostError if the child exits first."""
        if await self._ready:
            return
        returncode = await self.wait()
        raise EngineHostError(self.failure(f"exited ({_describe_exit(returncode)})"))

    def failure(self, what: str) -> str:
        """Say what went wrong, followed by the last lines the child logged."""
        return "\n".join([f"the engine host {what}", *self.tail])

    def signal_group(self, signum: signal.Signals) -> None:
        """Signal the child's process group (it and anything it started)."""
        # Only while unreaped: until then its pid cannot name another process.
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    async def wait(self) -> int:
        """Wait for the process to end and its output to be read; its exit code."""
        returncode = await self.process.wait()
        # asyncio.wait, not gather: an interrupted wait must not cancel the readers.
        await asyncio.wait(self._readers)
        return returncode

    async def kill(self) -> None:
        """End the child at once and reap it."""
        self.signal_group(signal.SIGKILL)
        await self.wait()

    async def stop(self) -> None:
        """Ask the child to finish; kill it if it does not in time."""
        self.signal_group(signal.SIGTERM)
        # A stopped (SIGSTOP) process acts on SIGTERM only once continued.
        self.signal_group(signal.SIGCONT)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.wait()
        except TimeoutError:
            await self.kill()


class EngineHostProcess:
    """The engine host as a supervised child process.

    ``async_start`` returns once the host serves. From then on a watch task
    restarts it when it dies (backoff 1, 2, 4 … 60 s) or stops answering
    ``ping``: ``on_exit`` and one warning per outage, ``on_ready`` and one info
    line when it serves again. ``async_stop`` ends all of it.
    """

    def __init__(  # noqa: PLR0913 - all keyword-only
        self,
        *,
        command: list[str],
        env: dict[str, str],
        endpoint: Endpoint,
        on_ready: Callable[[], None],
        on_exit: Callable[[], None],
        logger: logging.Logger,
        start_timeout: float = 300.0,
        health_interval: float = 30.0,
        health_failures: int = 3,
    ) -> None:
        """Prepare to run ``command``, which serves Wyoming on ``endpoint``.

        ``start_timeout`` is long because loading models takes a while on a
        slow machine; ``health_failures`` pings in a row, ``health_interval``
        apart, that get no answer mean the host hangs and is killed.
        """
        self._command = command
        self._env = env
        self._endpoint = endpoint
        self._on_ready = on_ready
        self._on_exit = on_exit
        self._logger = logger
        self._start_timeout = start_timeout
        self._health_interval = health_interval
        self._health_failures = health_failures
        # The child that serves; None while it is (re)starting or stopped.
        self._child: _Child | None = None
        self._watch: asyncio.Task[None] | None = None
        self._restarts = 0
        self._stop_lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """Process id of the serving child, if there is one."""
        return self._child.process.pid if self._child else None

    @property
    def restarts(self) -> int:
        """How often the child was restarted."""
        return self._restarts

    @property
    def running(self) -> bool:
        """Whether a child has started and is still alive."""
        return self._child is not None and self._child.process.returncode is None

    async def async_start(self) -> None:
        """Start the engine host and wait until it serves.

        EngineHostError, with the end of the child's log, if it does not.
        """
        self._child = await self._spawn()
        self._on_ready()
        self._watch = asyncio.create_task(self._supervise(), name="engine host watch")

    async def async_stop(self) -> None:
        """Stop watching and stop the child; safe to call more than once."""
        async with self._stop_lock:
            if self._watch is not None:
                self._watch.cancel()
                await asyncio.wait([self._watch])
                self._watch = None
            if self._child is not None:
                await self._child.stop()
                self._child = None

    async def _spawn(self) -> _Child:
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                env=self._env,
                # Held open and never written: the host stops when it closes,
                # so it cannot outlive Home Assistant (--stop-with-stdin).
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
                # Its own process group, so that stopping it reaches what it started.
                start_new_session=True,
            )
        except OSError as err:
            msg = f"cannot run {self._command[0]}: {err}"
            raise EngineHostError(msg) from err
        child = _Child(process, self._logger)
        try:
            async with asyncio.timeout(self._start_timeout):
                await child.wait_ready()
        except TimeoutError as err:
            await child.kill()
            what = f"did not start within {self._start_timeout:g} s"
            raise EngineHostError(child.failure(what)) from err
        except BaseException:
            # Exited already, or cancelled while starting: leave nothing behind.
            await child.kill()
            raise
        return child

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = BACKOFF_MIN
        while self._child is not None:
            started = loop.time()
            outage = await self._until_exit(self._child)
            self._child = None
            if loop.time() - started >= STABLE_RUN:
                backoff = BACKOFF_MIN
            self._logger.warning("The engine host %s; restarting it", outage)
            self._on_exit()
            while self._child is None:
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, BACKOFF_MAX)
                try:
                    self._child = await self._spawn()
                except EngineHostError as err:
                    self._logger.debug("The engine host did not start again: %s", err)
            self._restarts += 1
            self._logger.info("The engine host is serving again")
            self._on_ready()

    async def _until_exit(self, child: _Child) -> str:
        """Wait for the child to end, killing it if it hangs; say what happened."""
        health = asyncio.create_task(
            self._check_health(child), name="engine host health"
        )
        try:
            returncode = await child.wait()
        finally:
            health.cancel()
            await asyncio.wait([health])
        if child.hung:
            return f"did not answer {self._health_failures} pings in a row"
        return f"stopped unexpectedly ({_describe_exit(returncode)})"

    async def _check_health(self, child: _Child) -> None:
        """Ping the child; kill it when it stops answering."""
        failures = 0
        while failures < self._health_failures:
            await asyncio.sleep(self._health_interval)
            try:
                await async_ping(self._endpoint)
            except PeerError as err:
                failures += 1
                self._logger.debug("The engine host did not answer ping: %s", err)
            else:
                failures = 0
        child.hung = True
        # SIGKILL: a hung process may never act on SIGTERM.
        child.signal_group(signal.SIGKILL)
