"""The wake word entity, listening to piper's speech on a real engine host."""

from collections.abc import AsyncIterator

from homeassistant.components import wake_word
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.private_voice.const import CONF_WAKE_WORDS, DOMAIN
from custom_components.private_voice.protocol.client import Endpoint

from .engines import (
    WAKE_PHRASE,
    async_chunks,
    async_microphone,
    async_set_up,
    entity_id,
    remote_entry,
    silence,
    speech,
)

# 16-bit samples at 16 kHz: bytes per millisecond.
BYTES_PER_MS = 32


def scene() -> tuple[bytes, tuple[int, int]]:
    """Say the wake phrase between two sentences; where (ms) it is said."""
    before = speech("The weather is nice today.") + silence(0.5)
    phrase = speech(WAKE_PHRASE)
    audio = before + phrase + silence(0.5) + speech("What time is it?")
    start = len(before) // BYTES_PER_MS
    return audio, (start, start + len(phrase) // BYTES_PER_MS)


async def timed_chunks(
    audio: bytes, live: bytes = b""
) -> AsyncIterator[tuple[bytes, int]]:
    """Stream ``audio`` and then ``live`` as a pipeline does, with times (ms).

    ``audio`` comes as fast as it is read, ``live`` as a microphone says it.
    """
    position = 0
    for part in (async_chunks(audio), async_microphone(live)):
        async for chunk in part:
            yield chunk, position // BYTES_PER_MS
            position += len(chunk)


async def set_up_wake_word(
    hass: HomeAssistant, endpoint: Endpoint, port: int, **data: object
) -> wake_word.WakeWordDetectionEntity:
    """Set up an entry on the engine host; return its wake word entity."""
    entry = remote_entry(endpoint, port, **data)
    await async_set_up(hass, entry)
    entity = wake_word.async_get_wake_word_detection_entity(
        hass, entity_id(hass, entry, "wake_word", "wake_word")
    )
    assert entity is not None
    return entity


async def test_offers_the_models_by_phrase(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    engine_host_endpoint: Endpoint,
    free_port: int,
) -> None:
    """Every installed model, named by the phrase that wakes it."""
    entity = await set_up_wake_word(hass, engine_host_endpoint, free_port)
    client = await hass_ws_client(hass)

    await client.send_json_auto_id(
        {"type": "wake_word/info", "entity_id": entity.entity_id}
    )
    response = await client.receive_json()

    assert response["success"]
    wake_words = {word["id"]: word for word in response["result"]["wake_words"]}
    assert {"okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"} <= set(wake_words)
    assert wake_words["okay_nabu"]["name"] == wake_words["okay_nabu"]["phrase"]
    assert wake_words["okay_nabu"]["phrase"].lower() == "okay nabu"


async def test_offers_only_the_chosen_wake_words(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> None:
    """The entry's wake words limit what is offered and what is listened for."""
    entity = await set_up_wake_word(
        hass,
        engine_host_endpoint,
        free_port,
        **{CONF_WAKE_WORDS: ["okay_nabu", "hey_jarvis"]},
    )

    offered = await entity.get_supported_wake_words()
    assert {word.id for word in offered} == {"okay_nabu", "hey_jarvis"}
    # No wake word asked for: any of the chosen ones.
    audio, _ = scene()
    result = await entity.async_process_audio_stream(timed_chunks(audio), None)
    assert result is not None
    assert result.wake_word_id == "okay_nabu"


async def test_detects_the_wake_word_in_speech(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> None:
    """Heard where it was said; the chunk in flight goes on to speech-to-text."""
    entity = await set_up_wake_word(hass, engine_host_endpoint, free_port)
    audio, (start, end) = scene()
    # The microphone goes on after the scene, so a chunk is on its way when
    # the detection comes.
    live = silence(10)

    result = await entity.async_process_audio_stream(
        timed_chunks(audio, live), "okay_nabu"
    )

    assert result is not None
    assert result.wake_word_id == "okay_nabu"
    assert result.wake_word_phrase.lower() == "okay nabu"
    assert result.timestamp is not None
    # Detected once the phrase is complete, before the next sentence is over.
    assert start <= result.timestamp <= end + 1000
    assert result.queued_audio is not None
    [(queued, queued_at)] = result.queued_audio
    assert queued == (audio + live)[queued_at * BYTES_PER_MS :][: len(queued)]
    assert queued_at >= result.timestamp
    # The entity's state is when it last heard a wake word.
    assert hass.states.get(entity.entity_id).state not in ("unknown", "unavailable")


async def test_speech_without_the_wake_word(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> None:
    """The stream ends without the wake word: no detection."""
    entity = await set_up_wake_word(hass, engine_host_endpoint, free_port)
    audio = speech("The weather is nice today.") + speech("What time is it?")

    assert await entity.async_process_audio_stream(timed_chunks(audio), None) is None
    assert hass.states.get(entity.entity_id).state == "unknown"


async def test_unknown_wake_word_is_a_translated_error(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> None:
    """The engine refuses a wake word it has no model for."""
    entity = await set_up_wake_word(hass, engine_host_endpoint, free_port)

    with pytest.raises(HomeAssistantError) as raised:
        await entity.async_process_audio_stream(
            timed_chunks(silence(1)), "hey_private_voice"
        )

    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "wake_word_failed"
