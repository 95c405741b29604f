"""Text-to-speech on the engines, streamed while the reply is still being written."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, Mapping
import io
from typing import Any, Final, override
import wave

from homeassistant.components import tts
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import language as language_util
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import TtsProgram
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from .const import CONF_ENGINE_MODE, CONF_VOICE, DOMAIN, EngineMode
from .coordinator import EngineCoordinator, PrivateVoiceConfigEntry
from .entity import ENGINE_REPLY_TIMEOUT, PrivateVoiceEngineEntity, language_tag
from .protocol.client import Endpoint, PeerError, WyomingConnection

# Requests go straight to the engines; Home Assistant need not queue them.
PARALLEL_UPDATES = 0

# The option naming one of a voice's speakers, as Home Assistant's wyoming has it.
ATTR_SPEAKER: Final = "speaker"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the text-to-speech entity, if the engines include text-to-speech."""
    coordinator = entry.runtime_data.coordinator
    # Engine mode "services" may leave text-to-speech to another integration.
    if (endpoint := coordinator.endpoints.tts) and coordinator.data.tts:
        async_add_entities([PrivateVoiceTextToSpeech(coordinator, endpoint)])


class PrivateVoiceTextToSpeech(PrivateVoiceEngineEntity, tts.TextToSpeechEntity):
    """Speaks with the voices of the engines' text-to-speech."""

    entity_description = EntityDescription(key="tts", translation_key="text_to_speech")

    def __init__(self, coordinator: EngineCoordinator, endpoint: Endpoint) -> None:
        """Speak with the text-to-speech engine at ``endpoint``."""
        super().__init__(coordinator, endpoint)
        self._attr_supported_options = [tts.ATTR_VOICE, ATTR_SPEAKER]
        entry = coordinator.config_entry
        self._language: str = entry.runtime_data.language
        # The voice the user chose for the child process; other engines offer
        # their own, and a language's first voice speaks unless one is asked for.
        self._voice: str | None = (
            entry.data.get(CONF_VOICE)
            if entry.data[CONF_ENGINE_MODE] == EngineMode.LOCAL
            else None
        )

    @property
    @override
    def _program(self) -> TtsProgram | None:
        """Return the engines' text-to-speech."""
        return self.coordinator.data.tts

    def _voices(self) -> dict[str, list[tts.Voice]]:
        """Return the installed voices by language tag, each list sorted by name."""
        voices: defaultdict[str, list[tts.Voice]] = defaultdict(list)
        if (program := self._program) is not None:
            for voice in program.voices:
                if not voice.installed:
                    continue
                for language in voice.languages:
                    voices[language_tag(language)].append(
                        tts.Voice(voice.name, voice.description or voice.name)
                    )
        for language_voices in voices.values():
            language_voices.sort(key=lambda voice: voice.name)
        return voices

    @property
    @override
    def supported_languages(self) -> list[str]:
        """The languages of the installed voices."""
        return sorted(self._voices())

    @property
    @override
    def default_language(self) -> str:
        """The entry's language, or the closest one a voice speaks."""
        supported = self.supported_languages
        matches = language_util.matches(
            self._language, supported, country=self.hass.config.country
        )
        return next(iter(matches + supported), self._language)

    @callback
    @override
    def async_get_supported_voices(self, language: str) -> list[tts.Voice] | None:
        """Return the voices that speak ``language``."""
        return self._voices().get(language)

    @override
    def async_supports_streaming_input(self) -> bool:
        """Whether the engine speaks text while it is still arriving."""
        program = self._program
        return program is not None and program.supports_synthesize_streaming

    def _synthesize_voice(
        self, language: str, options: Mapping[str, Any]
    ) -> SynthesizeVoice | None:
        """Choose the voice asked for, else the entry's or the first in ``language``."""
        if (name := options.get(tts.ATTR_VOICE)) is None:
            speaking = [voice.voice_id for voice in self._voices().get(language, [])]
            name = (
                self._voice if self._voice in speaking else next(iter(speaking), None)
            )
        if name is None:
            return None
        return SynthesizeVoice(name=name, speaker=options.get(ATTR_SPEAKER))

    def _error(self, err: PeerError | TimeoutError) -> HomeAssistantError:
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="text_to_speech_failed",
            translation_placeholders={
                "uri": self._endpoint.uri,
                "error": str(err) or "no audio in time",
            },
        )

    @override
    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> tts.TtsAudioType:
        """Speak ``message`` in one request; WAV."""
        voice = self._synthesize_voice(language, options)
        try:
            async with WyomingConnection(self._endpoint) as connection:
                await connection.write(Synthesize(text=message, voice=voice).event())
                return "wav", await _async_read_wav(connection)
        except (PeerError, TimeoutError) as err:
            raise self._error(err) from err

    @override
    async def async_stream_tts_audio(
        self, request: TTSAudioRequest
    ) -> tts.TTSAudioResponse:
        """Speak text as it arrives; WAV whose header says "length unknown"."""
        voice = self._synthesize_voice(request.language, request.options)
        return tts.TTSAudioResponse(
            "wav", self._async_stream_wav(request.message_gen, voice)
        )

    async def _async_stream_wav(
        self, message_gen: AsyncGenerator[str], voice: SynthesizeVoice | None
    ) -> AsyncGenerator[bytes]:
        try:
            async with WyomingConnection(self._endpoint) as connection:
                writer = asyncio.create_task(
                    _async_send_text(connection, message_gen, voice)
                )
                try:
                    async for audio in _async_stream_audio(connection, writer):
                        yield audio
                finally:
                    writer.cancel()
                    await asyncio.gather(writer, return_exceptions=True)
        except (PeerError, TimeoutError) as err:
            raise self._error(err) from err


def _wav(start: AudioStart, pcm: bytes) -> bytes:
    """Make a WAV file of ``pcm``; without ``pcm``, a header for audio to come."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setframerate(start.rate)
        writer.setsampwidth(start.width)
        writer.setnchannels(start.channels)
        writer.writeframes(pcm)
    return buffer.getvalue()


async def _async_read_wav(connection: WyomingConnection) -> bytes:
    """Collect one audio-start/chunk/stop group as a WAV file."""
    async with asyncio.timeout(ENGINE_REPLY_TIMEOUT):
        start = AudioStart.from_event(await connection.read_until("audio-start"))
    pcm = bytearray()
    while True:
        async with asyncio.timeout(ENGINE_REPLY_TIMEOUT):
            event = await connection.read()
        if AudioChunk.is_type(event.type):
            pcm += AudioChunk.from_event(event).audio
        elif AudioStop.is_type(event.type):
            return _wav(start, bytes(pcm))


async def _async_send_text(
    connection: WyomingConnection,
    message_gen: AsyncGenerator[str],
    voice: SynthesizeVoice | None,
) -> None:
    """Stream the text to the engine as it is written."""
    await connection.write(SynthesizeStart(voice=voice).event())
    message = ""
    async for text in message_gen:
        message += text
        await connection.write(SynthesizeChunk(text=text).event())
    # The whole text, for engines that cannot stream; streaming ones ignore it.
    await connection.write(Synthesize(text=message, voice=voice).event())
    await connection.write(SynthesizeStop().event())


async def _async_stream_audio(
    connection: WyomingConnection, writer: asyncio.Task[None]
) -> AsyncGenerator[bytes]:
    """Yield a WAV header, then the PCM of every sentence, until the engine is done.

    The engine sends an audio-start/chunk/stop group per sentence, all in the
    voice's one format; the first group's format heads the WAV.
    """
    header_sent = False
    while not SynthesizeStopped.is_type(
        (event := await _async_next_event(connection, writer)).type
    ):
        if AudioStart.is_type(event.type) and not header_sent:
            header_sent = True
            yield _wav(AudioStart.from_event(event), b"")
        elif AudioChunk.is_type(event.type) and header_sent:
            yield AudioChunk.from_event(event).audio


async def _async_next_event(
    connection: WyomingConnection, writer: asyncio.Task[None]
) -> Event:
    """Read the engine's next event, or raise the error of the text if it failed.

    While text still arrives, the engine may rightly be silent for as long as
    the text takes; once it is all sent, the engine must answer in time.
    """
    read = asyncio.create_task(connection.read())
    try:
        await asyncio.wait((read, writer), return_when=asyncio.FIRST_COMPLETED)
        # A lost connection is best explained by what the engine said last.
        if writer.done() and not isinstance(writer.exception(), PeerError):
            writer.result()
        async with asyncio.timeout(ENGINE_REPLY_TIMEOUT):
            return await read
    finally:
        read.cancel()
        await asyncio.gather(read, return_exceptions=True)
