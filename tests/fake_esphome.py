"""A fake ESPHome voice satellite: another integration's satellite and mute switch.

It stands in for a Voice PE or S3-BOX-3 on ESPHome, which cannot run here. As
Home Assistant's ``esphome`` integration does, it runs the Assist pipeline
from a background task, feeding the microphone audio through a queue, and
plays the reply by reading the pipeline's TTS stream. Its device also has a
"Mute" switch (``switch.<device>_mute``); like ESPHome firmware, the fake
microphone sends nothing while that switch is on, unless it is told to ignore
it (to show that the hub refuses such a satellite's audio itself).

Like ESPHome's, it plays announcements and starts conversations (asks a
question, then listens): its person answers with the next of ``answers``.
"""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, Final, override

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import PipelineEvent, PipelineEventType
from homeassistant.components.assist_pipeline.models import PipelineStage
from homeassistant.components.assist_satellite import (
    AssistSatelliteAnnouncement,
    AssistSatelliteConfiguration,
    AssistSatelliteEntity,
    AssistSatelliteEntityFeature,
)
from homeassistant.components.switch import SwitchEntity
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_config_flow,
    mock_integration,
    mock_platform,
)

from .engines import BYTES_PER_SECOND, CHUNK_BYTES

FAKE_DOMAIN: Final = "fake_esphome"
DEVICE_NAME: Final = "Voice PE"
_DEVICE_ID: Final = "voice-pe-0a1b2c"
WAKE_PHRASE: Final = "Okay Nabu"


class FakeMuteSwitch(SwitchEntity):
    """The device's "Mute" switch, named as ESPHome names it."""

    _attr_has_entity_name = True
    _attr_name = "Mute"
    _attr_should_poll = False

    def __init__(self, device: DeviceInfo, *, on: bool) -> None:
        """Start ``on`` or off."""
        self._attr_unique_id = f"{_DEVICE_ID}-mute"
        self._attr_device_info = device
        self._attr_is_on = on

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Mute the microphone."""
        self._attr_is_on = True
        self.async_write_ha_state()

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Unmute the microphone."""
        self._attr_is_on = False
        self.async_write_ha_state()


class FakeEsphomeSatellite(AssistSatelliteEntity):
    """An ESPHome-like Assist satellite: the pipeline runs as ESPHome runs it."""

    _attr_has_entity_name = True
    _attr_name = None
    _attr_supported_features = (
        AssistSatelliteEntityFeature.ANNOUNCE
        | AssistSatelliteEntityFeature.START_CONVERSATION
    )

    def __init__(
        self, device: DeviceInfo, mute: FakeMuteSwitch, *, honours_mute: bool
    ) -> None:
        """Listen through ``mute`` unless ``honours_mute`` is False."""
        self._attr_unique_id = f"{_DEVICE_ID}-assist_satellite"
        self._attr_device_info = device
        # What ESPHome asks for a satellite with a speaker: 16 kHz mono WAV.
        self._attr_tts_options = {
            tts.ATTR_PREFERRED_FORMAT: "wav",
            tts.ATTR_PREFERRED_SAMPLE_RATE: 16000,
            tts.ATTR_PREFERRED_SAMPLE_CHANNELS: 1,
            tts.ATTR_PREFERRED_SAMPLE_BYTES: 2,
        }
        self._mute = mute
        self._honours_mute = honours_mute
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        # What the test looks at.
        self.events: list[PipelineEvent] = []
        self.heard: list[bytes] = []
        self.said_all = asyncio.Event()
        self.pipeline_done = asyncio.Event()
        # Said after a question, in order; and what it was asked and told.
        self.answers: list[bytes] = []
        self.announced: list[str] = []

    @property
    def event_types(self) -> list[PipelineEventType]:
        """The types of the pipeline events, in order."""
        return [event.type for event in self.events]

    def _muted(self) -> bool:
        return self._honours_mute and bool(self._mute.is_on)

    def say(
        self,
        audio: bytes,
        *,
        start_stage: PipelineStage = PipelineStage.STT,
        paced: bool = False,
        woken: bool = True,
    ) -> None:
        """Be spoken to: wake (on the device, or in Home Assistant), then stream.

        ``paced``: as a microphone does, each chunk once it has been said.
        ``woken``: by its wake word (not when it listens for an answer). A
        muted device neither wakes nor streams.
        """
        if self._muted():
            self.said_all.set()
            self.pipeline_done.set()
            return
        self._audio = asyncio.Queue()
        pipeline = self._background(
            self.async_accept_pipeline_from_satellite(
                audio_stream=self._wrap_audio_stream(self._audio),
                start_stage=start_stage,
                end_stage=PipelineStage.TTS,
                wake_word_phrase=(
                    WAKE_PHRASE if woken and start_stage is PipelineStage.STT else None
                ),
            ),
            "fake esphome pipeline",
        )
        pipeline.add_done_callback(lambda _: self.pipeline_done.set())
        self._background(self._microphone(audio, paced=paced), "fake esphome mic")

    def _background(
        self, coro: Coroutine[Any, Any, None], name: str
    ) -> asyncio.Task[None]:
        assert self.platform.config_entry is not None
        task: asyncio.Task[None] = (
            self.platform.config_entry.async_create_background_task(
                self.hass, coro, name
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _microphone(self, audio: bytes, *, paced: bool) -> None:
        """Send the audio as the firmware does: the stream ends once muted.

        (Voice PE's mute switch stops its voice assistant: ESPHome's entity
        then ends the pipeline's audio stream.)
        """
        queue = self._audio
        for offset in range(0, len(audio), CHUNK_BYTES):
            if self._muted():
                break
            chunk = audio[offset : offset + CHUNK_BYTES]
            queue.put_nowait(chunk)
            await asyncio.sleep(len(chunk) / BYTES_PER_SECOND if paced else 0)
        queue.put_nowait(None)
        self.said_all.set()

    @staticmethod
    async def _wrap_audio_stream(
        queue: asyncio.Queue[bytes | None],
    ) -> AsyncIterator[bytes]:
        """Yield the queued chunks until None, as ESPHome's entity does."""
        while (chunk := await queue.get()) is not None:
            yield chunk

    @override
    def on_pipeline_event(self, event: PipelineEvent) -> None:
        """Note the event; play the reply as the device would fetch it."""
        self.events.append(event)
        if event.type is PipelineEventType.TTS_END and (
            output := (event.data or {}).get("tts_output")
        ):
            stream = tts.async_get_stream(self.hass, output["token"])
            if stream is not None:
                self._background(self._play(stream), "fake esphome speaker")

    async def _play(self, stream: tts.ResultStream) -> None:
        self.heard.append(
            b"".join([data async for data in stream.async_stream_result()])
        )
        self.tts_response_finished()

    @override
    async def async_will_remove_from_hass(self) -> None:
        """Stop whatever still runs."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().async_will_remove_from_hass()

    @override
    async def async_announce(self, announcement: AssistSatelliteAnnouncement) -> None:
        """Play an announcement (what was said is noted)."""
        self.announced.append(announcement.message)

    @override
    async def async_start_conversation(
        self, start_announcement: AssistSatelliteAnnouncement
    ) -> None:
        """Ask: play the question, then listen to the person's next answer."""
        self.announced.append(start_announcement.message)
        if self.answers:
            self.say(self.answers.pop(0), woken=False)

    @callback
    @override
    def async_get_configuration(self) -> AssistSatelliteConfiguration:
        """Wake words are the device's own."""
        return AssistSatelliteConfiguration(
            available_wake_words=[], active_wake_words=[], max_active_wake_words=1
        )

    @override
    async def async_set_configuration(
        self, config: AssistSatelliteConfiguration
    ) -> None:
        """Nothing to set on a fake device."""


@dataclass
class FakeEsphome:
    """The fake integration's entry, its satellite and its mute switch."""

    entry: MockConfigEntry
    satellite: FakeEsphomeSatellite
    mute: FakeMuteSwitch

    @property
    def satellite_id(self) -> str:
        """The satellite's entity id."""
        return self.satellite.entity_id

    @property
    def mute_id(self) -> str:
        """The mute switch's entity id."""
        return self.mute.entity_id


async def async_set_up_fake_esphome(
    hass: HomeAssistant,
    area_id: str,
    *,
    muted: bool = False,
    honours_mute: bool = True,
) -> FakeEsphome:
    """Set up the fake integration with one satellite device in ``area_id``.

    ``muted``: its mute switch is on from the start (the user muted it).
    """
    device = DeviceInfo(
        identifiers={(FAKE_DOMAIN, _DEVICE_ID)},
        name=DEVICE_NAME,
        manufacturer="Nabu Casa (fake)",
        model="Home Assistant Voice (fake)",
    )
    mute = FakeMuteSwitch(device, on=muted)
    satellite = FakeEsphomeSatellite(device, mute, honours_mute=honours_mute)

    async def _setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(
            entry, [Platform.ASSIST_SATELLITE, Platform.SWITCH]
        )
        return True

    async def _unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        return await hass.config_entries.async_unload_platforms(
            entry, [Platform.ASSIST_SATELLITE, Platform.SWITCH]
        )

    def _platform(entity: Any) -> MockPlatform:
        async def _add(
            hass: HomeAssistant,
            entry: ConfigEntry,
            async_add_entities: AddConfigEntryEntitiesCallback,
        ) -> None:
            async_add_entities([entity])

        return MockPlatform(async_setup_entry=_add)

    mock_integration(
        hass,
        MockModule(
            FAKE_DOMAIN,
            async_setup_entry=_setup_entry,
            async_unload_entry=_unload_entry,
        ),
    )
    mock_platform(
        hass, f"{FAKE_DOMAIN}.{Platform.ASSIST_SATELLITE}", _platform(satellite)
    )
    mock_platform(hass, f"{FAKE_DOMAIN}.{Platform.SWITCH}", _platform(mute))
    # Entries are only set up for integrations with a config flow.
    mock_platform(hass, f"{FAKE_DOMAIN}.config_flow", MockPlatform())
    entry = MockConfigEntry(domain=FAKE_DOMAIN, title=DEVICE_NAME)
    entry.add_to_hass(hass)
    with mock_config_flow(FAKE_DOMAIN, ConfigFlow):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

    registry = dr.async_get(hass)
    found = registry.async_get_device_by_identifier(
        (FAKE_DOMAIN, _DEVICE_ID), entry.entry_id
    )
    assert found is not None
    registry.async_update_device(found.id, area_id=area_id)
    await hass.async_block_till_done()
    return FakeEsphome(entry, satellite, mute)
