"""Rooms: every area with a voice satellite, its privacy mode, and enforcing it.

A room exists while its area holds at least one ``assist_satellite`` entity,
ours or any other integration's (ESPHome Voice PE, S3-BOX-3, Home Assistant's
own Wyoming satellites). Rooms follow the registries: a satellite added, moved
or removed adds, keeps or removes a room, without a reload.

What a mode allows is decided in ``privacy/``; this module keeps each room's
``RoomState`` (its policy, counters and open audio streams), persists the
policies, and applies a change at once on every path:

- our satellites are told (a signal their entities follow: pause, resume, cut);
- other satellites' mute switches are turned on in Muted and restored after;
- every open ``RoomGate`` (the public Wyoming service, our speech-to-text and
  wake word providers) refuses the next chunk.
"""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import functools
import logging
from typing import Any, Final, override

from homeassistant.components.assist_satellite import DOMAIN as ASSIST_SATELLITE
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    Platform,
)
from homeassistant.core import CALLBACK_TYPE, Context, Event, HomeAssistant, callback
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import (
    TrackStates,
    async_track_point_in_utc_time,
    async_track_state_change_filtered,
    async_track_time_interval,
)
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .debug_recording import (
    DEBUG_RECORDING_DURATION,
    StreamRecording,
    prune_recordings,
    recording_name,
    recordings_dir,
)
from .privacy.policy import (
    PrivacyMode,
    Refusal,
    RoomPolicy,
    mic_allowed,
    transcript_loggable,
)
from .privacy.room import RoomGate, RoomState

STORAGE_VERSION: Final = 1
# Counters are pushed to the room's sensors at most this often while audio flows.
COUNTER_INTERVAL: Final = timedelta(seconds=10)
# Debug recordings older than a day are looked for this often.
PRUNE_INTERVAL: Final = timedelta(hours=1)
# Fired on every mode change, for the logbook and automations.
EVENT_ROOM_MODE_CHANGED: Final = f"{DOMAIN}_room_mode_changed"
# Home Assistant names a satellite's pipeline task after the satellite.
_PIPELINE_TASK_SUFFIX: Final = "_pipeline"


def room_device_identifier(area_id: str) -> tuple[str, str]:
    """Return the device registry identifier of a room's device."""
    return (DOMAIN, f"room-{area_id}")


def signal_room_added(entry: ConfigEntry) -> str:
    """Name the signal a new room is sent with (the platforms add its entities)."""
    return f"{DOMAIN}_{entry.entry_id}_room_added"


def signal_room_updated(entry: ConfigEntry, area_id: str) -> str:
    """Name the signal sent when a room's state or counters change."""
    return f"{DOMAIN}_{entry.entry_id}_room_{area_id}_updated"


def signal_policy_changed(entry: ConfigEntry) -> str:
    """Name the signal sent, synchronously, with a room and its previous policy.

    Also sent when a room's satellites change, with the policy unchanged, so
    that a satellite moved into a Muted room is paused.
    """
    return f"{DOMAIN}_{entry.entry_id}_policy_changed"


@dataclass(slots=True)
class Room:
    """An area with at least one voice satellite."""

    area_id: str
    name: str
    state: RoomState
    # The area's assist_satellite entities.
    satellites: frozenset[str] = frozenset()
    # A temporary mode: the mode that returns, and when.
    revert: tuple[PrivacyMode, datetime] | None = None
    cancel_revert: CALLBACK_TYPE | None = field(default=None, repr=False)
    # The room's debug recording is on until then (never after a restart).
    debug_until: datetime | None = None
    cancel_debug: CALLBACK_TYPE | None = field(default=None, repr=False)
    # Who spoke last, by voice print: a person entity id, or "" for a voice
    # that matched no enrolled print; None until someone was identified.
    speaker: str | None = None

    @property
    def policy(self) -> RoomPolicy:
        """The room's policy now."""
        return self.state.policy


def pipeline_satellite() -> str | None:
    """Return the assist_satellite entity whose pipeline is running this code.

    Speech-to-text and wake word providers are called inside the pipeline's
    task, which Home Assistant's ``AssistSatelliteEntity`` names after the
    satellite. Our providers so find the room of every satellite that uses
    them, whichever integration drives it.
    """
    if (task := asyncio.current_task()) is None:
        return None
    name = task.get_name()
    if name.startswith(f"{ASSIST_SATELLITE}.") and name.endswith(_PIPELINE_TASK_SUFFIX):
        return name.removesuffix(_PIPELINE_TASK_SUFFIX)
    return None


# Home Assistant's own modules that log what a room said, at debug: the
# speech-to-text result, the conversation's input, its chat log, a sentence
# no intent matched.
_TRANSCRIPT_LOGGERS: Final = (
    "homeassistant.components.assist_pipeline.default_pipeline",
    "homeassistant.components.conversation.agent_manager",
    "homeassistant.components.conversation.chat_log",
    "homeassistant.components.conversation.default_agent",
)


class _UnloggedRooms(logging.Filter):
    """Drop Home Assistant's debug records made for a Guest or Muted room.

    A record is made in the task that logs it, and a satellite's pipeline task
    is named after the satellite: so its room is known, whichever integration
    drives it. Transcripts are never logged at all from those rooms (DESIGN §3).
    """

    def __init__(self, manager: RoomManager) -> None:
        """Look rooms up in ``manager``."""
        super().__init__()
        self._manager = manager

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            return True
        try:
            entity_id = pipeline_satellite()
        except RuntimeError:  # logged off the event loop: by no pipeline
            return True
        room = self._manager.room_of_entity(entity_id) if entity_id else None
        return room is None or transcript_loggable(room.policy)


class RoomRefusedError(Exception):
    """A room's audio may not pass (it is muted, or its mode changed)."""

    def __init__(self, refusal: Refusal) -> None:
        """Say why."""
        super().__init__(refusal.value)
        self.refusal = refusal


async def _async_gated[T](
    stream: AsyncIterable[T],
    gate: RoomGate,
    pcm: Callable[[T], bytes],
    recording: StreamRecording | None,
) -> AsyncIterator[T]:
    """Pass ``stream`` through ``gate`` chunk by chunk.

    RoomRefusedError as soon as the gate refuses: nothing after a mode change
    passes, and the consumer stops. Also when the stream ends after a mode
    change: the hub ended it (a satellite paused or cut), and what was said
    must not be taken for a whole utterance and transcribed.
    """
    try:
        async for chunk in stream:
            if (refusal := gate.refusal()) is not None:
                raise RoomRefusedError(refusal)
            audio = pcm(chunk)
            gate.passed(len(audio))
            if recording is not None:
                recording.write(audio)
            yield chunk
        if (refusal := gate.refusal()) is not None:
            raise RoomRefusedError(refusal)
    finally:
        gate.close()
        if recording is not None:
            recording.close()


def mute_switch(hass: HomeAssistant, device_id: str) -> str | None:
    """Return the mute switch on a satellite's device (ESPHome's, Wyoming's)."""
    for entity in er.async_entries_for_device(er.async_get(hass), device_id):
        if entity.domain == Platform.SWITCH and (
            entity.translation_key == "mute"
            or entity.entity_id.endswith("_mute")
            or (entity.original_name or "").casefold() == "mute"
        ):
            return entity.entity_id
    return None


def _rooms_store(hass: HomeAssistant, entry: ConfigEntry) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.rooms")


async def async_remove_room_settings(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete the stored room settings of ``entry`` (the entry is being removed)."""
    await _rooms_store(hass, entry).async_remove()


class RoomManager:
    """The entry's rooms: found from the registries, their policies stored."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Keep the rooms of ``entry``; ``async_start`` loads and finds them."""
        self._hass = hass
        self._entry = entry
        self._store = _rooms_store(hass, entry)
        self.rooms: dict[str, Room] = {}
        # Policies of every room seen, also of rooms gone for now.
        self._policies: dict[str, dict[str, Any]] = {}
        # Other integrations' mute switches turned on for a Muted room, and
        # whether each was on before.
        self._muted_switches: dict[str, bool] = {}
        # Each room's audio bytes when its sensors were last told.
        self._pushed_bytes: dict[str, int] = {}
        self._unsubscribe: list[CALLBACK_TYPE] = []

    # Lifecycle ----------------------------------------------------------------

    async def async_start(self) -> None:
        """Load the stored policies, find the rooms, follow the registries."""
        stored = await self._store.async_load() or {}
        self._policies = stored.get("rooms", {})
        self._muted_switches = stored.get("muted_switches", {})
        hass = self._hass
        self._unsubscribe += [
            hass.bus.async_listen(er.EVENT_ENTITY_REGISTRY_UPDATED, self._refresh),
            hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, self._refresh),
            hass.bus.async_listen(ar.EVENT_AREA_REGISTRY_UPDATED, self._refresh),
            async_track_time_interval(hass, self._push_counters, COUNTER_INTERVAL),
            async_track_time_interval(hass, self._async_prune, PRUNE_INTERVAL),
        ]
        await self._async_prune()
        self._satellite_states = async_track_state_change_filtered(
            hass,
            TrackStates(all_states=False, entities=set(), domains={ASSIST_SATELLITE}),
            self._satellite_state,
        )
        self._unsubscribe.append(self._satellite_states.async_remove)
        self._remove_stale_devices()
        unlogged = _UnloggedRooms(self)
        for logger in map(logging.getLogger, _TRANSCRIPT_LOGGERS):
            logger.addFilter(unlogged)
            self._unsubscribe.append(functools.partial(logger.removeFilter, unlogged))
        self._refresh()

    async def async_stop(self) -> None:
        """Stop following the registries; store what is pending at once.

        Pending reverts are stored: the next start schedules them again.
        """
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for room in self.rooms.values():
            for cancel in (room.cancel_revert, room.cancel_debug):
                if cancel is not None:
                    cancel()
            room.cancel_revert = room.cancel_debug = None
        # A reload loads the store at once: what waits to be written is lost.
        await self._store.async_save(self._stored())

    # Finding rooms -------------------------------------------------------------

    def _voice_areas(self) -> dict[str, set[str]]:
        """Return every area that holds a satellite, with its satellites."""
        entities = er.async_get(self._hass)
        devices = dr.async_get(self._hass)
        areas = ar.async_get(self._hass)
        found: dict[str, set[str]] = {}
        for entity in entities.entities.values():
            if entity.domain != ASSIST_SATELLITE or entity.disabled:
                continue
            area_id = entity.area_id
            if area_id is None and entity.device_id is not None:
                device = devices.async_get(entity.device_id)
                area_id = device.area_id if device is not None else None
            if area_id is not None and areas.async_get_area(area_id) is not None:
                found.setdefault(area_id, set()).add(entity.entity_id)
        return found

    @callback
    def _refresh(self, event: Event[Any] | None = None) -> None:
        """Add, keep or remove rooms as the satellites and areas now are."""
        areas = ar.async_get(self._hass)
        found = self._voice_areas()
        for area_id in set(self.rooms) - set(found):
            self._remove_room(self.rooms.pop(area_id))
        for area_id, satellites in found.items():
            area = areas.async_get_area(area_id)
            assert area is not None  # noqa: S101 - _voice_areas checked it
            if (room := self.rooms.get(area_id)) is None:
                room = self._add_room(area_id, area.name, frozenset(satellites))
                continue
            if area.name != room.name:
                room.name = area.name
                self._update_device(room)
            if satellites != room.satellites:
                joined = satellites - room.satellites
                room.satellites = frozenset(satellites)
                self._enforce(room, room.policy, joined=joined)

    def _remove_stale_devices(self) -> None:
        """Remove room devices whose area lost its satellites while unloaded."""
        devices = dr.async_get(self._hass)
        found = self._voice_areas()
        for device in dr.async_entries_for_config_entry(devices, self._entry.entry_id):
            for domain, identifier in device.identifiers:
                if (
                    domain == DOMAIN
                    and identifier.startswith("room-")
                    and identifier.removeprefix("room-") not in found
                ):
                    devices.async_remove_device(device.id)

    def _add_room(self, area_id: str, name: str, satellites: frozenset[str]) -> Room:
        stored = self._policies.get(area_id, {})
        policy = RoomPolicy(
            mode=PrivacyMode(stored.get("mode", PrivacyMode.NORMAL)),
            cloud_allowed=stored.get("cloud_allowed", False),
            announce_when_muted=stored.get("announce_when_muted", False),
        )
        state = RoomState(
            policy,
            today=lambda: dt_util.now().date(),
            changed=lambda: self._push(area_id),
        )
        if (changed := stored.get("mode_changed")) is not None:
            state.ledger.mode_changed = dt_util.parse_datetime(changed)
        room = Room(area_id=area_id, name=name, state=state, satellites=satellites)
        self.rooms[area_id] = room
        self._update_device(room)
        if (revert := stored.get("revert")) is not None:
            when = dt_util.parse_datetime(revert["at"])
            if when is not None:
                self._schedule_revert(room, PrivacyMode(revert["mode"]), when)
        async_dispatcher_send(self._hass, signal_room_added(self._entry), room)
        self._enforce(room, policy, joined=satellites)
        return room

    def _update_device(self, room: Room) -> None:
        devices = dr.async_get(self._hass)
        device = devices.async_get_or_create(
            config_entry_id=self._entry.entry_id,
            identifiers={room_device_identifier(room.area_id)},
            manufacturer="Private Voice",
            model="Room",
            entry_type=dr.DeviceEntryType.SERVICE,
            translation_key="room",
        )
        if device.area_id != room.area_id:
            devices.async_update_device(device.id, area_id=room.area_id)

    def _remove_room(self, room: Room) -> None:
        """Forget a room whose area holds no satellite now; its policy is kept."""
        for cancel in (room.cancel_revert, room.cancel_debug):
            if cancel is not None:
                cancel()
        devices = dr.async_get(self._hass)
        if device := devices.async_get_device_by_identifier(
            room_device_identifier(room.area_id), self._entry.entry_id
        ):
            devices.async_remove_device(device.id)

    # Looking rooms up -----------------------------------------------------------

    def room_of_entity(self, entity_id: str) -> Room | None:
        """Return the room of an assist_satellite entity."""
        for room in self.rooms.values():
            if entity_id in room.satellites:
                return room
        return None

    def room_of_address(self, address: str, ours: dict[str, str]) -> Room | None:
        """Return the room of a Wyoming client, by its IP address.

        ``ours``: our satellites' entity ids by address. Other satellites are
        found by the host their config entry was set up with (Home
        Assistant's own Wyoming satellites).
        """
        if (entity_id := ours.get(address)) is not None:
            return self.room_of_entity(entity_id)
        entities = er.async_get(self._hass)
        for room in self.rooms.values():
            for entity_id in room.satellites:
                entity = entities.async_get(entity_id)
                if entity is None or entity.config_entry_id is None:
                    continue
                entry = self._hass.config_entries.async_get_entry(
                    entity.config_entry_id
                )
                if entry is not None and entry.data.get("host") == address:
                    return room
        return None

    def count_request(self, room: Room) -> None:
        """Count one voice request from ``room``."""
        room.state.count_request()
        self._push(room.area_id)

    def gate(self, room: Room | None, *, offhub: bool = False) -> RoomGate | None:
        """Open a gate on ``room``; None for audio that is no room's."""
        return room.state.gate(offhub=offhub) if room is not None else None

    def gated[T](
        self,
        stream: AsyncIterable[T],
        room: Room | None,
        pcm: Callable[[T], bytes],
        gate: RoomGate | None = None,
    ) -> AsyncIterable[T]:
        """Pass a room's audio ``stream`` through its gate (``gate``, or a new one).

        ``pcm`` gives a chunk's audio. Recorded if the room's debug recording
        is on. A stream that is no room's passes as it is.
        """
        if room is None:
            return stream
        return _async_gated(
            stream,
            gate if gate is not None else room.state.gate(),
            pcm,
            self._recording(room),
        )

    def pipeline_stream[T](
        self, stream: AsyncIterable[T], pcm: Callable[[T], bytes]
    ) -> AsyncIterable[T]:
        """Gate the audio a satellite's Assist pipeline hands a provider of ours.

        Our own satellites' audio is gated where it enters the hub (their
        link), so only other integrations' satellites are gated here.
        """
        if (entity_id := pipeline_satellite()) is None:
            return stream
        entity = er.async_get(self._hass).async_get(entity_id)
        if entity is not None and entity.platform == DOMAIN:
            return stream
        return self.gated(stream, self.room_of_entity(entity_id), pcm)

    # Debug recording ---------------------------------------------------------------

    @callback
    def async_set_debug_recording(self, area_id: str, *, on: bool) -> None:
        """Record the room's audio for an hour from now, or stop recording."""
        room = self.rooms[area_id]
        if room.cancel_debug is not None:
            room.cancel_debug()
            room.cancel_debug = None
        room.debug_until = None
        if on:
            room.debug_until = dt_util.utcnow() + DEBUG_RECORDING_DURATION

            @callback
            def _expire(_: datetime) -> None:
                room.cancel_debug = None
                room.debug_until = None
                self._push(area_id)

            room.cancel_debug = async_track_point_in_utc_time(
                self._hass, _expire, room.debug_until
            )
            LOGGER.warning(
                "Recording the audio of %s for debugging until %s",
                room.name,
                dt_util.as_local(room.debug_until).strftime("%H:%M"),
            )
        self._push(area_id)

    def _recording(self, room: Room) -> StreamRecording | None:
        if room.debug_until is None or room.debug_until <= dt_util.utcnow():
            return None
        return StreamRecording(
            self._hass, recordings_dir(self._hass, room.area_id) / recording_name()
        )

    async def _async_prune(self, now: datetime | None = None) -> None:
        await self._hass.async_add_executor_job(
            prune_recordings, recordings_dir(self._hass), now or dt_util.utcnow()
        )

    # Changing a room -------------------------------------------------------------

    @callback
    def async_set_policy(  # noqa: PLR0913 - each setting by name, as the entities set them
        self,
        area_id: str,
        *,
        mode: PrivacyMode | None = None,
        cloud_allowed: bool | None = None,
        announce_when_muted: bool | None = None,
        duration: timedelta | None = None,
        context: Context | None = None,
    ) -> None:
        """Change a room's mode or settings; applied to every path at once.

        ``duration``: a mode change lasts this long, then the mode it replaced
        returns.
        """
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("mode", mode),
                ("cloud_allowed", cloud_allowed),
                ("announce_when_muted", announce_when_muted),
            )
            if value is not None
        }
        room = self.rooms[area_id]
        old = room.policy
        new = replace(old, **changes)
        # Timed modes do not stack: the mode that returns is the one the room
        # had before any timed mode, so that asking again extends the time.
        returning = room.revert[0] if room.revert is not None else old.mode
        if room.cancel_revert is not None and "mode" in changes:
            room.cancel_revert()
            room.cancel_revert = None
            room.revert = None
        if duration is not None and new.mode is not returning:
            self._schedule_revert(room, returning, dt_util.utcnow() + duration)
        if not room.state.set_policy(new, dt_util.utcnow()):
            self._save()
            return
        self._enforce(room, old)
        if new.mode is not old.mode:
            LOGGER.info("%s is now %s", room.name, new.mode)
            self._hass.bus.async_fire(
                EVENT_ROOM_MODE_CHANGED,
                {
                    "area_id": area_id,
                    "room": room.name,
                    "mode": new.mode.value,
                    "previous_mode": old.mode.value,
                    "until": room.revert[1].isoformat() if room.revert else None,
                },
                context=context,
            )
        self._save()
        self._push(area_id)

    def _schedule_revert(self, room: Room, mode: PrivacyMode, when: datetime) -> None:
        @callback
        def _revert(_: datetime) -> None:
            room.cancel_revert = None
            room.revert = None
            if self.rooms.get(room.area_id) is room:
                self.async_set_policy(room.area_id, mode=mode)

        room.revert = (mode, when)
        room.cancel_revert = async_track_point_in_utc_time(self._hass, _revert, when)

    # Enforcing -------------------------------------------------------------------

    def _enforce(
        self, room: Room, old: RoomPolicy, *, joined: Iterable[str] = ()
    ) -> None:
        """Apply the room's policy on every path; ``joined``: satellites new to it."""
        async_dispatcher_send(self._hass, signal_policy_changed(self._entry), room, old)
        muted = not mic_allowed(room.policy)
        entities = er.async_get(self._hass)
        ours = {
            entity.entity_id
            for entity in er.async_entries_for_config_entry(
                entities, self._entry.entry_id
            )
        }
        changed = muted != (not mic_allowed(old))
        for entity_id in room.satellites - ours:
            if not changed and entity_id not in set(joined):
                continue
            entity = entities.async_get(entity_id)
            if entity is None or entity.device_id is None:
                continue
            if (switch := mute_switch(self._hass, entity.device_id)) is not None:
                self._set_mute_switch(switch, muted=muted)

    def _set_mute_switch(self, switch: str, *, muted: bool) -> None:
        """Turn a satellite's mute switch on; restore it when no longer muted."""
        if muted:
            if switch in self._muted_switches:
                return
            state = self._hass.states.get(switch)
            self._muted_switches[switch] = state is not None and state.state == "on"
            service = SERVICE_TURN_ON
        else:
            if switch not in self._muted_switches:
                return
            if self._muted_switches.pop(switch):
                self._save()
                return  # it was on before the room was muted: it stays on
            service = SERVICE_TURN_OFF
        self._save()
        self._entry.async_create_task(
            self._hass,
            self._hass.services.async_call(
                Platform.SWITCH, service, {ATTR_ENTITY_ID: switch}, blocking=True
            ),
            f"{DOMAIN} mute {switch}",
        )

    # Counters --------------------------------------------------------------------

    @callback
    def _satellite_state(self, event: Event[Any]) -> None:
        """Count a voice request whenever a room's satellite starts listening."""
        new = event.data.get("new_state")
        old = event.data.get("old_state")
        if new is None or new.state != "listening":
            return
        if old is not None and old.state == "listening":
            return
        if (room := self.room_of_entity(new.entity_id)) is not None and mic_allowed(
            room.policy
        ):
            # Not in Muted: the hub refuses the audio, so nothing is requested.
            self.count_request(room)

    def _push(self, area_id: str) -> None:
        """Tell the room's entities (listening flipped, a request, a mode)."""
        if (room := self.rooms.get(area_id)) is not None:
            self._pushed_bytes[area_id] = room.state.ledger.audio_bytes
        async_dispatcher_send(self._hass, signal_room_updated(self._entry, area_id))

    @callback
    def _push_counters(self, _: datetime) -> None:
        """Tell rooms whose audio counters moved since they were last told."""
        for area_id, room in self.rooms.items():
            if room.state.ledger.audio_bytes != self._pushed_bytes.get(area_id):
                self._push(area_id)

    # Storage ---------------------------------------------------------------------

    def _save(self) -> None:
        for room in self.rooms.values():
            policy = room.policy
            self._policies[room.area_id] = {
                "mode": policy.mode.value,
                "cloud_allowed": policy.cloud_allowed,
                "announce_when_muted": policy.announce_when_muted,
                "mode_changed": (
                    changed.isoformat()
                    if (changed := room.state.ledger.mode_changed)
                    else None
                ),
                "revert": (
                    {"mode": room.revert[0].value, "at": room.revert[1].isoformat()}
                    if room.revert
                    else None
                ),
            }
        self._store.async_delay_save(self._stored, 1)

    def _stored(self) -> dict[str, Any]:
        return {"rooms": self._policies, "muted_switches": self._muted_switches}
