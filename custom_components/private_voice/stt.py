"""Speech-to-text on the engines: the audio goes out while the user still speaks."""

import asyncio
from collections.abc import AsyncIterable
from typing import Final, override

from homeassistant.components import stt
from homeassistant.components.stt.models import SpeechAudioProcessing
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import AsrProgram

from .const import CONF_ENGINE_MODE, CONF_STT_MODEL, LOGGER, EngineMode
from .coordinator import EngineCoordinator, PrivateVoiceConfigEntry
from .engine_host.engines import VOICE_PRINT
from .entity import (
    ASSIST_CHANNELS,
    ASSIST_RATE,
    ASSIST_WIDTH,
    ENGINE_REPLY_TIMEOUT,
    PrivateVoiceEngineEntity,
    language_tag,
)
from .protocol.client import Endpoint, PeerError, WyomingConnection
from .rooms import RoomRefusedError, pipeline_satellite

# Requests go straight to the engines; Home Assistant need not queue them.
PARALLEL_UPDATES = 0

# The final text; transcript-start/chunk/stop before it are provisional.
_TRANSCRIPT: Final = "transcript"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the speech-to-text entity, if the engines include speech-to-text."""
    coordinator = entry.runtime_data.coordinator
    # Engine mode "services" may leave speech-to-text to another integration.
    if (endpoint := coordinator.endpoints.stt) and coordinator.data.stt:
        async_add_entities([PrivateVoiceSpeechToText(coordinator, endpoint)])


class PrivateVoiceSpeechToText(PrivateVoiceEngineEntity, stt.SpeechToTextEntity):
    """Transcribes Assist's audio with the engines' speech-to-text."""

    entity_description = EntityDescription(key="stt", translation_key="speech_to_text")

    def __init__(self, coordinator: EngineCoordinator, endpoint: Endpoint) -> None:
        """Transcribe on the speech-to-text engine at ``endpoint``."""
        super().__init__(coordinator, endpoint)
        data = coordinator.config_entry.data
        # Only the child process is started with the entry's model; other
        # engines choose their own.
        self._model: str | None = (
            data.get(CONF_STT_MODEL)
            if data[CONF_ENGINE_MODE] == EngineMode.LOCAL
            else None
        )

    @property
    @override
    def _program(self) -> AsrProgram | None:
        """Return the engines' speech-to-text."""
        return self.coordinator.data.stt

    @property
    @override
    def supported_languages(self) -> list[str]:
        """Every language of the installed models."""
        if (program := self._program) is None:
            return []
        return sorted(
            {
                language_tag(language)
                for model in program.models
                if model.installed
                for language in model.languages
            }
        )

    @property
    @override
    def supported_formats(self) -> list[stt.AudioFormats]:
        """WAV only."""
        return [stt.AudioFormats.WAV]

    @property
    @override
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """PCM only."""
        return [stt.AudioCodecs.PCM]

    @property
    @override
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """16-bit samples."""
        return [stt.AudioBitRates.BITRATE_16]

    @property
    @override
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """16 kHz."""
        return [stt.AudioSampleRates.SAMPLERATE_16000]

    @property
    @override
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Mono."""
        return [stt.AudioChannels.CHANNEL_MONO]

    @property
    @override
    def audio_processing(self) -> SpeechAudioProcessing:
        """What the engine asks of the audio (voice activity detection, gain)."""
        if (program := self._program) is None:
            return super().audio_processing
        return SpeechAudioProcessing(
            requires_external_vad=program.requires_external_vad,
            prefers_auto_gain_enabled=program.prefers_auto_gain_enabled,
            prefers_noise_reduction_enabled=program.prefers_noise_reduction_enabled,
        )

    @override
    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """Transcribe ``stream``, sending each chunk as soon as it arrives."""
        runtime = self.coordinator.config_entry.runtime_data
        # A satellite's room decides, chunk by chunk, what of its audio passes.
        stream = runtime.rooms.pipeline_stream(stream, bytes)
        # And whether the engine computes the speaker's voice print with it.
        satellite = pipeline_satellite()
        if satellite is not None:
            runtime.voice_id.new_utterance(satellite)
        voice_print = runtime.voice_id.wants_print(satellite)
        try:
            async with WyomingConnection(self._endpoint) as connection:
                await connection.write(
                    Transcribe(
                        name=self._model,
                        language=metadata.language,
                        context={VOICE_PRINT: True} if voice_print else None,
                    ).event()
                )
                await connection.write(
                    AudioStart(
                        rate=ASSIST_RATE, width=ASSIST_WIDTH, channels=ASSIST_CHANNELS
                    ).event()
                )
                transcript = await _async_transcribe(connection, stream)
        except (PeerError, TimeoutError) as err:
            LOGGER.error(
                "Speech-to-text on %s failed: %s",
                self._endpoint.uri,
                str(err) or "no transcript in time",
            )
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        except RoomRefusedError as err:
            LOGGER.debug("Speech-to-text stopped: %s", err)
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        if voice_print and satellite is not None:
            runtime.voice_id.take_print(satellite, transcript.context)
        return stt.SpeechResult(transcript.text, stt.SpeechResultState.SUCCESS)


async def _async_transcribe(
    connection: WyomingConnection, stream: AsyncIterable[bytes]
) -> Transcript:
    """Upload the audio while waiting for the transcript.

    The engine may answer (or fail) before the stream ends; then the upload
    stops.
    """
    upload = asyncio.create_task(_async_upload(connection, stream))
    receive = asyncio.create_task(connection.read_until(_TRANSCRIPT))
    try:
        done, _ = await asyncio.wait(
            (upload, receive), return_when=asyncio.FIRST_COMPLETED
        )
        # A lost connection is best explained by what the engine said last.
        if upload in done and not isinstance(upload.exception(), PeerError):
            upload.result()
        async with asyncio.timeout(ENGINE_REPLY_TIMEOUT):
            event = await receive
    finally:
        for task in (upload, receive):
            task.cancel()
        await asyncio.gather(upload, receive, return_exceptions=True)
    return Transcript.from_event(event)


async def _async_upload(
    connection: WyomingConnection, stream: AsyncIterable[bytes]
) -> None:
    """Forward every chunk as it arrives, then end the utterance."""
    async for audio in stream:
        await connection.write(
            AudioChunk(
                rate=ASSIST_RATE,
                width=ASSIST_WIDTH,
                channels=ASSIST_CHANNELS,
                audio=audio,
            ).event()
        )
    await connection.write(AudioStop().event())
