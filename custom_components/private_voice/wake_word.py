"""Wake word detection on the engines, listening to Assist's audio as it comes."""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import override

from homeassistant.components import wake_word
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import WakeProgram
from wyoming.wake import Detect, Detection, NotDetected

from .const import CONF_WAKE_WORDS, DOMAIN, LOGGER
from .coordinator import EngineCoordinator, PrivateVoiceConfigEntry
from .entity import (
    ASSIST_CHANNELS,
    ASSIST_RATE,
    ASSIST_WIDTH,
    ENGINE_REPLY_TIMEOUT,
    PrivateVoiceEngineEntity,
)
from .protocol.client import Endpoint, PeerError, WyomingConnection
from .rooms import RoomRefusedError

# Requests go straight to the engines; Home Assistant need not queue them.
PARALLEL_UPDATES = 0

type _Chunk = tuple[bytes, int]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the wake word entity, if the engines include wake word detection."""
    coordinator = entry.runtime_data.coordinator
    # Engine mode "services" may leave wake word detection to another integration.
    if (endpoint := coordinator.endpoints.wake) and coordinator.data.wake:
        async_add_entities([PrivateVoiceWakeWord(coordinator, endpoint)])


class PrivateVoiceWakeWord(PrivateVoiceEngineEntity, wake_word.WakeWordDetectionEntity):
    """Listens for the wake words of the engines' models."""

    entity_description = EntityDescription(key="wake_word", translation_key="wake_word")

    def __init__(self, coordinator: EngineCoordinator, endpoint: Endpoint) -> None:
        """Listen with the wake word engine at ``endpoint``."""
        super().__init__(coordinator, endpoint)
        # The wake words the user chose; None: every installed one.
        self._chosen: list[str] | None = (
            coordinator.config_entry.data.get(CONF_WAKE_WORDS) or None
        )

    @property
    @override
    def _program(self) -> WakeProgram | None:
        """Return the engines' wake word detection."""
        return self.coordinator.data.wake

    @override
    async def get_supported_wake_words(self) -> list[wake_word.WakeWord]:
        """Return the installed models (the chosen ones, if any), named by phrase."""
        if (program := self._program) is None:
            return []
        return [
            wake_word.WakeWord(
                id=model.name,
                name=model.phrase or model.description or model.name,
                phrase=model.phrase,
            )
            for model in program.models
            if model.installed and (self._chosen is None or model.name in self._chosen)
        ]

    @override
    async def _async_process_audio_stream(
        self, stream: AsyncIterable[_Chunk], wake_word_id: str | None
    ) -> wake_word.DetectionResult | None:
        """Listen to ``stream`` until a wake word is heard or the stream ends.

        A satellite's room decides, chunk by chunk, what of its audio passes: a
        refused stream ends with no detection.
        """
        stream = self.coordinator.config_entry.runtime_data.rooms.pipeline_stream(
            stream, lambda chunk: chunk[0]
        )
        try:
            async with WyomingConnection(self._endpoint) as connection:
                await connection.write(
                    Detect(
                        names=[wake_word_id] if wake_word_id else self._chosen
                    ).event()
                )
                await connection.write(
                    AudioStart(
                        rate=ASSIST_RATE, width=ASSIST_WIDTH, channels=ASSIST_CHANNELS
                    ).event()
                )
                return await self._async_listen(connection, aiter(stream), wake_word_id)
        except RoomRefusedError as err:
            LOGGER.debug("Wake word detection stopped: %s", err)
            return None
        except (PeerError, TimeoutError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="wake_word_failed",
                translation_placeholders={
                    "uri": self._endpoint.uri,
                    "error": str(err) or "no answer in time",
                },
            ) from err

    async def _async_listen(
        self,
        connection: WyomingConnection,
        chunks: AsyncIterator[_Chunk],
        wake_word_id: str | None,
    ) -> wake_word.DetectionResult | None:
        """Send chunks as they arrive while waiting for a detection."""
        detection = asyncio.create_task(_async_read_detection(connection, wake_word_id))
        next_chunk: asyncio.Task[_Chunk | None] | None = None
        try:
            while True:
                next_chunk = asyncio.create_task(_anext_or_none(chunks))
                await asyncio.wait(
                    (next_chunk, detection), return_when=asyncio.FIRST_COMPLETED
                )
                if detection.done():
                    # The chunk being read is not dropped: it belongs to what
                    # the user says after the wake word, so speech-to-text gets it.
                    queued = await next_chunk
                    return self._result(
                        detection.result(), [queued] if queued else None
                    )
                if (chunk := next_chunk.result()) is None:
                    await connection.write(AudioStop().event())
                    async with asyncio.timeout(ENGINE_REPLY_TIMEOUT):
                        return self._result(await detection, None)
                audio, timestamp = chunk
                await connection.write(
                    AudioChunk(
                        rate=ASSIST_RATE,
                        width=ASSIST_WIDTH,
                        channels=ASSIST_CHANNELS,
                        audio=audio,
                        timestamp=timestamp,
                    ).event()
                )
        finally:
            # A failed write leaves the detection unread; a cancelled run, a chunk.
            pending = [
                task for task in (detection, next_chunk) if task and not task.done()
            ]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _result(
        self, detection: Detection | None, queued: list[_Chunk] | None
    ) -> wake_word.DetectionResult | None:
        if detection is None:
            return None
        name = detection.name or ""
        models = self._program.models if self._program else []
        phrase = next(
            (model.phrase for model in models if model.name == name and model.phrase),
            name,
        )
        return wake_word.DetectionResult(
            wake_word_id=name,
            wake_word_phrase=phrase,
            timestamp=detection.timestamp,
            queued_audio=queued,
        )


async def _anext_or_none[T](chunks: AsyncIterator[T]) -> T | None:
    """Return the next item, or None at the end."""
    return await anext(chunks, None)


async def _async_read_detection(
    connection: WyomingConnection, wake_word_id: str | None
) -> Detection | None:
    """Return the detection of ``wake_word_id`` (any, if None); None: not detected."""
    while True:
        event = await connection.read()
        if NotDetected.is_type(event.type):
            return None
        if Detection.is_type(event.type):
            detection = Detection.from_event(event)
            if wake_word_id is None or detection.name == wake_word_id:
                return detection
