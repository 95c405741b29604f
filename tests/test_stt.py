"""The speech-to-text entity, transcribing piper's speech on a real engine host."""

import asyncio
from collections.abc import AsyncIterator
import contextlib
import logging
import re

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.private_voice.protocol.client import Endpoint

from .engines import (
    COMMAND,
    async_chunks,
    async_set_up,
    entity_id,
    remote_entry,
    services_entry,
    silence,
    speech,
)

COMMAND_WORDS = ["turn", "on", "the", "kitchen", "lights"]
HEADER = "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; channel=1"


def words(text: str | None) -> list[str]:
    """Return the lower-case words of ``text``."""
    return re.findall(r"[a-z']+", (text or "").lower())


def metadata(language: str = "en") -> stt.SpeechMetadata:
    """Return what an Assist pipeline sends with its audio."""
    return stt.SpeechMetadata(
        language=language,
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )


@pytest.fixture
async def stt_entity(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> str:
    """Set up an entry on the engine host; return its speech-to-text entity."""
    entry = remote_entry(engine_host_endpoint, free_port)
    await async_set_up(hass, entry)
    return entity_id(hass, entry, "stt", "stt")


async def test_transcribes_speech_over_the_api(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, stt_entity: str
) -> None:
    """Home Assistant's speech-to-text API hears the command through our entity."""
    client = await hass_client()

    response = await client.post(
        f"/api/stt/{stt_entity}",
        headers={"X-Speech-Content": f"{HEADER}; language=en"},
        data=speech(COMMAND) + silence(0.5),
    )

    assert response.status == 200
    result = await response.json()
    assert result["result"] == "success"
    assert words(result["text"]) == COMMAND_WORDS
    # The entity's state is when it last transcribed.
    assert hass.states.get(stt_entity).state not in ("unknown", "unavailable")


async def test_describes_the_engine(hass: HomeAssistant, stt_entity: str) -> None:
    """Languages from the host's models; 16 kHz 16-bit mono WAV in."""
    provider = stt.async_get_speech_to_text_entity(hass, stt_entity)
    assert provider is not None

    # tiny.en transcribes English only.
    assert provider.supported_languages == ["en"]
    assert provider.check_metadata(metadata())
    assert not provider.check_metadata(metadata("de"))
    # The engine host ends utterances only on audio-stop: the pipeline's VAD must.
    assert provider.audio_processing.requires_external_vad


async def test_refusal_is_an_error_result(
    hass: HomeAssistant, stt_entity: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A language the models do not know: an error result and one log line.

    The log line has the engine's reason when its ``error`` event arrives
    before the audio still being sent finds the connection closed.
    """
    entity = stt.async_get_speech_to_text_entity(hass, stt_entity)
    assert entity is not None

    with caplog.at_level(logging.ERROR):
        result = await entity.async_process_audio_stream(
            metadata("de"), async_chunks(speech(COMMAND))
        )

    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    errors = [r for r in caplog.records if r.name.startswith("custom_components")]
    assert len(errors) == 1
    assert "Speech-to-text on tcp://127.0.0.1" in errors[0].getMessage()


class Relay:
    """A TCP relay to the engine host that counts the bytes it passes on."""

    def __init__(self, target: Endpoint) -> None:
        """Relay to ``target`` once started."""
        self._target = target
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._sent = 0
        self._progress = asyncio.Condition()

    async def start(self) -> Endpoint:
        """Listen on a free loopback port; return it."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return Endpoint("127.0.0.1", self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and end the relayed connections."""
        assert self._server is not None
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def sent(self, count: int) -> None:
        """Wait until ``count`` bytes went to the engine host."""
        async with self._progress:
            await self._progress.wait_for(lambda: self._sent >= count)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        host_reader, host_writer = await asyncio.open_connection(
            self._target.host, self._target.port
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pipe(reader, host_writer, counted=True))
                group.create_task(self._pipe(host_reader, writer, counted=False))
        finally:
            host_writer.close()
            writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        counted: bool,
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if counted:
                    async with self._progress:
                        self._sent += len(data)
                        self._progress.notify_all()
            writer.write_eof()


async def test_audio_goes_out_while_the_user_speaks(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> None:
    """The engine has the speech before the utterance ends: nothing is held back.

    The audio passes a relay, and the stream ends only once the relay has
    passed the speech on: an entity that buffered the utterance would wait
    forever.
    """
    relay = Relay(engine_host_endpoint)
    entry = services_entry(free_port, stt=await relay.start())
    await async_set_up(hass, entry)
    entity = stt.async_get_speech_to_text_entity(
        hass, entity_id(hass, entry, "stt", "stt")
    )
    assert entity is not None
    command = speech(COMMAND)

    async def spoken() -> AsyncIterator[bytes]:
        async for chunk in async_chunks(command):
            yield chunk
        await relay.sent(len(command))
        yield silence(0.5)

    try:
        async with asyncio.timeout(60):
            result = await entity.async_process_audio_stream(metadata(), spoken())
    finally:
        await relay.stop()

    assert words(result.text) == COMMAND_WORDS


async def test_services_without_speech_to_text(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> None:
    """Engine mode "services" without a speech-to-text URI: no entity for it.

    (The guard, a conversation agent, needs no engine.)
    """
    entry = services_entry(
        free_port, tts=engine_host_endpoint, wake=engine_host_endpoint
    )
    await async_set_up(hass, entry)

    domains = {
        entity.domain
        for entity in er.async_entries_for_config_entry(
            er.async_get(hass), entry.entry_id
        )
    }
    assert domains == {"conversation", "tts", "wake_word"}
