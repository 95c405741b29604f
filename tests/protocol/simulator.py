"""A simulated ESP32-S3 satellite: a Wyoming server, as the firmware is.

One client at a time (a new one replaces the old, as after a hub restart); the
microphone sends 1024-sample chunks with ``data`` inline in the header line, as
ESP firmware writes them; ``ping`` is answered; ``run-satellite`` starts the
microphone and ``pause-satellite`` stops it; replies play "instantly" and are
answered with ``played``. Everything the hub sends is recorded.

Events are read with the ``wyoming`` library itself, so what the hub writes is
checked by the reference implementation.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
import json

from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import (
    Attribution,
    Describe,
    Info,
    MicProgram,
    Satellite,
    SndProgram,
    WakeModel,
    WakeProgram,
)
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.snd import Played
from wyoming.wake import Detection

from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.protocol.client import Endpoint

CHUNK_SAMPLES = 1024
WAKE_WORD = "okay_nabu"
WAKE_PHRASE = "okay nabu"
PING_TEXT = "esp32-s3"
ESP_MIC = PcmFormat(16000, 2, 1)
_ATTRIBUTION = Attribution(name="Private Voice tests", url="https://example.invalid")


class Firmware(StrEnum):
    """How the satellite finds its wake word."""

    # Detects it itself: detection, run-pipeline from asr, the command, audio-stop.
    ON_DEVICE_WAKE = "on-device-wake"
    # Streams all the time: run-pipeline from wake with restart_on_end, then the
    # speech and silence after it until paused.
    ALWAYS_STREAMING = "always-streaming"


def _wyoming_format(pcm: PcmFormat) -> AudioFormat:
    return AudioFormat(pcm.rate, pcm.width, pcm.channels)


class Fault(StrEnum):
    """Ways a satellite misbehaves."""

    # Closes the connection halfway through the command.
    VANISH_MID_SENTENCE = "vanish-mid-sentence"
    # Hangs after the handshake: answers neither ping nor describe, and its
    # microphone never starts.
    NO_PONG = "no-pong"
    # A line that is not Wyoming, right after run-satellite.
    GARBAGE = "garbage"
    # An audio chunk announcing a payload far over any limit.
    OVERSIZED = "oversized"
    # An audio chunk in another format than its audio-start, halfway through.
    WRONG_FORMAT = "wrong-format"
    # Goes on streaming after pause-satellite.
    IGNORES_PAUSE = "ignores-pause"


_MID_SENTENCE_FAULTS = {Fault.VANISH_MID_SENTENCE, Fault.WRONG_FORMAT, Fault.OVERSIZED}


@dataclass
class Reply:
    """One audio-start … audio-stop group the hub sent."""

    start: AudioStart
    chunks: list[bytes] = field(default_factory=list)
    stopped: bool = False

    @property
    def audio(self) -> bytes:
        """All of the reply's audio."""
        return b"".join(self.chunks)


@dataclass
class Recording:
    """What the satellite saw and did."""

    connections: int = 0
    # Every event from the hub, in order (audio payloads in ``replies``).
    events: list[Event] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    played: int = 0
    # Microphone bytes sent since the last run-satellite.
    streamed: int = 0

    def types(self) -> list[str]:
        """List the types of the events received, in order."""
        return [event.type for event in self.events]

    def of_type(self, event_type: str) -> list[Event]:
        """List the events received of one type."""
        return [event for event in self.events if event.type == event_type]


@dataclass(frozen=True, kw_only=True)
class Device:
    """What the simulated satellite is and how it behaves."""

    firmware: Firmware = Firmware.ON_DEVICE_WAKE
    mic_format: PcmFormat = ESP_MIC
    # Reported in info as the speaker's format, if given.
    snd_format: PcmFormat | None = None
    fault: Fault | None = None
    # ESP firmware writes data inline; the wyoming library as a data_length block.
    inline_data: bool = True
    # False: the info has no ``satellite`` (some other Wyoming service).
    is_satellite: bool = True
    # Pause between silence chunks once an always-streaming satellite has said
    # its command: steady traffic, without flooding the test.
    silence_interval: float = 0.02


class SimulatedSatellite:
    """A satellite on 127.0.0.1 that says ``mic_audio`` whenever it may."""

    def __init__(self, mic_audio: bytes, device: Device | None = None) -> None:
        """Prepare a satellite; ``start`` makes it listen."""
        self.mic_audio = mic_audio
        self.device = device or Device()
        self.recording = Recording()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._client: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stream: asyncio.Task[None] | None = None
        self._described = False

    @property
    def endpoint(self) -> Endpoint:
        """Where the satellite listens."""
        return Endpoint("127.0.0.1", self.port)

    @property
    def chunk_bytes(self) -> int:
        """Bytes of one microphone chunk."""
        return CHUNK_SAMPLES * self.device.mic_format.frame_bytes

    async def start(self) -> None:
        """Listen on the port of the last start, or a free one the first time."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop the client, as a satellite switched off does."""
        if self._server is not None:
            self._server.close()
            # A connection not yet handed to ``_accept`` would keep
            # ``wait_closed`` waiting.
            self._server.abort_clients()
        if self._client is not None:
            self._client.transport.abort()
            self._client = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except ConnectionError:
            pass  # the hub went away
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._client is not None:  # one client at a time: the newest wins
            self._client.close()
        self._stop_streaming()
        self._client = writer
        self._described = False
        self.recording.connections += 1
        while (event := await async_read_event(reader)) is not None:
            await self._handle(event, writer)
        if self._client is writer:  # not replaced by a newer client
            self._stop_streaming()
            self._client = None

    async def _handle(self, event: Event, writer: asyncio.StreamWriter) -> None:
        if not AudioChunk.is_type(event.type):
            self.recording.events.append(event)
        if Describe.is_type(event.type):
            # A hung satellite answered the handshake, and nothing since.
            if not (self.device.fault is Fault.NO_PONG and self._described):
                await self._send(writer, self._info().event())
            self._described = True
        elif Ping.is_type(event.type) and self.device.fault is not Fault.NO_PONG:
            await self._send(writer, Pong(text=Ping.from_event(event).text).event())
        elif (
            RunSatellite.is_type(event.type) and self.device.fault is not Fault.NO_PONG
        ):
            self._stop_streaming()
            self.recording.streamed = 0
            self._stream = asyncio.create_task(self._speak(writer))
            self._tasks.add(self._stream)
            self._stream.add_done_callback(self._tasks.discard)
        elif PauseSatellite.is_type(event.type):
            if self.device.fault is not Fault.IGNORES_PAUSE:
                self._stop_streaming()
        else:
            await self._play(event, writer)

    async def _play(self, event: Event, writer: asyncio.StreamWriter) -> None:
        """Take a reply or an announcement."""
        if AudioStart.is_type(event.type):
            self.recording.replies.append(Reply(AudioStart.from_event(event)))
        elif AudioChunk.is_type(event.type):
            self.recording.replies[-1].chunks.append(event.payload or b"")
        elif AudioStop.is_type(event.type):
            # Played "instantly": the simulator has no loudspeaker to wait for.
            self.recording.replies[-1].stopped = True
            await self._send(writer, Played().event())
            self.recording.played += 1

    def _stop_streaming(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None

    def _info(self) -> Info:
        wake_model = WakeModel(
            name=WAKE_WORD,
            attribution=_ATTRIBUTION,
            installed=True,
            description="Okay Nabu",
            version="1",
            languages=["en"],
            phrase=WAKE_PHRASE,
        )
        info = Info(
            wake=[
                WakeProgram(
                    name="micro-wake-word",
                    attribution=_ATTRIBUTION,
                    installed=True,
                    description="on-device wake word",
                    version="1",
                    models=[wake_model],
                )
            ],
            mic=[
                MicProgram(
                    name="mic",
                    attribution=_ATTRIBUTION,
                    installed=True,
                    description=None,
                    version=None,
                    mic_format=_wyoming_format(self.device.mic_format),
                )
            ],
        )
        if self.device.snd_format is not None:
            info.snd = [
                SndProgram(
                    name="snd",
                    attribution=_ATTRIBUTION,
                    installed=True,
                    description=None,
                    version=None,
                    snd_format=_wyoming_format(self.device.snd_format),
                )
            ]
        if self.device.is_satellite:
            info.satellite = Satellite(
                name="esp32-s3",
                attribution=_ATTRIBUTION,
                installed=True,
                description="simulated ESP32-S3 satellite",
                version="1",
                active_wake_words=[WAKE_WORD],
                max_active_wake_words=1,
            )
        return info

    # The microphone -----------------------------------------------------------

    async def _speak(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):  # the hub went away
            await self._stream_mic(writer)

    async def _stream_mic(self, writer: asyncio.StreamWriter) -> None:
        if self.device.fault is Fault.GARBAGE:
            writer.write(b"this is not a wyoming header\n")
            await writer.drain()
            return
        # The firmware checks the hub is there, as ESP firmware does.
        await self._send(writer, Ping(text=PING_TEXT).event())
        if not self.mic_audio:
            return  # nobody speaks: its wake word never comes
        mic = self.device.mic_format
        if self.device.firmware is Firmware.ON_DEVICE_WAKE:
            await self._send(writer, Detection(name=WAKE_WORD, timestamp=0).event())
            run = RunPipeline(
                start_stage=PipelineStage.ASR,
                end_stage=PipelineStage.TTS,
                wake_word_name=WAKE_WORD,
            )
        else:
            run = RunPipeline(
                start_stage=PipelineStage.WAKE,
                end_stage=PipelineStage.TTS,
                restart_on_end=True,
            )
        await self._send(writer, run.event())
        await self._send(writer, AudioStart(mic.rate, mic.width, mic.channels).event())
        await self._say(writer)
        if self.device.firmware is Firmware.ON_DEVICE_WAKE:
            await self._send(writer, AudioStop().event())
            return
        silence = bytes(self.chunk_bytes)
        while True:
            await asyncio.sleep(self.device.silence_interval)
            await self._chunk(writer, silence)

    async def _say(self, writer: asyncio.StreamWriter) -> None:
        """Send the command, or as much of it as the fault allows."""
        audio = self.mic_audio
        half = len(audio) // 2
        for offset in range(0, len(audio), self.chunk_bytes):
            if offset >= half and self.device.fault in _MID_SENTENCE_FAULTS:
                await self._fault(writer, audio[offset:])
                return
            await self._chunk(writer, audio[offset : offset + self.chunk_bytes])

    async def _fault(self, writer: asyncio.StreamWriter, rest: bytes) -> None:
        if self.device.fault is Fault.VANISH_MID_SENTENCE:
            writer.close()
        elif self.device.fault is Fault.WRONG_FORMAT:
            await self._chunk(writer, rest, rate=self.device.mic_format.rate // 2)
        else:
            header = {"type": "audio-chunk", "payload_length": 1 << 30}
            writer.write(json.dumps(header).encode() + b"\n")
            await writer.drain()

    async def _chunk(
        self, writer: asyncio.StreamWriter, audio: bytes, *, rate: int | None = None
    ) -> None:
        mic = self.device.mic_format
        chunk = AudioChunk(rate or mic.rate, mic.width, mic.channels, audio)
        await self._send(writer, chunk.event())
        self.recording.streamed += len(audio)

    async def _send(self, writer: asyncio.StreamWriter, event: Event) -> None:
        if not self.device.inline_data:
            await async_write_event(event, writer)
            return
        # ESP firmware puts the event's data in the header line itself.
        header: dict[str, object] = {"type": event.type, "data": event.data}
        if event.payload:
            header["payload_length"] = len(event.payload)
        writer.write(json.dumps(header).encode() + b"\n" + (event.payload or b""))
        await writer.drain()
