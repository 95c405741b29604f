"""The "Private Voice" Assist pipeline, and repairs when the guard is bypassed.

The pipeline uses the entry's own engines and the guard as conversation agent,
with "prefer local intents" off: with it on, Home Assistant handles the
sentences its built-in intents match itself, before the pipeline's agent is
asked, so the guard would never see "unlock the front door".

It is created once. Its id is kept, so that a user who edits the pipeline keeps
the edits, and one who deletes it does not get it back.

A room whose satellites use a pipeline without the guard gets a repair too:
there, sensitive actions are not checked, and another integration's satellite
in Quiet still hears spoken replies.
"""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Final

from homeassistant.components import wake_word
from homeassistant.components.assist_pipeline import (
    Pipeline,
    async_create_default_pipeline,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.assist_pipeline.const import OPTION_PREFERRED
from homeassistant.components.assist_pipeline.pipeline import (
    KEY_ASSIST_PIPELINE,
    async_get_pipeline,
)
from homeassistant.components.assist_satellite.const import (
    DATA_COMPONENT as SATELLITES,
)
from homeassistant.const import EVENT_STATE_CHANGED, Platform
from homeassistant.core import EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.collection import CollectionChange
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store

from .const import DOMAIN, LOGGER
from .conversation import guard_entity_id
from .coordinator import PrivateVoiceConfigEntry
from .rooms import signal_policy_changed, signal_room_added

PIPELINE_NAME: Final = "Private Voice"
STORAGE_VERSION: Final = 1
# One repair per pipeline that bypasses the guard: this, then its id.
ISSUE_GUARD_BYPASSED: Final = "guard_bypassed"
# One repair per room with a satellite whose pipeline has no guard: this, then
# the area id.
ISSUE_ROOM_UNGUARDED: Final = "room_unguarded"
RECHECK_INTERVAL: Final = timedelta(minutes=1)


def _store(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.pipeline")


def _entity_id(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry, domain: Platform, key: str
) -> str | None:
    return er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, f"{entry.entry_id}_{key}"
    )


async def async_ensure_pipeline(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> None:
    """Create the pipeline if it never was; raise and clear ``guard_bypassed``.

    Call once the platforms are set up (the pipeline names their entities).
    The repair follows every later change to the pipelines until unload.
    """
    store = _store(hass, entry)
    stored = await store.async_load() or {}
    if "pipeline_id" not in stored and (
        pipeline := await _async_create_pipeline(hass, entry)
    ):
        await store.async_save({"pipeline_id": pipeline.id})

    # The rooms' satellites' pipeline selects: the state changes to look at
    # (found again at each look, not at each of Home Assistant's state changes).
    selects: set[str] = set()

    @callback
    def _check_rooms(*_: object) -> None:
        async_check_rooms_guarded(hass, entry)
        selects.clear()
        selects.update(_pipeline_selects(hass, entry))

    async def _changed(_: Iterable[CollectionChange]) -> None:
        async_check_guard_bypassed(hass, entry)
        _check_rooms()

    @callback
    def _is_pipeline_select(event_data: EventStateChangedData) -> bool:
        return event_data["entity_id"] in selects

    @callback
    def _is_new_select(event_data: er.EventEntityRegistryUpdatedData) -> bool:
        return event_data["action"] == "create" and event_data["entity_id"].startswith(
            f"{Platform.SELECT}."
        )

    async_check_guard_bypassed(hass, entry)
    _check_rooms()
    entry.async_on_unload(
        hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_add_change_set_listener(
            _changed
        )
    )
    # A room's satellites changed (sent with the room and its policy).
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_policy_changed(entry), _check_rooms)
    )
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_room_added(entry), _check_rooms)
    )
    # Home Assistant announces no change of the preferred pipeline: look again
    # every minute.
    entry.async_on_unload(
        async_track_time_interval(hass, _check_rooms, RECHECK_INTERVAL)
    )
    # A satellite's "Assist pipeline" select added after its room (rare).
    entry.async_on_unload(
        hass.bus.async_listen(
            er.EVENT_ENTITY_REGISTRY_UPDATED,
            _check_rooms,
            event_filter=_is_new_select,
        )
    )
    # A satellite's pipeline chosen in its "Assist pipeline" select.
    entry.async_on_unload(
        hass.bus.async_listen(
            EVENT_STATE_CHANGED, _check_rooms, event_filter=_is_pipeline_select
        )
    )

    @callback
    def _unloaded() -> None:
        for kind in (ISSUE_GUARD_BYPASSED, ISSUE_ROOM_UNGUARDED):
            _async_clear_issues(hass, kind, keep=set())

    entry.async_on_unload(_unloaded)


async def async_remove_pipeline_record(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> None:
    """Forget the pipeline's id when the entry is removed (the pipeline stays)."""
    await _store(hass, entry).async_remove()


async def _async_create_pipeline(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> Pipeline | None:
    """Create the pipeline on our engines and the guard; None if they are missing.

    Without our speech-to-text and text-to-speech (engines elsewhere may leave
    either out), or if they do not speak Home Assistant's language, there is
    nothing to create: the next setup tries again.
    """
    stt = _entity_id(hass, entry, Platform.STT, "stt")
    tts = _entity_id(hass, entry, Platform.TTS, "tts")
    guard = guard_entity_id(hass, entry)
    if stt is None or tts is None or guard is None:
        return None
    pipeline = await async_create_default_pipeline(
        hass, stt_engine_id=stt, tts_engine_id=tts, pipeline_name=PIPELINE_NAME
    )
    if pipeline is None:
        LOGGER.info(
            "Not creating the %s pipeline: no engine speaks the language",
            PIPELINE_NAME,
        )
        return None
    wake_entity = _entity_id(hass, entry, Platform.WAKE_WORD, "wake_word")
    wake_id: str | None = None
    if wake_entity is not None and (
        detection := wake_word.async_get_wake_word_detection_entity(hass, wake_entity)
    ):
        words = await detection.get_supported_wake_words()
        wake_id = words[0].id if words else None
    await async_update_pipeline(
        hass,
        pipeline,
        conversation_engine=guard,
        wake_word_entity=wake_entity if wake_id else None,
        wake_word_id=wake_id,
        prefer_local_intents=False,
    )
    return pipeline


@callback
def async_check_guard_bypassed(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> None:
    """Raise a repair for each pipeline that bypasses the guard; clear the others."""
    guard = guard_entity_id(hass, entry)
    bypassing = {
        pipeline.id: pipeline
        for pipeline in async_get_pipelines(hass)
        if guard is not None
        and pipeline.conversation_engine == guard
        and pipeline.prefer_local_intents
    }
    for pipeline in bypassing.values():
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{ISSUE_GUARD_BYPASSED}_{pipeline.id}",
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_GUARD_BYPASSED,
            translation_placeholders={"pipeline": pipeline.name},
        )
    _async_clear_issues(hass, ISSUE_GUARD_BYPASSED, keep=set(bypassing))


@callback
def satellite_pipeline(hass: HomeAssistant, satellite_id: str) -> Pipeline | None:
    """Return the pipeline an assist_satellite runs, as it resolves it itself.

    Its "Assist pipeline" select names a pipeline, or "preferred" (also when it
    has no such select). None if the satellite is not set up.
    """
    entity = hass.data[SATELLITES].get_entity(satellite_id)
    if entity is None:
        return None
    if (select := entity.pipeline_entity_id) is not None and (
        state := hass.states.get(select)
    ) is not None:
        for pipeline in async_get_pipelines(hass):
            if pipeline.name == state.state != OPTION_PREFERRED:
                return pipeline
    return async_get_pipeline(hass, None)


@callback
def _pipeline_selects(hass: HomeAssistant, entry: PrivateVoiceConfigEntry) -> set[str]:
    """Return the "Assist pipeline" selects of the rooms' satellites."""
    component = hass.data[SATELLITES]
    return {
        select
        for room in entry.runtime_data.rooms.rooms.values()
        for satellite_id in room.satellites
        if (entity := component.get_entity(satellite_id)) is not None
        and (select := entity.pipeline_entity_id) is not None
    }


@callback
def async_check_rooms_guarded(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> None:
    """Raise a repair for each room with a satellite whose pipeline has no guard."""
    guard = guard_entity_id(hass, entry)
    if guard is None:
        return
    unguarded: set[str] = set()
    for room in entry.runtime_data.rooms.rooms.values():
        found = {
            satellite_id: pipeline
            for satellite_id in sorted(room.satellites)
            if (pipeline := satellite_pipeline(hass, satellite_id)) is not None
            and pipeline.conversation_engine != guard
        }
        if not found:
            continue
        unguarded.add(room.area_id)
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{ISSUE_ROOM_UNGUARDED}_{room.area_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_ROOM_UNGUARDED,
            translation_placeholders={
                "room": room.name,
                "satellites": ", ".join(
                    state.name if (state := hass.states.get(entity_id)) else entity_id
                    for entity_id in found
                ),
                "pipelines": ", ".join(
                    sorted({pipeline.name for pipeline in found.values()})
                ),
            },
        )
    _async_clear_issues(hass, ISSUE_ROOM_UNGUARDED, keep=unguarded)


@callback
def _async_clear_issues(hass: HomeAssistant, kind: str, *, keep: set[str]) -> None:
    """Delete the repairs of ``kind`` but those of the ids in ``keep``.

    ``kind`` is ``guard_bypassed`` (by pipeline) or ``room_unguarded`` (by area).
    """
    prefix = f"{kind}_"
    for domain, issue_id in list(ir.async_get(hass).issues):
        if (
            domain == DOMAIN
            and issue_id.startswith(prefix)
            and issue_id.removeprefix(prefix) not in keep
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)
