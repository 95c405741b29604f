"""The satellite link against a simulated ESP32-S3 satellite speaking real speech."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
import logging

import audioop
import numpy as np
import pytest
from wyoming.asr import Transcript
from wyoming.error import Error
from wyoming.info import Info
from wyoming.ping import Pong
from wyoming.pipeline import PipelineStage
from wyoming.timer import TimerStarted
from wyoming.tts import Synthesize
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detection

from custom_components.private_voice.engine_host.engines import ErrorCode
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.protocol.client import Endpoint
from custom_components.private_voice.protocol.satellite import (
    TTS_CHUNK_BYTES,
    AudioEnd,
    LinkSettings,
    PipelineRequest,
    PipelineRun,
    SatelliteError,
    SatelliteLink,
)

from ..engine_host.conftest import Speak
from ..waiting import until
from .simulator import (
    PING_TEXT,
    WAKE_PHRASE,
    WAKE_WORD,
    Device,
    Fault,
    Firmware,
    SimulatedSatellite,
)

COMMAND = "Turn on the kitchen lights."
REPLY = "Turned on the lights."
SPEECH_FORMAT = PcmFormat(16000, 2, 1)
# Seconds where the defaults are seconds to minutes; the behaviour is the same.
FAST = LinkSettings(
    ping_interval=0.1,
    pong_timeout=0.5,
    backoff_initial=0.05,
    backoff_max=0.2,
    played_grace=0.5,
    finish_timeout=0.5,
)
_LOGGER = logging.getLogger(__name__)

type Satellites = Callable[..., Awaitable[SimulatedSatellite]]
type Links = Callable[[SimulatedSatellite, Handler], SatelliteLink]


async def pieces(audio: bytes, size: int = 3001) -> AsyncIterator[bytes]:
    """Yield audio in odd-sized pieces, as a TTS stream may."""
    for offset in range(0, len(audio), size):
        yield audio[offset : offset + size]


class Failure(StrEnum):
    """How a handler's pipeline fails."""

    ERROR_EVENT = "error-event"
    EXCEPTION = "exception"


@dataclass
class RunRecord:
    """What the handler saw of one run."""

    run: PipelineRun
    audio: bytearray = field(default_factory=bytearray)
    end: AudioEnd | None = None
    played: bool = False
    done: bool = False
    # The link cancelled the handler (a pause or a mode change cut the run).
    cancelled: bool = False


class Handler:
    """A stand-in for the Home Assistant glue: records, and answers if asked."""

    def __init__(
        self,
        *,
        read_bytes: int | None = None,
        reply: bytes | None = None,
        failure: Failure | None = None,
    ) -> None:
        """Read all audio (or ``read_bytes`` of it); then speak ``reply``, or fail."""
        self.read_bytes = read_bytes
        self.reply = reply
        self.failure = failure
        self.runs: list[RunRecord] = []
        self.available: list[Info] = []
        self.unavailable: list[str] = []

    def satellite_available(self, info: Info) -> None:
        """Record the satellite's info."""
        self.available.append(info)

    def satellite_unavailable(self, reason: str) -> None:
        """Record why the satellite is gone."""
        self.unavailable.append(reason)

    async def run_pipeline(self, run: PipelineRun) -> None:
        """Record the audio; reply as a pipeline would."""
        record = RunRecord(run)
        self.runs.append(record)
        try:
            async for pcm in run.audio:
                record.audio += pcm
                if self.read_bytes is not None and len(record.audio) >= self.read_bytes:
                    break
        except asyncio.CancelledError:
            record.cancelled = True
            raise
        finally:
            record.end = run.audio_end
        try:
            await self._answer(run, record)
        finally:
            record.done = True

    async def _answer(self, run: PipelineRun, record: RunRecord) -> None:
        if self.failure is Failure.ERROR_EVENT:
            run.send(Error(text="no such pipeline", code="pipeline-not-found"))
        elif self.failure is Failure.EXCEPTION:
            msg = "the pipeline broke"
            raise RuntimeError(msg)
        if self.reply is None:
            return
        if run.request.start_stage is PipelineStage.WAKE:
            run.send(Detection(name=WAKE_WORD, timestamp=100))
        run.send(VoiceStarted(timestamp=200))
        run.send(VoiceStopped(timestamp=1800))
        run.send(Transcript(text=COMMAND))
        run.send(Synthesize(text=REPLY))
        await run.play(pieces(self.reply), SPEECH_FORMAT)
        record.played = True


@pytest.fixture
def command(speak: Speak) -> bytes:
    """Say the command the satellite hears: piper's joe, 16 kHz 16-bit mono."""
    return speak(COMMAND).tobytes()


@pytest.fixture
def reply(speak: Speak) -> bytes:
    """Say the reply: piper's joe, 16 kHz 16-bit mono."""
    return speak(REPLY).tobytes()


@pytest.fixture
async def satellites(socket_enabled: None) -> AsyncIterator[Satellites]:
    """Start simulated satellites; stop them after the test."""
    started: list[SimulatedSatellite] = []

    async def start(
        mic_audio: bytes, device: Device | None = None
    ) -> SimulatedSatellite:
        satellite = SimulatedSatellite(mic_audio, device)
        await satellite.start()
        started.append(satellite)
        return satellite

    yield start
    for satellite in started:
        await satellite.stop()


@pytest.fixture
async def links(satellites: Satellites) -> AsyncIterator[Links]:
    """Start links to satellites; stop them (before the satellites) after the test."""
    started: list[SatelliteLink] = []

    def start(satellite: SimulatedSatellite, handler: Handler) -> SatelliteLink:
        link = SatelliteLink(satellite.endpoint, handler, logger=_LOGGER, settings=FAST)
        link.async_start()
        started.append(link)
        return link

    yield start
    for link in started:
        await link.async_stop()


def without_pings(types: list[str]) -> list[str]:
    """Event types without the keep-alive traffic."""
    return [kind for kind in types if kind not in {"ping", "pong"}]


async def test_on_device_wake_round_trip(
    satellites: Satellites, links: Links, command: bytes, reply: bytes
) -> None:
    """Detection on the device, the command up, events and a reply down.

    The microphone's data is inline in the header line, as ESP firmware sends
    it; the speaker takes 48 kHz stereo, so the reply is converted to that.
    """
    speaker = PcmFormat(48000, 2, 2)
    satellite = await satellites(command, Device(snd_format=speaker))
    handler = Handler(reply=reply)
    links(satellite, handler)

    await until(lambda: handler.runs and handler.runs[0].played)

    record = handler.runs[0]
    assert record.run.request == PipelineRequest(
        start_stage=PipelineStage.ASR,
        end_stage=PipelineStage.TTS,
        wake_word_name=WAKE_WORD,
        wake_word_phrase=WAKE_PHRASE,
    )
    assert record.end is AudioEnd.SATELLITE
    assert bytes(record.audio) == command  # already 16 kHz mono: unchanged
    assert without_pings(satellite.recording.types()) == [
        "describe",
        "run-satellite",
        "voice-started",
        "voice-stopped",
        "transcript",
        "synthesize",
        "audio-start",
        "audio-stop",
    ]
    pongs = satellite.recording.of_type("pong")
    assert [Pong.from_event(pong).text for pong in pongs] == [PING_TEXT]
    (transcript,) = satellite.recording.of_type("transcript")
    assert Transcript.from_event(transcript).text == COMMAND
    (synthesize,) = satellite.recording.of_type("synthesize")
    assert Synthesize.from_event(synthesize).text == REPLY

    (spoken,) = satellite.recording.replies
    assert PcmFormat.of(spoken.start) == speaker
    assert {len(chunk) for chunk in spoken.chunks[:-1]} == {TTS_CHUNK_BYTES}
    assert 0 < len(spoken.chunks[-1]) <= TTS_CHUNK_BYTES
    assert satellite.recording.played == 1
    # The reply at three times the rate, the same on both channels.
    frames = np.frombuffer(spoken.audio, dtype=np.int16).reshape(-1, 2)
    assert np.array_equal(frames[:, 0], frames[:, 1])
    assert abs(len(frames) - 3 * len(reply) // 2) <= 3
    original = np.frombuffer(reply, dtype=np.int16).astype(np.float64)
    resampled = frames[::3, 0].astype(np.float64)[: len(original)]
    assert np.corrcoef(original[: len(resampled)], resampled)[0, 1] > 0.95


async def test_always_streaming_round_trip(
    satellites: Satellites, links: Links, command: bytes, reply: bytes
) -> None:
    """A run from the wake stage, restarted when it ends; data_length framing."""
    satellite = await satellites(
        command, Device(firmware=Firmware.ALWAYS_STREAMING, inline_data=False)
    )
    handler = Handler(read_bytes=len(command), reply=reply)
    links(satellite, handler)

    await until(lambda: len(handler.runs) >= 2)

    first, second = handler.runs[:2]
    expected = PipelineRequest(
        start_stage=PipelineStage.WAKE,
        end_stage=PipelineStage.TTS,
        restart_on_end=True,
    )
    assert first.run.request == expected
    assert second.run.request == expected
    assert first.played
    assert bytes(first.audio[: len(command)]) == command
    assert "detection" in satellite.recording.types()
    (spoken,) = satellite.recording.replies
    assert PcmFormat.of(spoken.start) == SPEECH_FORMAT  # no snd_format: as given
    assert spoken.audio == reply
    assert {len(chunk) for chunk in spoken.chunks[:-1]} == {TTS_CHUNK_BYTES}
    assert satellite.recording.played == 1
    # The stream goes on into the restarted run.
    await until(lambda: len(second.audio) > 0)


@pytest.mark.parametrize("failure", list(Failure))
async def test_a_failed_run_is_not_restarted(
    satellites: Satellites,
    links: Links,
    command: bytes,
    failure: Failure,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No tight loop of failing runs for an always-streaming satellite."""
    satellite = await satellites(command, Device(firmware=Firmware.ALWAYS_STREAMING))
    handler = Handler(read_bytes=len(command), failure=failure)
    links(satellite, handler)

    await until(lambda: handler.runs and handler.runs[0].done)
    # The restart would have come with the end of the run; the stream goes on.
    streamed = satellite.recording.streamed
    await until(lambda: satellite.recording.streamed > streamed + 4096)

    assert len(handler.runs) == 1
    if failure is Failure.ERROR_EVENT:
        (error,) = satellite.recording.of_type("error")
        assert Error.from_event(error).code == "pipeline-not-found"
    else:
        assert "Pipeline for satellite" in caplog.text
        assert "the pipeline broke" in caplog.text


async def test_48khz_stereo_microphone_is_converted(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """Whatever the microphone's format, the handler gets 16 kHz mono."""
    samples = np.frombuffer(command, dtype=np.int16)
    stereo_48k = np.repeat(samples, 3)[:, np.newaxis].repeat(2, axis=1).tobytes()
    satellite = await satellites(stereo_48k, Device(mic_format=PcmFormat(48000, 2, 2)))
    handler = Handler()
    links(satellite, handler)

    await until(lambda: handler.runs and handler.runs[0].end is not None)

    heard = bytes(handler.runs[0].audio)
    # Chunk by chunk, the same as converting the whole stream at once ...
    whole, _ = audioop.ratecv(
        audioop.tomono(stereo_48k, 2, 0.5, 0.5), 2, 1, 48000, 16000, None
    )
    assert heard == whole
    # ... and that is the command again.
    converted = np.frombuffer(heard, dtype=np.int16).astype(np.float64)
    assert abs(len(converted) - len(samples)) <= 2
    length = min(len(converted), len(samples))
    assert np.corrcoef(converted[:length], samples[:length])[0, 1] > 0.99


async def test_pause_refuses_audio_unread_and_resume_restarts(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """Muted: pause-satellite, the stream cut, audio still sent is dropped."""
    satellite = await satellites(
        command,
        Device(firmware=Firmware.ALWAYS_STREAMING, fault=Fault.IGNORES_PAUSE),
    )
    handler = Handler()
    link = links(satellite, handler)
    await until(lambda: handler.runs and len(handler.runs[0].audio) >= len(command))

    await link.async_pause()

    first = handler.runs[0]
    await until(lambda: first.end is not None)
    assert first.end is AudioEnd.PAUSED
    # Cancelled: nothing of the utterance cut short is acted on or answered.
    assert first.cancelled
    assert not first.played
    assert link.paused
    heard = len(first.audio)
    refused = link.refused_chunks
    await until(lambda: link.refused_chunks >= refused + 5)  # it goes on sending
    assert len(first.audio) == heard
    assert len(handler.runs) == 1  # no restart while paused
    assert "pause-satellite" in satellite.recording.types()

    await link.async_resume()

    await until(lambda: len(handler.runs) == 2)
    second = handler.runs[1]
    await until(lambda: len(second.audio) >= len(command))
    assert bytes(second.audio[: len(command)]) == command
    assert satellite.recording.types().count("run-satellite") == 2


async def test_mode_change_cuts_the_stream_in_flight(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """A cut ends the run's audio at once; an always-streaming satellite goes on."""
    satellite = await satellites(command, Device(firmware=Firmware.ALWAYS_STREAMING))
    handler = Handler()
    link = links(satellite, handler)
    await until(lambda: handler.runs and len(handler.runs[0].audio) >= len(command))

    link.cut_pipeline()

    await until(lambda: len(handler.runs) == 2)
    assert handler.runs[0].end is AudioEnd.CUT
    assert handler.runs[0].cancelled
    await until(lambda: len(handler.runs[1].audio) > 0)


async def test_reconnects_after_the_satellite_restarts(
    satellites: Satellites,
    links: Links,
    command: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Switched off and on: one line when it goes, one when it is back."""
    caplog.set_level(logging.DEBUG, logger=__name__)
    satellite = await satellites(command)
    handler = Handler()
    links(satellite, handler)
    await until(lambda: handler.available)

    await satellite.stop()

    await until(lambda: handler.unavailable)
    # Several attempts fail while it is off.
    await until(
        lambda: (
            sum("cannot connect" in record.message for record in caplog.records) >= 3
        )
    )
    await satellite.start()
    await until(lambda: len(handler.available) == 2)

    assert satellite.recording.connections == 2
    assert len(handler.unavailable) == 1
    outage = [
        record.message
        for record in caplog.records
        if record.name == __name__ and record.levelno >= logging.INFO
    ]
    uri = satellite.endpoint.uri
    assert len(outage) == 2
    assert outage[0].startswith(f"Satellite {uri} is unavailable: ")
    assert outage[1] == f"Satellite {uri} is available again"


async def test_vanishing_mid_sentence_ends_the_audio_cleanly(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """The run's audio ends with what arrived; the link reconnects."""
    satellite = await satellites(command, Device(fault=Fault.VANISH_MID_SENTENCE))
    handler = Handler()
    links(satellite, handler)

    await until(lambda: handler.runs and handler.runs[0].end is not None)

    first = handler.runs[0]
    assert first.end is AudioEnd.LOST
    chunk = satellite.chunk_bytes
    sent = -(-(len(command) // 2) // chunk) * chunk  # whole chunks before the half
    assert bytes(first.audio) == command[:sent]
    await until(lambda: satellite.recording.connections >= 2)


async def test_no_pong_means_gone(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """A satellite that does not answer ping is dropped and reconnected."""
    satellite = await satellites(command, Device(fault=Fault.NO_PONG))
    handler = Handler()
    links(satellite, handler)

    await until(lambda: satellite.recording.connections >= 2)

    assert handler.unavailable == ["no answer to ping within 0.5 s"]
    assert not handler.available


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.GARBAGE, ErrorCode.BAD_FRAME),
        (Fault.OVERSIZED, ErrorCode.FRAME_TOO_LARGE),
        (Fault.WRONG_FORMAT, ErrorCode.BAD_AUDIO_FORMAT),
    ],
)
async def test_bad_input_is_refused_and_the_link_reconnects(
    satellites: Satellites,
    links: Links,
    command: bytes,
    fault: Fault,
    code: ErrorCode,
) -> None:
    """Bad input gets an error event and a new connection; a run's audio ends."""
    satellite = await satellites(command, Device(fault=fault))
    handler = Handler()
    links(satellite, handler)

    await until(
        lambda: (
            satellite.recording.of_type("error")
            and satellite.recording.connections >= 2
        )
    )

    error = Error.from_event(satellite.recording.of_type("error")[0])
    assert error.code == code
    assert handler.unavailable[0].startswith("sent bad input")
    await until(lambda: all(record.done for record in handler.runs))
    for record in handler.runs:
        assert record.end is AudioEnd.LOST
        assert command.startswith(bytes(record.audio))


async def test_refuses_a_peer_that_is_not_a_satellite(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """Info without ``satellite``: a clear reason, and no run-satellite."""
    satellite = await satellites(command, Device(is_satellite=False))
    handler = Handler()
    links(satellite, handler)

    await until(lambda: handler.unavailable)

    assert handler.unavailable == [
        "not a Wyoming satellite (its info has no 'satellite')"
    ]
    assert "run-satellite" not in satellite.recording.types()


async def test_announcements_and_timers(
    satellites: Satellites, links: Links, command: bytes, reply: bytes
) -> None:
    """Audio without a pipeline, played; timer events passed on."""
    satellite = await satellites(command)
    handler = Handler()
    link = links(satellite, handler)
    await until(lambda: handler.available)

    await link.async_announce(pieces(reply), SPEECH_FORMAT)

    assert satellite.recording.played == 1
    (spoken,) = satellite.recording.replies
    assert spoken.audio == reply

    timer = TimerStarted(id="tea", total_seconds=180, name="tea", start_minutes=3)
    link.send_timer(timer)
    await until(lambda: satellite.recording.of_type("timer-started"))
    (started,) = satellite.recording.of_type("timer-started")
    assert TimerStarted.from_event(started) == timer


async def test_announcing_needs_a_connection() -> None:
    """A link that is not connected refuses to announce; stopping it is harmless."""
    link = SatelliteLink(
        Endpoint("127.0.0.1", 10700), Handler(), logger=_LOGGER, settings=FAST
    )

    with pytest.raises(SatelliteError, match="not connected"):
        await link.async_announce(pieces(b"\0\0"), SPEECH_FORMAT)
    await link.async_stop()


async def test_stop_pauses_the_satellite_and_ends_the_run(
    satellites: Satellites, links: Links, command: bytes
) -> None:
    """Unload: pause-satellite, the run's audio ended, stop again is a no-op."""
    satellite = await satellites(command, Device(firmware=Firmware.ALWAYS_STREAMING))
    handler = Handler()
    link = links(satellite, handler)
    await until(lambda: handler.runs and handler.available)

    await link.async_stop()
    await link.async_stop()

    assert not link.connected
    assert handler.runs[0].end is AudioEnd.STOPPED
    await until(lambda: "pause-satellite" in satellite.recording.types())
