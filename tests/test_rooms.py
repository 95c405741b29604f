"""Rooms: a device per area with a satellite, its privacy mode, settings and counters.

A room is made as a user makes one: a satellite (the project's simulator, a
real Wyoming server on 127.0.0.1) is added in an area; tests that move the
clock use another integration's satellite, known to the registry only. The
room's entities are driven through Home Assistant's services and read from
their states.
"""

from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.assist_satellite import DOMAIN as ASSIST_SATELLITE
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import (
    ATTR_ENTITY_ID,
    CONF_HOST,
    CONF_PORT,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import Context, Event, HomeAssistant, State
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.private_voice.const import (
    CONF_AREA_ID,
    CONF_ENGINE_MODE,
    CONF_LANGUAGE,
    CONF_URI,
    DOMAIN,
    SUBENTRY_SATELLITE,
    EngineMode,
)
from custom_components.private_voice.privacy.ledger import ENGINE_BYTES_PER_SECOND
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.protocol.client import Endpoint
from custom_components.private_voice.rooms import (
    EVENT_ROOM_MODE_CHANGED,
    Room,
    room_device_identifier,
)

from .conftest import StartSatellite
from .protocol.simulator import Device
from .test_assist_satellite import add_satellite, satellite_entity
from .waiting import until

# Fixed, because it is part of every entity's unique id (and so of the snapshots).
ENTRY_ID = "01JROOMS0PRIVATEVOICE00000"
KITCHEN = "kitchen"
STORE_KEY = f"{DOMAIN}.{ENTRY_ID}.rooms"


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshot registry entries and states without their random ids and times.

    The plugin's fixture of the same name does this, but syrupy's own one,
    registered later, shadows it.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def mock_config_entry(
    free_port: int, engine_host_endpoint: Endpoint
) -> MockConfigEntry:
    """Return a Private Voice entry on the session's engine host, its id fixed."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Private Voice",
        unique_id=DOMAIN,
        entry_id=ENTRY_ID,
        data={
            CONF_LANGUAGE: "en",
            CONF_PORT: free_port,
            CONF_ENGINE_MODE: EngineMode.REMOTE,
            CONF_URI: engine_host_endpoint.uri,
        },
    )


@pytest.fixture
def kitchen(area_registry: ar.AreaRegistry) -> str:
    """Return the Kitchen's area id."""
    area_id = area_registry.async_create("Kitchen").id
    assert area_id == KITCHEN
    return area_id


@pytest.fixture
async def kitchen_satellite(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> str:
    """Add a satellite in the Kitchen, which so becomes a room; its subentry id."""
    satellite = await start_satellite(b"", Device())
    subentry_id = await add_satellite(hass, init_integration, satellite, kitchen)
    await satellite_connected(hass, subentry_id)
    return subentry_id


async def satellite_connected(hass: HomeAssistant, subentry_id: str) -> None:
    """Wait until the hub is connected to the satellite of ``subentry_id``.

    Also before a test ends: the simulator stops only the connections it
    has taken.
    """
    await hass.async_block_till_done()
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)


@pytest.fixture
async def other_satellite(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    kitchen: str,
    entity_registry: er.EntityRegistry,
) -> str:
    """Put another integration's satellite (ESPHome's) in the Kitchen.

    Known to the registry only: ESPHome cannot run here, and rooms follow the
    registries. Tests that move the clock use it, as our satellite's link
    would take the jump for a satellite that stopped answering.
    """
    satellite = entity_registry.async_get_or_create(
        ASSIST_SATELLITE, "esphome", "voice-pe-kitchen", suggested_object_id="voice_pe"
    )
    entity_registry.async_update_entity(satellite.entity_id, area_id=kitchen)
    await hass.async_block_till_done()
    return satellite.entity_id


def room_device(hass: HomeAssistant, area_id: str) -> dr.DeviceEntry | None:
    """Return the device of the room in ``area_id``, if there is one."""
    return dr.async_get(hass).async_get_device_by_identifier(
        room_device_identifier(area_id), ENTRY_ID
    )


def room_entity(hass: HomeAssistant, domain: str, area_id: str, key: str) -> str:
    """Return the entity id of a room's entity, by its key."""
    found = er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, f"{ENTRY_ID}-room-{area_id}-{key}"
    )
    assert found is not None, (domain, area_id, key)
    return found


def room(entry: MockConfigEntry, area_id: str) -> Room:
    """Return the room the manager keeps for ``area_id``."""
    return entry.runtime_data.rooms.rooms[area_id]


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return the state of ``entity_id``, which must exist."""
    found = hass.states.get(entity_id)
    assert found is not None, entity_id
    return found.state


async def select_mode(
    hass: HomeAssistant, area_id: str, mode: str, context: Context | None = None
) -> None:
    """Choose a room's mode as the UI does."""
    await hass.services.async_call(
        Platform.SELECT,
        SERVICE_SELECT_OPTION,
        {
            ATTR_ENTITY_ID: room_entity(hass, Platform.SELECT, area_id, "privacy_mode"),
            ATTR_OPTION: mode,
        },
        blocking=True,
        context=context,
    )


async def switch(hass: HomeAssistant, area_id: str, key: str, *, on: bool) -> None:
    """Turn a room's switch on or off as the UI does."""
    await hass.services.async_call(
        Platform.SWITCH,
        SERVICE_TURN_ON if on else SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: room_entity(hass, Platform.SWITCH, area_id, key)},
        blocking=True,
    )


@pytest.mark.usefixtures("kitchen_satellite")
async def test_room_is_a_device_in_its_area_with_its_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """A satellite in the Kitchen makes "Kitchen privacy", in the Kitchen."""
    device = room_device(hass, KITCHEN)
    assert device is not None
    assert device.area_id == KITCHEN
    assert device.config_entry_id == init_integration.entry_id
    assert device == snapshot(name="device")
    entities = sorted(
        er.async_entries_for_device(entity_registry, device.id),
        key=lambda entity: entity.entity_id,
    )
    assert {(entity.domain, entity.unique_id) for entity in entities} == {
        (domain, f"{ENTRY_ID}-room-{KITCHEN}-{key}")
        for domain, key in (
            ("binary_sensor", "listening"),
            ("select", "privacy_mode"),
            ("sensor", "audio_today"),
            ("sensor", "last_speaker"),
            ("sensor", "mode_changed"),
            ("sensor", "offhub_audio"),
            ("sensor", "requests_today"),
            ("switch", "announce_when_muted"),
            ("switch", "cloud_allowed"),
        )
    }
    for entity in entities:
        assert entity.disabled_by is None
        assert entity == snapshot(name=f"{entity.entity_id}-entry")
        assert hass.states.get(entity.entity_id) == snapshot(
            name=f"{entity.entity_id}-state"
        )


@pytest.mark.usefixtures("kitchen_satellite")
async def test_selecting_a_mode_changes_the_room(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Muted from the select: the room's policy, the select, the time it changed."""
    changes = async_capture_events(hass, EVENT_ROOM_MODE_CHANGED)
    context = Context()
    select = room_entity(hass, Platform.SELECT, KITCHEN, "privacy_mode")
    changed = room_entity(hass, Platform.SENSOR, KITCHEN, "mode_changed")
    assert state(hass, select) == PrivacyMode.NORMAL
    assert state(hass, changed) == STATE_UNKNOWN

    await select_mode(hass, KITCHEN, PrivacyMode.MUTED, context)

    assert room(init_integration, KITCHEN).policy.mode is PrivacyMode.MUTED
    assert state(hass, select) == PrivacyMode.MUTED
    when = dt_util.parse_datetime(state(hass, changed))
    assert when is not None
    assert abs(dt_util.utcnow() - when) < timedelta(seconds=5)
    # The change is the user's: the event carries the service call's context.
    [event] = changes
    assert event.context.id == context.id
    assert (event.data["mode"], event.data["previous_mode"]) == ("muted", "normal")
    assert hass.states.get(select).context.id == context.id


@pytest.mark.parametrize("key", ["cloud_allowed", "announce_when_muted"])
@pytest.mark.usefixtures("kitchen_satellite")
async def test_switches_change_the_room(
    hass: HomeAssistant, init_integration: MockConfigEntry, key: str
) -> None:
    """Off by default; on and off again as the switch says, the mode untouched."""
    entity = room_entity(hass, Platform.SWITCH, KITCHEN, key)
    assert state(hass, entity) == STATE_OFF
    assert getattr(room(init_integration, KITCHEN).policy, key) is False

    await switch(hass, KITCHEN, key, on=True)
    assert state(hass, entity) == STATE_ON
    assert getattr(room(init_integration, KITCHEN).policy, key) is True

    await switch(hass, KITCHEN, key, on=False)
    assert state(hass, entity) == STATE_OFF
    policy = room(init_integration, KITCHEN).policy
    assert getattr(policy, key) is False
    assert policy.mode is PrivacyMode.NORMAL


async def test_room_leaves_with_its_last_satellite_and_comes_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    kitchen_satellite: str,
    area_registry: ar.AreaRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The satellite moves to the hall: the Kitchen room goes, the Hall's comes.

    Moved back, the Kitchen is a room again, in the mode it had.
    """
    hall = area_registry.async_create("Hall").id
    await select_mode(hass, KITCHEN, PrivacyMode.QUIET)
    kitchen_select = room_entity(hass, Platform.SELECT, KITCHEN, "privacy_mode")
    satellite = device_registry.async_get_device_by_identifier(
        (DOMAIN, kitchen_satellite), init_integration.entry_id
    )
    assert satellite is not None

    device_registry.async_update_device(satellite.id, area_id=hall)
    await hass.async_block_till_done()

    assert room_device(hass, KITCHEN) is None
    assert hass.states.get(kitchen_select) is None
    assert KITCHEN not in init_integration.runtime_data.rooms.rooms
    hall_device = room_device(hass, hall)
    assert hall_device is not None
    assert hall_device.area_id == hall
    assert state(hass, room_entity(hass, Platform.SELECT, hall, "privacy_mode")) == (
        PrivacyMode.NORMAL
    )

    device_registry.async_update_device(satellite.id, area_id=KITCHEN)
    await hass.async_block_till_done()

    assert room_device(hass, hall) is None
    kitchen_device = room_device(hass, KITCHEN)
    assert kitchen_device is not None
    assert kitchen_device.area_id == KITCHEN
    # The same entity as before, in the mode it was left in.
    assert room_entity(hass, Platform.SELECT, KITCHEN, "privacy_mode") == (
        kitchen_select
    )
    assert state(hass, kitchen_select) == PrivacyMode.QUIET
    assert len(er.async_entries_for_device(er.async_get(hass), kitchen_device.id)) == 9


@pytest.mark.parametrize(
    "wait_for_save",
    [
        pytest.param(True, id="saved"),
        pytest.param(False, id="at-once"),
    ],
)
async def test_modes_survive_a_reload(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    init_integration: MockConfigEntry,
    kitchen_satellite: str,
    wait_for_save: bool,  # noqa: FBT001 - a parameter of the test
) -> None:
    """Reloaded, the room comes back muted with the cloud allowed.

    Also when the entry reloads before the delayed save would have written.
    """
    await select_mode(hass, KITCHEN, PrivacyMode.MUTED)
    await switch(hass, KITCHEN, "cloud_allowed", on=True)
    if wait_for_save:
        # The store writes a second after the last change, by the loop's clock.
        await until(lambda: STORE_KEY in hass_storage)

    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await satellite_connected(hass, kitchen_satellite)

    assert room(init_integration, KITCHEN).policy.mode is PrivacyMode.MUTED
    assert state(hass, room_entity(hass, Platform.SELECT, KITCHEN, "privacy_mode")) == (
        PrivacyMode.MUTED
    )
    assert state(
        hass, room_entity(hass, Platform.SWITCH, KITCHEN, "cloud_allowed")
    ) == (STATE_ON)


async def test_fresh_start_restores_the_stored_modes(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """Home Assistant starts with a satellite in the Kitchen, stored as Guest."""
    satellite = await start_satellite(b"", Device())
    changed = datetime(2026, 5, 1, 7, 30, tzinfo=dt_util.UTC)
    hass_storage[STORE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORE_KEY,
        "data": {
            "rooms": {
                kitchen: {
                    "mode": "guest",
                    "cloud_allowed": False,
                    "announce_when_muted": True,
                    "mode_changed": changed.isoformat(),
                    "revert": None,
                }
            },
            "muted_switches": {},
        },
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        entry_id=ENTRY_ID,
        data=mock_config_entry.data,
        subentries_data=[
            ConfigSubentryData(
                data={
                    CONF_HOST: "127.0.0.1",
                    CONF_PORT: satellite.port,
                    CONF_AREA_ID: kitchen,
                },
                subentry_type=SUBENTRY_SATELLITE,
                title="Kitchen satellite",
                unique_id=f"127.0.0.1:{satellite.port}",
            )
        ],
    )
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    [subentry_id] = entry.subentries
    await satellite_connected(hass, subentry_id)

    assert room(entry, kitchen).policy.mode is PrivacyMode.GUEST
    assert state(hass, room_entity(hass, Platform.SELECT, kitchen, "privacy_mode")) == (
        PrivacyMode.GUEST
    )
    assert state(
        hass, room_entity(hass, Platform.SWITCH, kitchen, "announce_when_muted")
    ) == (STATE_ON)
    assert state(hass, room_entity(hass, Platform.SENSOR, kitchen, "mode_changed")) == (
        changed.isoformat()
    )


@pytest.mark.usefixtures("kitchen_satellite")
async def test_listening_while_a_gate_passes_audio_and_counters_move(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A stream's audio passes: Listening on, then off; the day's counters grow."""
    listening = room_entity(hass, Platform.BINARY_SENSOR, KITCHEN, "listening")
    requests = room_entity(hass, Platform.SENSOR, KITCHEN, "requests_today")
    audio = room_entity(hass, Platform.SENSOR, KITCHEN, "audio_today")
    offhub = room_entity(hass, Platform.SENSOR, KITCHEN, "offhub_audio")
    assert state(hass, listening) == STATE_OFF
    assert (state(hass, requests), state(hass, audio)) == ("0", "0.0")
    manager = init_integration.runtime_data.rooms
    kitchen = room(init_integration, KITCHEN)

    manager.count_request(kitchen)
    gate = manager.gate(kitchen)
    assert gate is not None
    gate.passed(ENGINE_BYTES_PER_SECOND)
    await hass.async_block_till_done()

    assert state(hass, listening) == STATE_ON
    assert state(hass, requests) == "1"
    assert float(state(hass, audio)) == 1.0
    # The cloud was not allowed: nothing left the hub.
    assert state(hass, offhub) == "0"

    gate.close()
    await hass.async_block_till_done()
    assert state(hass, listening) == STATE_OFF
    assert state(hass, requests) == "1"


@pytest.mark.usefixtures("other_satellite")
async def test_audio_counted_while_flowing_at_most_every_ten_seconds(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Audio that keeps flowing shows in the sensors within ten seconds."""
    manager = init_integration.runtime_data.rooms
    gate = manager.gate(room(init_integration, KITCHEN), offhub=True)
    assert gate is not None
    audio = room_entity(hass, Platform.SENSOR, KITCHEN, "audio_today")
    offhub = room_entity(hass, Platform.SENSOR, KITCHEN, "offhub_audio")
    gate.passed(ENGINE_BYTES_PER_SECOND)
    gate.passed(ENGINE_BYTES_PER_SECOND)
    await hass.async_block_till_done()
    # Listening turned on with the first chunk; the second is not shown yet.
    assert float(state(hass, audio)) == 1.0

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=11))
    await hass.async_block_till_done()

    assert float(state(hass, audio)) == 2.0
    assert int(state(hass, offhub)) == 2 * ENGINE_BYTES_PER_SECOND
    gate.close()


@pytest.mark.usefixtures("other_satellite")
async def test_daily_counts_start_afresh_at_midnight(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Yesterday's requests do not show as today's once midnight passes."""
    manager = init_integration.runtime_data.rooms
    requests = room_entity(hass, Platform.SENSOR, KITCHEN, "requests_today")
    manager.count_request(room(init_integration, KITCHEN))
    assert state(hass, requests) == "1"
    seen: list[State | None] = []

    def _record(event: Event[Any]) -> None:
        seen.append(event.data["new_state"])

    remove = async_track_state_change_event(hass, requests, _record)
    # Just past midnight: the timers due at midnight are run.
    freezer.move_to(dt_util.start_of_local_day() + timedelta(days=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    remove()

    assert state(hass, requests) == "0"
    assert [new.state for new in seen if new is not None] == ["0"]


async def test_satellite_of_another_integration_makes_a_room(
    hass: HomeAssistant, other_satellite: str, entity_registry: er.EntityRegistry
) -> None:
    """Any integration's satellite makes a room; removed, the room goes too."""
    assert room_device(hass, KITCHEN) is not None
    assert state(hass, room_entity(hass, Platform.SELECT, KITCHEN, "privacy_mode")) == (
        PrivacyMode.NORMAL
    )

    entity_registry.async_remove(other_satellite)
    await hass.async_block_till_done()

    assert room_device(hass, KITCHEN) is None


@pytest.mark.usefixtures("kitchen_satellite")
async def test_debug_recording_switch_is_off_and_disabled_until_asked_for(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The one way audio reaches the disk: a hidden switch, on for an hour at most."""
    entity = room_entity(hass, Platform.SWITCH, KITCHEN, "debug_recording")
    assert entity_registry.async_get(entity).disabled_by is (
        er.RegistryEntryDisabler.INTEGRATION
    )
    entity_registry.async_update_entity(entity, disabled_by=None)
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert state(hass, entity) == STATE_OFF

    await switch(hass, KITCHEN, "debug_recording", on=True)
    assert state(hass, entity) == STATE_ON
    until = room(init_integration, KITCHEN).debug_until
    assert until is not None
    assert timedelta(minutes=59) < until - dt_util.utcnow() <= timedelta(hours=1)

    await switch(hass, KITCHEN, "debug_recording", on=False)
    assert state(hass, entity) == STATE_OFF
    assert room(init_integration, KITCHEN).debug_until is None
