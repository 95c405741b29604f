"""Wyoming satellites as Assist satellites: one device and one entity each.

Each satellite subentry gets a ``SatelliteLink`` (``protocol/satellite.py``),
which connects, keeps the satellite alive and hands its ``run-pipeline``
requests here. This module turns them into Assist pipeline runs and the runs'
events back into Wyoming messages; the spoken reply is streamed from the
pipeline's TTS result to the satellite as it is synthesized.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, override

from homeassistant.components import (
    ffmpeg,
    intent,
    tts,
    wake_word,
)
from homeassistant.components.assist_pipeline import PipelineEvent, PipelineEventType
from homeassistant.components.assist_pipeline.models import (
    PipelineStage as AssistStage,
)
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.components.assist_satellite import (
    AssistSatelliteAnnouncement,
    AssistSatelliteConfiguration,
    AssistSatelliteEntity,
    AssistSatelliteEntityDescription,
    AssistSatelliteEntityFeature,
    AssistSatelliteWakeWord,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from wyoming.asr import Transcribe, Transcript
from wyoming.error import Error
from wyoming.info import Info
from wyoming.pipeline import PipelineStage
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated
from wyoming.tts import Synthesize, SynthesizeVoice
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detect, Detection

from .chime import CHIME_FORMAT, chime_pcm
from .const import CONF_AREA_ID, DOMAIN, LOGGER
from .coordinator import PrivateVoiceConfigEntry
from .engine_host.formats import AudioFormatError, PcmFormat
from .entity import PrivateVoiceSatelliteEntity
from .locality import (
    OffHubEngine,
    Stage,
    async_clear_cloud_issue,
    async_offhub_engines,
    async_raise_cloud_issue,
    integration_names,
)
from .privacy.policy import (
    Announcement,
    PrivacyMode,
    Reply,
    RoomPolicy,
    announcement as announcement_fate,
    mic_allowed,
    reply_kind,
    transcript_loggable,
)
from .privacy.room import RoomGate
from .protocol.client import Endpoint
from .protocol.satellite import (
    MIC_FORMAT,
    PipelineMessage,
    PipelineRun,
    SatelliteError,
    SatelliteLink,
    TimerMessage,
)
from .rooms import Room, RoomManager, RoomRefusedError, signal_policy_changed
from .satellites import async_add_satellite_entities, signal_satellite_updated
from .spoken import async_spoken_text
from .wav import WavError, async_wav_pcm

PARALLEL_UPDATES = 0

# Wyoming's pipeline stages as Assist's.
_STAGES: Final = {
    PipelineStage.WAKE: AssistStage.WAKE_WORD,
    PipelineStage.ASR: AssistStage.STT,
    PipelineStage.HANDLE: AssistStage.INTENT,
    PipelineStage.TTS: AssistStage.TTS,
}
# Announcements that are not speech from a TTS engine are decoded by ffmpeg to
# this rate; the link converts it to the satellite's speaker format.
_ANNOUNCE_RATE: Final = 22050
_ANNOUNCE_READ_BYTES: Final = 4096
# Announcements a Quiet room holds until it leaves Quiet; older ones are dropped.
_MAX_HELD: Final = 10


def _wake_detected(data: Mapping[str, Any]) -> Detection | None:
    if wake := data.get("wake_word_output"):
        return Detection(name=wake["wake_word_id"], timestamp=wake.get("timestamp"))
    return None


# What the satellite is told of each pipeline event, as Home Assistant's own
# Wyoming satellites are told.
_MESSAGES: Final[
    dict[PipelineEventType, Callable[[Mapping[str, Any]], PipelineMessage | None]]
] = {
    PipelineEventType.WAKE_WORD_START: lambda _: Detect(),
    PipelineEventType.WAKE_WORD_END: _wake_detected,
    PipelineEventType.STT_START: lambda data: Transcribe(
        language=data["metadata"]["language"]
    ),
    PipelineEventType.STT_VAD_START: lambda data: VoiceStarted(
        timestamp=data.get("timestamp")
    ),
    PipelineEventType.STT_VAD_END: lambda data: VoiceStopped(
        timestamp=data.get("timestamp")
    ),
    PipelineEventType.STT_END: lambda data: Transcript(text=data["stt_output"]["text"]),
    PipelineEventType.TTS_START: lambda data: Synthesize(
        text=data["tts_input"],
        voice=SynthesizeVoice(name=data.get("voice"), language=data.get("language")),
    ),
    PipelineEventType.ERROR: lambda data: Error(
        text=data.get("message", ""), code=data.get("code")
    ),
}


@dataclass(slots=True)
class _Turn:
    """One run's pipeline: its satellite run, its room, the TTS stream, the reply."""

    run: PipelineRun
    policy: RoomPolicy
    # The room's gate on the run's audio; None: the satellite is in no room.
    gate: RoomGate | None = None
    # Whether speech-to-text sends the audio off the hub (a cloud the room allows).
    stt_offhub: bool = False
    tts_token: str | None = None
    reply: asyncio.Task[None] | None = None
    # Off-hub engines the room does not allow: the run is refused.
    refused: Sequence[OffHubEngine] = ()
    # Whether the command was acted on.
    answered: bool = False

    def note(self, event_type: PipelineEventType, data: Mapping[str, Any]) -> None:
        """Follow the run's progress."""
        match event_type:
            case PipelineEventType.RUN_START:
                self.tts_token = (data.get("tts_output") or {}).get("token")
            case PipelineEventType.STT_START if self.gate is not None:
                # From here on the audio goes to speech-to-text, maybe off the hub.
                self.gate.offhub = self.stt_offhub
            case PipelineEventType.INTENT_END:
                self.answered = True


def _no_file_cache(hass: HomeAssistant, token: str | None) -> None:
    """Keep a spoken reply off the disk: Home Assistant caches speech as files.

    Its text-to-speech keeps each sentence it synthesizes under
    ``<config>/tts``, and a reply may repeat what the room said (DESIGN §3:
    no audio on disk). Set before the sentence is.
    """
    if token is not None and (stream := tts.async_get_stream(hass, token)):
        stream.use_file_cache = False


# The turn whose pipeline is calling back: each run's pipeline task inherits it,
# so a superseded run's late events never reach the next run.
_TURN: ContextVar[_Turn | None] = ContextVar("private_voice_turn", default=None)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a satellite entity per satellite subentry, now and when one is added."""
    async_add_satellite_entities(
        hass,
        entry,
        async_add_entities,
        lambda subentry: [PrivateVoiceSatellite(entry, subentry)],
    )


def _endpoint(subentry: ConfigSubentry) -> Endpoint:
    return Endpoint(subentry.data[CONF_HOST], subentry.data[CONF_PORT])


class PrivateVoiceSatellite(PrivateVoiceSatelliteEntity, AssistSatelliteEntity):
    """A Wyoming satellite running Assist pipelines, kept connected by its link."""

    entity_description = AssistSatelliteEntityDescription(key="assist_satellite")
    _attr_name = None
    _attr_supported_features = AssistSatelliteEntityFeature.ANNOUNCE
    _attr_available = False

    def __init__(
        self, entry: PrivateVoiceConfigEntry, subentry: ConfigSubentry
    ) -> None:
        """Serve the satellite of ``subentry``."""
        PrivateVoiceSatelliteEntity.__init__(self, subentry)
        AssistSatelliteEntity.__init__(self)
        self._entry = entry
        self._area_id: str | None = subentry.data.get(CONF_AREA_ID)
        self._link = SatelliteLink(_endpoint(subentry), self, logger=LOGGER)
        # Announcements held while the room is Quiet.
        self._held: list[AssistSatelliteAnnouncement] = []

    @property
    def link(self) -> SatelliteLink:
        """The satellite's link (the privacy modes pause and cut it)."""
        return self._link

    @property
    def _rooms(self) -> RoomManager:
        return self._entry.runtime_data.rooms

    def _room(self) -> Room | None:
        return self._rooms.room_of_entity(self.entity_id)

    # Settings from the satellite's select entities ---------------------------

    def _select_entity_id(self, key: str) -> str | None:
        return er.async_get(self.hass).async_get_entity_id(
            "select", DOMAIN, f"{self._subentry.subentry_id}-{key}"
        )

    @property
    @override
    def pipeline_entity_id(self) -> str | None:
        """The select entity choosing this satellite's pipeline."""
        return self._select_entity_id("pipeline")

    @property
    @override
    def vad_sensitivity_entity_id(self) -> str | None:
        """The select entity choosing how long a pause ends the command."""
        return self._select_entity_id("vad_sensitivity")

    @property
    @override
    def tts_options(self) -> dict[str, Any] | None:
        """Ask for WAV: its PCM streams to the satellite as it is synthesized.

        No rate is asked for: the link converts to the satellite's speaker
        format itself, which spares an ffmpeg pass on every reply.
        """
        return {tts.ATTR_PREFERRED_FORMAT: "wav"}

    # Lifecycle ---------------------------------------------------------------

    @override
    async def async_added_to_hass(self) -> None:
        """Put the device in its area, then start connecting."""
        await super().async_added_to_hass()
        self._apply_area(self._subentry.data.get(CONF_AREA_ID))
        if self.registry_entry is not None and self.registry_entry.device_id:
            self.async_on_remove(
                intent.async_register_timer_handler(
                    self.hass, self.registry_entry.device_id, self._timer_event
                )
            )
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_satellite_updated(self._entry, self._subentry.subentry_id),
                self._async_subentry_updated,
            )
        )
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_policy_changed(self._entry), self._policy_changed
            )
        )
        self._entry.runtime_data.satellites[self._subentry.subentry_id] = self._link
        await self._async_start_link()

    async def _async_start_link(self) -> None:
        """Connect; a satellite in a Muted room is paused from its first event."""
        if (room := self._room()) is not None and not mic_allowed(room.policy):
            await self._link.async_pause()
        self._link.async_start()

    @override
    async def async_will_remove_from_hass(self) -> None:
        """Pause the satellite and disconnect (on unload and removal)."""
        self._entry.runtime_data.satellites.pop(self._subentry.subentry_id, None)
        await self._link.async_stop()
        await super().async_will_remove_from_hass()

    async def _async_subentry_updated(self, subentry: ConfigSubentry) -> None:
        """Follow a reconfigured satellite: a new address, a new area.

        ``subentry`` is the object this entity was made with, changed in place
        by Home Assistant: what it was is known from the link and ``_area_id``.
        """
        self._subentry = subentry
        if (area_id := subentry.data.get(CONF_AREA_ID)) != self._area_id:
            self._area_id = area_id
            self._apply_area(area_id, replace=True)
        if (endpoint := _endpoint(subentry)) != self._link.endpoint:
            await self._link.async_stop()
            self._link = SatelliteLink(endpoint, self, logger=LOGGER)
            self._entry.runtime_data.satellites[subentry.subentry_id] = self._link
            await self._async_start_link()

    def _apply_area(self, area_id: str | None, *, replace: bool = False) -> None:
        """Put the device in ``area_id``; a user's later choice is kept."""
        if area_id is None or self.registry_entry is None:
            return
        registry = dr.async_get(self.hass)
        device_id = self.registry_entry.device_id
        if device_id is None or (device := registry.async_get(device_id)) is None:
            return
        if device.area_id is None or (replace and device.area_id != area_id):
            registry.async_update_device(device.id, area_id=area_id)

    # The room's privacy mode ------------------------------------------------------

    @callback
    def _policy_changed(self, room: Room, old: RoomPolicy) -> None:
        """Apply a room's policy at once: pause, resume, or cut the run in flight.

        Sent for every room: a satellite that left a Muted room is resumed.
        """
        mine = self._room()
        muted = mine is not None and not mic_allowed(mine.policy)
        if muted and not self._link.paused:
            self._entry.async_create_task(
                self.hass, self._link.async_pause(), f"{self.entity_id} pause"
            )
        elif not muted and self._link.paused:
            self._entry.async_create_task(
                self.hass, self._link.async_resume(), f"{self.entity_id} resume"
            )
        elif mine is room and room.policy != old:
            # A stream begun under the old policy is cut; the next one starts
            # under the new.
            self._link.cut_pipeline()
        if (
            mine is not None
            and mine.policy.mode is not PrivacyMode.QUIET
            and self._held
        ):
            self._entry.async_create_background_task(
                self.hass, self._async_play_held(), f"{self.entity_id} held"
            )

    async def _async_play_held(self) -> None:
        """Play the announcements held while the room was Quiet, oldest first."""
        held, self._held = self._held, []
        for item in held:
            try:
                await self.async_announce(item)
            except HomeAssistantError as err:
                LOGGER.warning("Held announcement on %s: %s", self.entity_id, err)

    async def _async_refuse_cloud(
        self, run: PipelineRun, room: Room, engines: Sequence[OffHubEngine]
    ) -> None:
        """Tell the room, in its own satellite's voice, why nothing was sent."""
        LOGGER.warning(
            "Refused a voice request in %s: its pipeline uses %s, and the room "
            "does not allow the cloud",
            room.name,
            integration_names(engines),
        )
        text = await async_spoken_text(
            self.hass,
            "spoken_cloud_not_allowed",
            {"room": room.name, "engines": integration_names(engines)},
        )
        try:
            source, pcm = await self._async_local_speech(text)
            await run.play(pcm, source)
        except (WavError, AudioFormatError, HomeAssistantError) as err:
            LOGGER.warning("Cannot speak the refusal on %s: %s", self.entity_id, err)
        except SatelliteError as err:
            LOGGER.debug("Refusal on %s not played: %s", self.entity_id, err)

    async def _async_local_speech(
        self, text: str
    ) -> tuple[PcmFormat, AsyncIterator[bytes]]:
        """Synthesize ``text`` with this entry's own, local, text-to-speech."""
        engine = er.async_get(self.hass).async_get_entity_id(
            "tts", DOMAIN, f"{self._entry.entry_id}_tts"
        )
        if engine is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="no_local_tts"
            )
        stream = tts.async_create_stream(
            self.hass, engine, options={tts.ATTR_PREFERRED_FORMAT: "wav"}
        )
        _no_file_cache(self.hass, stream.token)
        stream.async_set_message(text)
        return await async_wav_pcm(stream.async_stream_result())

    # SatelliteHandler ----------------------------------------------------------

    @callback
    def satellite_available(self, info: Info) -> None:
        """Show the connected satellite as what it says it is."""
        if (satellite := info.satellite) is not None and self.registry_entry:
            device_id = self.registry_entry.device_id
            if device_id is not None:
                dr.async_get(self.hass).async_update_device(
                    device_id,
                    manufacturer=satellite.attribution.name or "Wyoming",
                    model=satellite.description or "Satellite",
                    sw_version=satellite.version,
                )
        self._attr_available = True
        self.async_write_ha_state()

    @callback
    def satellite_unavailable(self, reason: str) -> None:
        """Show the outage (the link logs it, once)."""
        self._attr_available = False
        self.async_write_ha_state()

    async def run_pipeline(self, run: PipelineRun) -> None:
        """Run Assist for one request; return once the reply has been played."""
        start = _STAGES.get(run.request.start_stage)
        end = _STAGES.get(run.request.end_stage)
        if start is None or end is None:
            run.send(
                Error(
                    text=f"cannot run a pipeline from {run.request.start_stage} "
                    f"to {run.request.end_stage}",
                    code="unsupported-stage",
                )
            )
            return
        room = self._room()
        turn = _Turn(run, room.policy if room is not None else RoomPolicy())
        if room is not None:
            await self._async_check_engines(room, turn)
            if turn.refused:
                # Refused once someone wakes it, not on every idle stream.
                if start is not AssistStage.WAKE_WORD or await self._async_woken(
                    room, turn
                ):
                    await self._async_refuse_cloud(run, room, turn.refused)
                return
        if reply_kind(turn.policy) is not Reply.SPEECH and end is AssistStage.TTS:
            end = AssistStage.INTENT  # Quiet: nothing is spoken, so none synthesized
        if self._entry.runtime_data.voice_id.enrolling(self.entity_id):
            # An enrolment phrase: its voice print is all that is wanted.
            end = AssistStage.STT
        await self._async_run_turn(turn, start, end)
        if turn.answered and reply_kind(turn.policy) is Reply.CHIME:
            await self._async_chime(run)

    async def _async_woken(self, room: Room, turn: _Turn) -> bool:
        """Listen for the pipeline's wake word alone: no run, nothing else heard.

        For a run that is refused (its pipeline leaves the hub), so that it is
        refused when someone speaks to the satellite.
        """
        if any(engine.stage is Stage.WAKE_WORD for engine in turn.refused):
            return True  # not even the wake word may be listened for
        pipeline = async_get_pipeline(self.hass, self._resolve_pipeline())
        entity_id = pipeline.wake_word_entity or wake_word.async_default_entity(
            self.hass
        )
        entity = (
            wake_word.async_get_wake_word_detection_entity(self.hass, entity_id)
            if entity_id
            else None
        )
        if entity is None:
            return True

        async def _timed() -> AsyncIterator[tuple[bytes, int]]:
            milliseconds = 0
            async for pcm in self._rooms.gated(turn.run.audio, room, bytes, turn.gate):
                yield pcm, milliseconds
                milliseconds += len(pcm) * 1000 // MIC_FORMAT.bytes_per_second

        try:
            detected = await entity.async_process_audio_stream(
                _timed(), pipeline.wake_word_id
            )
        except RoomRefusedError:
            return False
        return detected is not None

    async def _async_check_engines(self, room: Room, turn: _Turn) -> None:
        """Find the run's engines off the hub; refuse them unless the room allows."""
        engines = await async_offhub_engines(self.hass, self._resolve_pipeline())
        if room.policy.cloud_allowed or not engines:
            async_clear_cloud_issue(self.hass, room.area_id)
        else:
            async_raise_cloud_issue(self.hass, room.area_id, room.name, engines)
            turn.refused = engines
        turn.stt_offhub = any(engine.stage is Stage.STT for engine in engines)
        turn.gate = self._rooms.gate(room)

    async def _async_run_turn(
        self, turn: _Turn, start: AssistStage, end: AssistStage
    ) -> None:
        """Run the pipeline on the room's gated audio; wait for the reply."""
        _TURN.set(turn)
        try:
            await self.async_accept_pipeline_from_satellite(
                audio_stream=self._rooms.gated(
                    turn.run.audio, self._room(), bytes, turn.gate
                ),
                start_stage=start,
                end_stage=end,
                wake_word_phrase=turn.run.request.wake_word_phrase,
            )
            if turn.reply is not None:
                await turn.reply
        except asyncio.CancelledError:
            # Cut by a mode change: nothing more of this run is heard or said.
            if turn.reply is not None:
                turn.reply.cancel()
            self.tts_response_finished()
            raise
        finally:
            if turn.gate is not None:
                turn.gate.close()

    async def _async_chime(self, run: PipelineRun) -> None:
        async def _pcm() -> AsyncIterator[bytes]:
            yield chime_pcm()

        try:
            await run.play(_pcm(), CHIME_FORMAT)
        except SatelliteError as err:
            LOGGER.debug("Chime on %s not played: %s", self.entity_id, err)

    # Pipeline events -----------------------------------------------------------

    @override
    def on_pipeline_event(self, event: PipelineEvent) -> None:
        """Tell the satellite how its run goes, and stream the reply."""
        if (turn := _TURN.get()) is None:
            return
        data = event.data or {}
        tts_output = data.get("tts_output") or {}
        turn.note(event.type, data)
        if event.type is PipelineEventType.RUN_START:
            _no_file_cache(self.hass, turn.tts_token)
        elif event.type is PipelineEventType.STT_END and transcript_loggable(
            turn.policy
        ):
            # Debug only, and never from a Guest or Muted room (DESIGN §3).
            LOGGER.debug("%s heard: %s", self.entity_id, data["stt_output"].get("text"))
        elif event.type is PipelineEventType.INTENT_PROGRESS:
            # A streaming agent's reply may be spoken while it is written.
            if data.get("tts_start_streaming"):
                self._speak(turn, turn.tts_token)
        elif event.type is PipelineEventType.TTS_END:
            self._speak(turn, tts_output.get("token"))
        if (make := _MESSAGES.get(event.type)) and (message := make(data)):
            turn.run.send(message)

    def _speak(self, turn: _Turn, token: str | None) -> None:
        """Start streaming the reply, once, as soon as its stream exists."""
        if turn.reply is not None or token is None:
            return
        if (stream := tts.async_get_stream(self.hass, token)) is None:
            return
        turn.reply = self._entry.async_create_background_task(
            self.hass,
            self._async_play_reply(turn.run, stream),
            f"{self.entity_id} reply",
        )

    async def _async_play_reply(
        self, run: PipelineRun, stream: tts.ResultStream
    ) -> None:
        try:
            source, pcm = await async_wav_pcm(stream.async_stream_result())
            await run.play(pcm, source)
        except (WavError, AudioFormatError, HomeAssistantError) as err:
            LOGGER.warning("Cannot speak the reply on %s: %s", self.entity_id, err)
        except SatelliteError as err:
            LOGGER.debug("Reply on %s not played: %s", self.entity_id, err)
        finally:
            self.tts_response_finished()

    # Announcements, configuration, timers -------------------------------------

    @override
    async def async_announce(self, announcement: AssistSatelliteAnnouncement) -> None:
        """Play an announcement; return when the satellite has played it.

        A Quiet room holds it until the room leaves Quiet; a Muted room drops
        it unless the room allows announcements.
        """
        room = self._room()
        match announcement_fate(room.policy if room is not None else RoomPolicy()):
            case Announcement.HOLD:
                self._held = [*self._held[-(_MAX_HELD - 1) :], announcement]
                LOGGER.debug("Holding an announcement on %s (Quiet)", self.entity_id)
                return
            case Announcement.DROP:
                LOGGER.debug("Dropped an announcement on %s (Muted)", self.entity_id)
                return
        try:
            if announcement.tts_token and (
                stream := tts.async_get_stream(self.hass, announcement.tts_token)
            ):
                source, pcm = await async_wav_pcm(stream.async_stream_result())
                await self._link.async_announce(pcm, source)
            else:
                source = PcmFormat(_ANNOUNCE_RATE, 2, 1)
                await self._link.async_announce(
                    self._async_decode(announcement.media_id), source
                )
        except (SatelliteError, WavError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="announce_failed",
                translation_placeholders={"error": str(err)},
            ) from err

    async def async_say(self, text: str) -> None:
        """Say ``text`` in the hub's own local voice; return once it was played.

        For the hub's own prompts (enrolment), whatever the pipeline's voice.
        """
        try:
            source, pcm = await self._async_local_speech(text)
            await self._link.async_announce(pcm, source)
        except (SatelliteError, WavError, AudioFormatError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="announce_failed",
                translation_placeholders={"error": str(err)},
            ) from err

    async def _async_decode(self, media_id: str) -> AsyncIterator[bytes]:
        """Decode any media Home Assistant can resolve to 16-bit mono PCM."""
        process = await asyncio.create_subprocess_exec(
            ffmpeg.get_ffmpeg_manager(self.hass).binary,
            "-protocol_whitelist",
            "http,https,file,tcp,tls",
            "-i",
            media_id,
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(_ANNOUNCE_RATE),
            "-nostats",
            "pipe:",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None  # noqa: S101 - piped above
        try:
            while data := await process.stdout.read(_ANNOUNCE_READ_BYTES):
                yield data
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()

    @callback
    @override
    def async_get_configuration(self) -> AssistSatelliteConfiguration:
        """List the wake words the satellite detects itself."""
        info = self._link.info
        wake_words = [
            AssistSatelliteWakeWord(
                id=model.name,
                wake_word=model.phrase or model.name,
                trained_languages=list(model.languages),
            )
            for program in (info.wake if info else [])
            for model in program.models
        ]
        return AssistSatelliteConfiguration(
            available_wake_words=wake_words,
            active_wake_words=[],
            max_active_wake_words=0,
        )

    @override
    async def async_set_configuration(
        self, config: AssistSatelliteConfiguration
    ) -> None:
        """Wyoming has no way to choose a satellite's wake words."""
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="wake_words_fixed"
        )

    @callback
    def _timer_event(
        self, event_type: intent.TimerEventType, timer: intent.TimerInfo
    ) -> None:
        """Pass timers started from this satellite on to it."""
        message: TimerMessage
        match event_type:
            case intent.TimerEventType.STARTED:
                message = TimerStarted(
                    id=timer.id,
                    total_seconds=timer.seconds,
                    name=timer.name,
                    start_hours=timer.start_hours,
                    start_minutes=timer.start_minutes,
                    start_seconds=timer.start_seconds,
                )
            case intent.TimerEventType.UPDATED:
                message = TimerUpdated(
                    id=timer.id, is_active=timer.is_active, total_seconds=timer.seconds
                )
            case intent.TimerEventType.CANCELLED:
                message = TimerCancelled(id=timer.id)
            case intent.TimerEventType.FINISHED:
                message = TimerFinished(id=timer.id)
        self._link.send_timer(message)
