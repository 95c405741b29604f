"""Assist through our engines, end to end: say a command, the light turns on.

Also the engines' one device, and the entities following the engines' outage.
"""

import asyncio
from datetime import timedelta
import os
from pathlib import Path
import sys

from homeassistant.components import assist_pipeline, stt
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
)
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.private_voice import engine_host
from custom_components.private_voice.const import DOMAIN, ENGINE_REFRESH_INTERVAL
from custom_components.private_voice.engine_host.cli import READY
from custom_components.private_voice.protocol.client import Endpoint

from .conftest import KITCHEN_LIGHT
from .engines import (
    COMMAND,
    WAKE_PHRASE,
    async_create_pipeline,
    async_microphone,
    async_set_up,
    entity_id,
    remote_entry,
    silence,
    speech,
)

# The next refresh of the engines' coordinator (its interval, a second of jitter).
REFRESH = ENGINE_REFRESH_INTERVAL + timedelta(seconds=1)
PROVIDERS = {"stt": "stt", "tts": "tts", "wake_word": "wake_word"}
# On the same device: the guard, Private Voice's conversation agent.
ON_THE_ENGINES_DEVICE = {**PROVIDERS, "conversation": "guard"}


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep what the tests write (TTS cache, blueprints) out of the shared config."""
    return hass_tmp_config_dir


async def test_providers_share_one_device(
    hass: HomeAssistant,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    engine_host_endpoint: Endpoint,
    free_port: int,
) -> None:
    """Speech-to-text, text-to-speech, wake word, guard: one "Private Voice engines"."""
    entry = remote_entry(engine_host_endpoint, free_port)
    await async_set_up(hass, entry)

    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    assert {(e.domain, e.unique_id) for e in entities} == {
        (domain, f"{entry.entry_id}_{key}")
        for domain, key in ON_THE_ENGINES_DEVICE.items()
    }
    [device] = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert device.identifiers == {(DOMAIN, entry.entry_id)}
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.name == "Private Voice engines"
    assert (device.manufacturer, device.model) == ("Private Voice", "Engine host")
    assert device.sw_version == engine_host.__version__
    assert {e.device_id for e in entities} == {device.id}
    for entity in entities:
        assert hass.states.get(entity.entity_id).state != STATE_UNAVAILABLE


@pytest.fixture
async def pipeline_id(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    engine_host_endpoint: Endpoint,
    free_port: int,
) -> str:
    """Set up our engines; create an Assist pipeline on them, as the UI does."""
    entry = remote_entry(engine_host_endpoint, free_port)
    await async_set_up(hass, entry)
    return await async_create_pipeline(hass, await hass_ws_client(hass), entry)


@pytest.mark.parametrize(
    "run",
    [
        (PipelineStage.WAKE_WORD, [WAKE_PHRASE, COMMAND]),
        (PipelineStage.STT, [COMMAND]),
    ],
    ids=["wake_word", "stt"],
)
@pytest.mark.usefixtures("kitchen_light")
async def test_voice_command_turns_on_the_kitchen_light(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    pipeline_id: str,
    run: tuple[PipelineStage, list[str]],
) -> None:
    """Wake word, speech-to-text, intent, text-to-speech: all through our engines."""
    start_stage, spoken = run
    audio = silence(0.5)
    for text in spoken:
        audio += speech(text) + silence(0.5)
    # Silence after the command: the pipeline's voice detection ends the utterance.
    audio += silence(2)
    events: list[PipelineEvent] = []

    await assist_pipeline.async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=events.append,
        stt_metadata=stt.SpeechMetadata(
            language="",
            format=stt.AudioFormats.WAV,
            codec=stt.AudioCodecs.PCM,
            bit_rate=stt.AudioBitRates.BITRATE_16,
            sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
            channel=stt.AudioChannels.CHANNEL_MONO,
        ),
        stt_stream=async_microphone(audio),
        pipeline_id=pipeline_id,
        start_stage=start_stage,
        end_stage=PipelineStage.TTS,
        tts_audio_output="wav",
    )
    await hass.async_block_till_done()

    by_type = {event.type: event.data or {} for event in events}
    assert PipelineEventType.ERROR not in by_type, by_type[PipelineEventType.ERROR]
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_ON
    assert "kitchen" in by_type[PipelineEventType.STT_END]["stt_output"]["text"].lower()
    client = await hass_client()
    response = await client.get(by_type[PipelineEventType.TTS_END]["tts_output"]["url"])
    assert response.status == 200
    reply = await response.read()
    assert reply.startswith(b"RIFF")
    assert len(reply) > 16000  # a spoken reply, not an empty file


class EngineHost:
    """An engine host process of the test's own, to stop and start again."""

    def __init__(self, models_dir: Path) -> None:
        """Run with ``models_dir`` (the packaged models need nothing in it)."""
        self._models_dir = models_dir
        self._process: asyncio.subprocess.Process | None = None
        self.endpoint = Endpoint("127.0.0.1", 0)

    async def start(self) -> Endpoint:
        """Start listening on the same port as before (any free one the first time)."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "engine_host",
            "--uri",
            self.endpoint.uri,
            "--models-dir",
            str(self._models_dir),
            "--stt-model",
            "tiny.en",
            env={
                **os.environ,
                "PYTHONPATH": str(Path(engine_host.__file__).parent.parent),
            },
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = (await self._process.stdout.readline()).decode()
        assert line.startswith(READY), f"engine host did not start: {line!r}"
        self.endpoint = Endpoint.from_uri(line.removeprefix(READY))
        return self.endpoint

    async def kill(self) -> None:
        """End the process at once, as a crash would."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


async def test_entities_follow_the_engines_outage(
    hass: HomeAssistant,
    engine_host_endpoint: Endpoint,
    free_port: int,
    tmp_path: Path,
) -> None:
    """Engines gone: unavailable at the next refresh; back: available again."""
    host = EngineHost(tmp_path / "models")
    try:
        entry = remote_entry(await host.start(), free_port)
        await async_set_up(hass, entry)
        providers = [
            entity_id(hass, entry, domain, key) for domain, key in PROVIDERS.items()
        ]

        await host.kill()
        async_fire_time_changed(hass, dt_util.utcnow() + REFRESH)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert {hass.states.get(e).state for e in providers} == {STATE_UNAVAILABLE}

        await host.start()
        async_fire_time_changed(hass, dt_util.utcnow() + REFRESH)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert STATE_UNAVAILABLE not in {hass.states.get(e).state for e in providers}
    finally:
        await host.kill()
