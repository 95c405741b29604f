"""The engine host over real TCP, with real models, driven by the wyoming client."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
import json
from pathlib import Path
import re

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
)
from wyoming.wake import Detect, Detection, NotDetected

from custom_components.private_voice.engine_host.server import (
    TTS_CHUNK_BYTES,
    EngineHostServer,
    Engines,
    ServerLimits,
)
from custom_components.private_voice.engine_host.stt import (
    FasterWhisperStt,
    WhisperModelSpec,
)
from custom_components.private_voice.engine_host.tts import PiperTts
from custom_components.private_voice.engine_host.wake import MicroWakeWord

from ..wyoming_client import (
    assert_a_change_of_format_is_refused,
    assert_implicit_wake_stream_reports_every_detection,
    assert_streaming_synthesis_speaks_early,
    read_until,
)
from .conftest import Speak, silence

COMMAND = "Turn on the kitchen lights."


def frame(event_type: str, **data: object) -> bytes:
    """One Wyoming header line with inline data, as an ESP32 sends it."""
    return json.dumps({"type": event_type, "data": data}).encode() + b"\n"


CHUNK_SAMPLES = 1024


def normalise(text: str) -> str:
    """Lower case words without punctuation."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


@pytest.fixture(scope="module")
def engines(
    executor: ThreadPoolExecutor,
    whisper_tiny_en_dir: Path,
    whisper_base_dir: Path,
    piper_voice_path: Path,
) -> Engines:
    """Real engines, loaded once for the module."""
    return Engines(
        stt=FasterWhisperStt(
            {
                "tiny.en": WhisperModelSpec(
                    path=whisper_tiny_en_dir, description="Whisper tiny (English)"
                ),
                "base": WhisperModelSpec(
                    path=whisper_base_dir,
                    description="Whisper base",
                    languages=["en", "de", "fr", "nl"],
                ),
            },
            executor,
        ),
        tts=PiperTts({"en_US-joe-medium": piper_voice_path}, executor),
        wake=[MicroWakeWord(executor)],
    )


@pytest.fixture
def limits() -> ServerLimits:
    """Use the default limits; tests override them where they test one."""
    return ServerLimits()


@pytest.fixture
async def server(
    socket_enabled: None, engines: Engines, limits: ServerLimits
) -> AsyncIterator[EngineHostServer]:
    """Run an engine host on a free loopback port."""
    host = EngineHostServer(engines, version="1.2.3", limits=limits)
    await host.start("127.0.0.1", 0)
    yield host
    await host.stop()


@pytest.fixture(scope="module")
def command_22k(piper_voice_path: Path) -> bytes:
    """Say the command with piper at its own 22.05 kHz (the host converts it).

    Without piper's random noise, so the audio is the same in every run, and
    after 0.3 s of silence, as a microphone hears it.
    """
    from piper import PiperVoice, SynthesisConfig  # noqa: PLC0415 - heavy

    voice = PiperVoice.load(piper_voice_path)
    exact = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(COMMAND, syn_config=exact))
    assert chunks[0].sample_rate == 22050
    lead = bytes(2 * 22050 * 3 // 10)
    return lead + b"".join(chunk.audio_int16_bytes for chunk in chunks)


def _chunks(samples: np.ndarray, rate: int = 16000) -> Iterator[Event]:
    data = samples.astype(np.int16).tobytes()
    step = CHUNK_SAMPLES * 2
    for offset in range(0, len(data), step):
        yield AudioChunk(
            rate=rate, width=2, channels=1, audio=data[offset : offset + step]
        ).event()


async def _transcribe(
    port: int, audio: bytes, rate: int, transcribe: Transcribe | None = None
) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event((transcribe or Transcribe(language="en")).event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        step = CHUNK_SAMPLES * 2
        for offset in range(0, len(audio), step):
            await client.write_event(
                AudioChunk(
                    rate=rate, width=2, channels=1, audio=audio[offset : offset + step]
                ).event()
            )
        await client.write_event(AudioStop().event())
        return await read_until(client, "transcript")


# describe / ping ---------------------------------------------------------------


async def test_describe_tells_what_is_installed(server: EngineHostServer) -> None:
    """Info lists the real models, voices and wake words, and streaming support."""
    async with AsyncTcpClient("127.0.0.1", server.port) as client:
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
    info = Info.from_event(events[-1])
    (asr,) = info.asr
    assert asr.supports_transcript_streaming
    assert [model.name for model in asr.models] == ["tiny.en", "base"]
    assert asr.models[0].languages == ["en"]
    assert {"en", "de"} <= set(asr.models[1].languages)
    (tts,) = info.tts
    assert tts.supports_synthesize_streaming
    assert [voice.name for voice in tts.voices] == ["en_US-joe-medium"]
    assert tts.voices[0].languages == ["en_US"]
    (wake,) = info.wake
    assert {"okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"} <= {
        model.name for model in wake.models
    }
    assert all(model.phrase for model in wake.models)


async def test_ping_pong(server: EngineHostServer) -> None:
    """Ping is answered with pong, echoing its text."""
    async with AsyncTcpClient("127.0.0.1", server.port) as client:
        await client.write_event(Ping(text="hello").event())
        events = await read_until(client, "pong")
    assert Pong.from_event(events[-1]).text == "hello"


# speech-to-text ----------------------------------------------------------------


async def test_transcribes_piper_speech_at_its_own_rate(
    server: EngineHostServer, command_22k: bytes
) -> None:
    """22.05 kHz speech is converted and transcribed, streamed as start/chunk/stop."""
    tail = np.zeros(
        22050 // 2, dtype=np.int16
    ).tobytes()  # the satellite's trailing silence
    events = await _transcribe(server.port, command_22k + tail, 22050)
    types = [event.type for event in events]
    assert types[0] == "transcript-start"
    assert types[-2:] == ["transcript-stop", "transcript"]
    transcript = Transcript.from_event(events[-1])
    assert normalise(transcript.text) == normalise(COMMAND)
    streamed = "".join(e.data["text"] for e in events if e.type == "transcript-chunk")
    assert normalise(streamed) == normalise(transcript.text)


async def test_transcribes_with_the_multilingual_model(
    server: EngineHostServer, speak: Speak
) -> None:
    """A named model is used (the multilingual base model here)."""
    audio = np.concatenate([speak(COMMAND), silence(0.5)]).tobytes()
    events = await _transcribe(
        server.port, audio, 16000, Transcribe(name="base", language="en")
    )
    assert normalise(Transcript.from_event(events[-1]).text) == normalise(COMMAND)


async def test_unknown_model_is_an_error(
    server: EngineHostServer, speak: Speak
) -> None:
    """A model that is not installed is refused with a code, before any decoding."""
    events = await _transcribe(
        server.port, speak("Hello.").tobytes(), 16000, Transcribe(name="large-v3")
    )
    error = Error.from_event(events[-1])
    assert error.code == "unknown-model"
    assert "large-v3" in error.text


# wake word -----------------------------------------------------------------------


async def _detect(port: int, samples: np.ndarray, names: list[str]) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=names).event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for chunk in _chunks(samples):
            await client.write_event(chunk)
        await client.write_event(AudioStop().event())
        events = await read_until(client, "not-detected", "detection")
        if events[-1].type == "detection":
            # The stream ended: no not-detected follows a detection.
            await client.write_event(Ping().event())
            events += await read_until(client, "pong")
        return events


async def test_wake_word_inside_speech(server: EngineHostServer, speak: Speak) -> None:
    """One detection of okay_nabu, timed where the phrase was said."""
    before = np.concatenate([speak("The weather is nice today."), silence(0.5)])
    wake = speak("Okay Nabu!")
    after = np.concatenate([silence(0.5), speak("What time is it?"), silence(0.5)])
    events = await _detect(
        server.port, np.concatenate([before, wake, after]), ["okay_nabu"]
    )
    detections = [Detection.from_event(e) for e in events if e.type == "detection"]
    assert len(detections) == 1
    assert detections[0].name == "okay_nabu"
    start_ms = len(before) * 1000 // 16000
    end_ms = (len(before) + len(wake)) * 1000 // 16000
    assert detections[0].timestamp is not None
    assert start_ms <= detections[0].timestamp <= end_ms + 500


async def test_no_wake_word_no_detection(
    server: EngineHostServer, speak: Speak
) -> None:
    """Speech without the wake word ends in not-detected."""
    audio = np.concatenate(
        [speak("The weather is nice today. What time is it?"), silence(0.5)]
    )
    events = await _detect(server.port, audio, ["okay_nabu"])
    assert [e.type for e in events] == ["not-detected"]
    assert NotDetected.is_type(events[-1].type)


async def test_implicit_wake_stream_reports_every_detection(
    server: EngineHostServer, speak: Speak
) -> None:
    """wyoming-satellite's wake stream: no audio-start, a detect per command."""
    phrase = np.concatenate([silence(0.5), speak("Okay Nabu!"), silence(1.0)])
    await assert_implicit_wake_stream_reports_every_detection(
        server.port, phrase.tobytes()
    )


async def test_a_wake_stream_does_not_change_format(server: EngineHostServer) -> None:
    """A chunk in another format mid-stream is refused, and the stream closed."""
    await assert_a_change_of_format_is_refused(server.port)


async def test_unknown_wake_word_is_an_error(server: EngineHostServer) -> None:
    """A wake word nobody offers is refused with a code."""
    events = await _detect(server.port, silence(0.1), ["hey_siri"])
    assert Error.from_event(events[-1]).code == "unknown-model"


# text-to-speech ------------------------------------------------------------------


async def test_synthesize_one_group_of_2048_byte_chunks(
    server: EngineHostServer,
) -> None:
    """Synthesize → audio-start, 2048-byte chunks, audio-stop."""
    async with AsyncTcpClient("127.0.0.1", server.port) as client:
        await client.write_event(Synthesize(text="Hello. The lights are on.").event())
        events = await read_until(client, "audio-stop")
    assert events[0].type == "audio-start"
    assert AudioStart.from_event(events[0]).rate == 22050
    chunks = [AudioChunk.from_event(e) for e in events[1:-1]]
    assert chunks
    assert all(len(chunk.audio) == TTS_CHUNK_BYTES for chunk in chunks[:-1])
    assert 0 < len(chunks[-1].audio) <= TTS_CHUNK_BYTES
    # More than a second of speech, and not silence.
    pcm = np.frombuffer(b"".join(c.audio for c in chunks), dtype=np.int16)
    assert len(pcm) > 22050
    assert np.abs(pcm).max() > 1000


async def test_streaming_synthesis_speaks_before_the_text_ends(
    server: EngineHostServer,
) -> None:
    """The first sentence is heard while the rest of the text has not been sent."""
    await assert_streaming_synthesis_speaks_early(server.port)


async def test_unknown_voice_is_an_error(server: EngineHostServer) -> None:
    """A voice that is not installed is refused with a code."""
    async with AsyncTcpClient("127.0.0.1", server.port) as client:
        await client.write_event(
            Event(
                "synthesize", {"text": "Hi.", "voice": {"name": "de_DE-thorsten-high"}}
            )
        )
        events = await read_until(client, "audio-stop")
    assert Error.from_event(events[-1]).code == "unknown-voice"


# bad input ----------------------------------------------------------------------


async def _raw(port: int, data: bytes) -> list[dict[str, object]]:
    """Send raw bytes; return the headers of what comes back until close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    lines: list[dict[str, object]] = []
    async with asyncio.timeout(30):
        while line := await reader.readline():
            header = json.loads(line)
            lines.append(header)
            if length := header.get("data_length"):
                header["data"] = json.loads(await reader.readexactly(length))
    writer.close()
    await writer.wait_closed()
    return lines


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"garbage that is not json\n", "bad-frame"),
        (frame("audio-start", rate=16000), "bad-frame"),
        (frame("audio-start", rate="fast", width=2, channels=1), "bad-audio-format"),
        (b'{"type": "audio-chunk", "payload_length": 99999999}\n', "frame-too-large"),
        (b"x" * 70000, "frame-too-large"),
        (
            frame("audio-start", rate=16000, width=4, channels=1),
            "bad-audio-format",
        ),
        (
            frame("audio-chunk", rate=16000, width=2, channels=1),
            "no-audio-start",
        ),
        # A transcription needs an audio-start; only a wake stream opens without.
        (
            frame("transcribe") + frame("audio-chunk", rate=16000, width=2, channels=1),
            "no-audio-start",
        ),
        (frame("detect") + frame("audio-stop"), "no-audio-start"),
        (
            frame("detect") + frame("audio-chunk", rate=96000, width=2, channels=1),
            "bad-audio-format",
        ),
        (frame("detect") + frame("audio-chunk", rate=16000), "bad-frame"),
        (
            frame("detect")
            + frame("audio-start", rate=16000, width=2, channels=1)
            + frame("audio-chunk", rate=16000, width=2, channels=2),
            "bad-audio-format",
        ),
        (b'{"type": "synthesize-chunk", "data": {"text": "hi"}}\n', "unexpected-event"),
    ],
)
async def test_bad_input_gets_an_error_and_a_close(
    server: EngineHostServer, data: bytes, code: str
) -> None:
    """Each kind of bad input: one error event with its code, then the close."""
    replies = await _raw(server.port, data)
    assert len(replies) == 1
    assert replies[0]["type"] == "error"
    assert replies[0]["data"]["code"] == code  # type: ignore[index]


async def test_bad_clients_do_not_disturb_good_ones(
    server: EngineHostServer, speak: Speak
) -> None:
    """8 clients transcribe while others send garbage, vanish or stall."""
    audio = np.concatenate([speak(COMMAND), silence(0.5)]).tobytes()

    async def vanish_mid_utterance() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(frame("audio-start", rate=16000, width=2, channels=1))
        writer.write(
            b'{"type": "audio-chunk", "payload_length": 4000}\n' + audio[:4000]
        )
        await writer.drain()
        writer.close()

    good = [_transcribe(server.port, audio, 16000) for _ in range(8)]
    bad = [
        _raw(server.port, b"not json\n"),
        _raw(server.port, b'{"type": "audio-chunk", "payload_length": 99999999}\n'),
        _raw(
            server.port,
            frame("audio-start", rate=96000, width=2, channels=1),
        ),
        vanish_mid_utterance(),
    ]
    results = await asyncio.gather(*good, *bad)
    for events in results[:8]:
        assert normalise(Transcript.from_event(events[-1]).text) == normalise(COMMAND)
    # Every slot came back: a ninth transcription still runs.
    events = await _transcribe(server.port, audio, 16000)
    assert normalise(Transcript.from_event(events[-1]).text) == normalise(COMMAND)


@pytest.mark.parametrize("limits", [ServerLimits(idle_timeout=0.2)])
async def test_idle_connection_times_out(server: EngineHostServer) -> None:
    """A client that goes quiet is told so and closed."""
    replies = await _raw(server.port, b"")
    assert replies[0]["data"]["code"] == "timeout"  # type: ignore[index]


@pytest.mark.parametrize("limits", [ServerLimits(max_connections=1)])
async def test_connection_cap(server: EngineHostServer) -> None:
    """Over the connection cap, a client is refused as busy; others go on."""
    async with AsyncTcpClient("127.0.0.1", server.port) as first:
        await first.write_event(Ping().event())
        await read_until(first, "pong")
        replies = await _raw(server.port, b"")
        assert replies[0]["data"]["code"] == "busy"  # type: ignore[index]
        await first.write_event(Ping().event())
        assert (await read_until(first, "pong"))[-1].type == "pong"
