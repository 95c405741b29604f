"""The set_room_mode action, its logbook entries and the night-mode blueprint.

Rooms are made as a user makes them: a simulated satellite (a real Wyoming
server on 127.0.0.1) added to Private Voice in an area.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
import json
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.components.recorder import Recorder
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_AREA_ID,
    ATTR_DEVICE_ID,
    ATTR_ENTITY_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Context, Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    entity_registry as er,
    floor_registry as fr,
    label_registry as lr,
    selector,
)
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import probatio
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import (
    RecorderInstanceGenerator,
    WebSocketGenerator,
)
import yaml

from custom_components.private_voice import services
from custom_components.private_voice.const import DOMAIN
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.rooms import EVENT_ROOM_MODE_CHANGED

from .conftest import StartSatellite
from .test_assist_satellite import add_satellite, satellite_entity
from .waiting import until

PACKAGE = Path(services.__file__).parent
STRINGS: dict[str, Any] = json.loads(
    (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
)
SERVICES_YAML: dict[str, Any] = yaml.safe_load(
    (PACKAGE / "services.yaml").read_text(encoding="utf-8")
)
ICONS: dict[str, Any] = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))
BLUEPRINT = (
    Path(__file__).parent.parent
    / "blueprints"
    / "automation"
    / DOMAIN
    / "bedroom_muted_at_night.yaml"
)
SET_ROOM_MODE = services.SERVICE_SET_ROOM_MODE


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Give each test a config folder of its own, our blueprint installed in it."""
    folder = Path(hass_tmp_config_dir, "blueprints", "automation", DOMAIN)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, folder)
    return hass_tmp_config_dir


@pytest.fixture
def mock_recorder_before_hass(
    async_setup_recorder_instance: RecorderInstanceGenerator,
) -> None:
    """Let the logbook test have a recorder (it must come before hass)."""


type AddRoom = Callable[[str], Awaitable[tuple[str, str]]]


@pytest.fixture
def add_room(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    start_satellite: StartSatellite,
) -> AddRoom:
    """Make rooms: ``(name)`` adds an area with a satellite of ours in it.

    Returns the area's id and the satellite's entity id.
    """

    async def _add(name: str) -> tuple[str, str]:
        area = ar.async_get(hass).async_create(name)
        subentry_id = await add_satellite(
            hass, init_integration, await start_satellite(), area.id
        )
        assert area.id in init_integration.runtime_data.rooms.rooms
        entity_id = satellite_entity(hass, subentry_id)
        # Connected: tests that move the clock would expire a connection attempt.
        await until(lambda: hass.states.get(entity_id).state != STATE_UNAVAILABLE)
        return area.id, entity_id

    return _add


@pytest.fixture
async def bedroom(add_room: AddRoom) -> str:
    """Return the Bedroom's area id: a room."""
    area_id, _ = await add_room("Bedroom")
    return area_id


@pytest.fixture
def kitchen(hass: HomeAssistant) -> str:
    """Return the Kitchen's area id: an area with no satellite, so no room."""
    return ar.async_get(hass).async_create("Kitchen").id


@pytest.fixture
def mode_changes(hass: HomeAssistant) -> list[Event[dict[str, Any]]]:
    """Capture the room mode changes fired on the bus."""
    return async_capture_events(hass, EVENT_ROOM_MODE_CHANGED)


def room_mode(hass: HomeAssistant, area_id: str) -> PrivacyMode:
    """Return a room's privacy mode now."""
    [entry] = hass.config_entries.async_loaded_entries(DOMAIN)
    mode: PrivacyMode = entry.runtime_data.rooms.rooms[area_id].policy.mode
    return mode


async def set_room_mode(
    hass: HomeAssistant, target: dict[str, Any], **data: Any
) -> Context:
    """Call the action as an automation does; return the call's context."""
    context = Context()
    await hass.services.async_call(
        DOMAIN, SET_ROOM_MODE, data, target=target, blocking=True, context=context
    )
    return context


async def test_area_mode_set_and_announced(
    hass: HomeAssistant,
    bedroom: str,
    mode_changes: list[Event[dict[str, Any]]],
) -> None:
    """The room takes the mode; the change is fired with the caller's context."""
    assert room_mode(hass, bedroom) is PrivacyMode.NORMAL

    context = await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="muted")

    assert room_mode(hass, bedroom) is PrivacyMode.MUTED
    [event] = mode_changes
    assert event.data == {
        "area_id": bedroom,
        "room": "Bedroom",
        "mode": "muted",
        "previous_mode": "normal",
        "until": None,
    }
    assert event.context is context


async def test_previous_mode_returns_after_duration(
    hass: HomeAssistant,
    bedroom: str,
    mode_changes: list[Event[dict[str, Any]]],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Quiet for half an hour, then Guest again, as it was before."""
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="guest")
    start = dt_util.utcnow()

    await set_room_mode(
        hass, {ATTR_AREA_ID: bedroom}, mode="quiet", duration={"minutes": 30}
    )

    assert room_mode(hass, bedroom) is PrivacyMode.QUIET
    assert dt_util.parse_datetime(mode_changes[-1].data["until"]) == start + timedelta(
        minutes=30
    )
    freezer.tick(timedelta(minutes=29))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert room_mode(hass, bedroom) is PrivacyMode.QUIET

    freezer.tick(timedelta(minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()

    assert room_mode(hass, bedroom) is PrivacyMode.GUEST
    assert [(e.data["previous_mode"], e.data["mode"]) for e in mode_changes] == [
        ("normal", "guest"),
        ("guest", "quiet"),
        ("quiet", "guest"),
    ]
    assert mode_changes[-1].data["until"] is None


async def test_mode_set_by_hand_cancels_the_return(
    hass: HomeAssistant,
    bedroom: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A mode chosen while a timed one lasts stays when the time is up."""
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="muted", duration=600)
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="quiet")

    freezer.tick(timedelta(minutes=11))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()

    assert room_mode(hass, bedroom) is PrivacyMode.QUIET


async def test_timed_mode_set_again_still_ends(
    hass: HomeAssistant, bedroom: str, freezer: FrozenDateTimeFactory
) -> None:
    """Muted for 10 minutes, asked twice (a button pressed twice): Normal after."""
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="muted", duration=600)
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="muted", duration=600)

    freezer.tick(timedelta(minutes=11))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()

    assert room_mode(hass, bedroom) is PrivacyMode.NORMAL


async def test_satellite_entity_and_device_stand_for_their_room(
    hass: HomeAssistant, add_room: AddRoom, bedroom: str
) -> None:
    """A satellite, or its device, targets the room it is in; other rooms keep."""
    office, satellite = await add_room("Office")
    entity = er.async_get(hass).async_get(satellite)
    assert entity is not None

    await set_room_mode(hass, {ATTR_ENTITY_ID: satellite}, mode="guest")
    assert room_mode(hass, office) is PrivacyMode.GUEST
    await set_room_mode(hass, {ATTR_DEVICE_ID: entity.device_id}, mode="quiet")
    assert room_mode(hass, office) is PrivacyMode.QUIET

    assert room_mode(hass, bedroom) is PrivacyMode.NORMAL


async def test_several_areas_at_once(
    hass: HomeAssistant, add_room: AddRoom, bedroom: str
) -> None:
    """A list of areas sets every one of them."""
    office, _ = await add_room("Office")

    await set_room_mode(hass, {ATTR_AREA_ID: [bedroom, office]}, mode="muted")

    assert room_mode(hass, bedroom) is PrivacyMode.MUTED
    assert room_mode(hass, office) is PrivacyMode.MUTED


async def test_floor_and_label_set_the_rooms_they_hold(
    hass: HomeAssistant, bedroom: str, kitchen: str
) -> None:
    """Areas on the floor or with the label that are not rooms are left out."""
    upstairs = fr.async_get(hass).async_create("Upstairs")
    night = lr.async_get(hass).async_create("Night")
    for area_id in (bedroom, kitchen):
        ar.async_get(hass).async_update(
            area_id, floor_id=upstairs.floor_id, labels={night.label_id}
        )

    await set_room_mode(hass, {ATTR_FLOOR_ID: upstairs.floor_id}, mode="quiet")
    assert room_mode(hass, bedroom) is PrivacyMode.QUIET
    await set_room_mode(hass, {ATTR_LABEL_ID: night.label_id}, mode="muted")
    assert room_mode(hass, bedroom) is PrivacyMode.MUTED


@dataclass(frozen=True)
class Refusal:
    """A target that is no room, and the error it gets."""

    target: Callable[[dict[str, str]], dict[str, Any]]
    key: str
    message: str


@pytest.mark.parametrize(
    "refusal",
    [
        Refusal(
            lambda ids: {ATTR_AREA_ID: ids["kitchen"]},
            "not_a_room",
            "Kitchen is not a room: no voice satellite is in it.",
        ),
        Refusal(
            lambda ids: {ATTR_AREA_ID: [ids["bedroom"], ids["kitchen"]]},
            "not_a_room",
            "Kitchen is not a room",
        ),
        Refusal(
            lambda _: {ATTR_ENTITY_ID: "assist_satellite.nowhere"},
            "not_in_a_room",
            "assist_satellite.nowhere is not in a room",
        ),
        Refusal(
            lambda ids: {ATTR_FLOOR_ID: ids["downstairs"]},
            "no_room",
            "The chosen floors and labels hold no room",
        ),
    ],
    ids=["area", "rooms_and_area", "entity", "floor"],
)
async def test_target_that_is_no_room_is_refused(
    hass: HomeAssistant,
    bedroom: str,
    kitchen: str,
    mode_changes: list[Event[dict[str, Any]]],
    refusal: Refusal,
) -> None:
    """A translated error names the target; no room changes, also not the good one."""
    downstairs = fr.async_get(hass).async_create("Downstairs")
    ar.async_get(hass).async_update(kitchen, floor_id=downstairs.floor_id)
    ids = {"bedroom": bedroom, "kitchen": kitchen, "downstairs": downstairs.floor_id}

    with pytest.raises(ServiceValidationError) as raised:
        await set_room_mode(hass, refusal.target(ids), mode="muted")

    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == refusal.key
    assert refusal.message in str(raised.value)
    assert room_mode(hass, bedroom) is PrivacyMode.NORMAL
    assert mode_changes == []


async def test_refused_when_private_voice_is_not_loaded(
    hass: HomeAssistant, init_integration: MockConfigEntry, bedroom: str
) -> None:
    """With the entry unloaded the action is still there, and says why it fails."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert init_integration.state is ConfigEntryState.NOT_LOADED

    with pytest.raises(ServiceValidationError) as raised:
        await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="muted")

    assert raised.value.translation_key == "not_loaded"
    assert "Private Voice is not running" in str(raised.value)


@pytest.mark.parametrize(
    ("target", "data"),
    [
        ({}, {"mode": "muted"}),
        ({ATTR_AREA_ID: "bedroom"}, {"mode": "loud"}),
        ({ATTR_AREA_ID: "bedroom"}, {}),
        ({ATTR_AREA_ID: "bedroom"}, {"mode": "muted", "duration": 0}),
        ({ATTR_AREA_ID: "bedroom"}, {"mode": "muted", "duration": "-00:10:00"}),
    ],
)
async def test_bad_data_is_invalid(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    target: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """No target, an unknown mode, no mode, a duration of no time or less."""
    with pytest.raises(probatio.Invalid):
        await set_room_mode(hass, target, **data)


async def test_logbook_tells_the_mode_and_until_when(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    bedroom: str,
) -> None:
    """The Activity log: "Bedroom privacy mode changed to Muted until …"."""
    assert await async_setup_component(hass, "logbook", {})
    start = dt_util.utcnow()
    until = dt_util.as_local(start + timedelta(hours=8))

    await set_room_mode(
        hass, {ATTR_AREA_ID: bedroom}, mode="muted", duration={"hours": 8}
    )
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="normal")
    await async_wait_recording_done(hass)

    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=1)).isoformat(),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    entries = [e for e in response["result"] if e.get("domain") == DOMAIN]
    until_text = f"{until:%H:%M} on {until:%a} {until.day} {until:%b}"
    assert [(e["name"], e["message"]) for e in entries] == [
        ("Bedroom", f"privacy mode changed to Muted until {until_text}"),
        ("Bedroom", "privacy mode changed to Normal"),
    ]
    # Who did it: the action call.
    assert entries[0]["context_domain"] == DOMAIN
    assert entries[0]["context_service"] == SET_ROOM_MODE


async def test_blueprint_mutes_the_room_at_night_and_restores_it(
    hass: HomeAssistant,
    bedroom: str,
    mode_changes: list[Event[dict[str, Any]]],
    freezer: FrozenDateTimeFactory,
) -> None:
    """An automation from the blueprint: Muted from "night", Guest again after.

    The night is a short one starting in a minute: a long jump of the clock
    would also expire the timeouts of the real connections in flight.
    """
    await set_room_mode(hass, {ATTR_AREA_ID: bedroom}, mode="guest")
    night = dt_util.now().replace(second=0, microsecond=0) + timedelta(minutes=2)
    morning = night + timedelta(minutes=10)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "use_blueprint": {
                    "path": f"{DOMAIN}/{BLUEPRINT.name}",
                    # The mode is the default one, Muted.
                    "input": {
                        "room": bedroom,
                        "start": f"{night:%H:%M:%S}",
                        "end": f"{morning:%H:%M:%S}",
                    },
                }
            }
        },
    )
    await hass.async_block_till_done()
    blueprint = await async_get_blueprints(hass).async_get_blueprint(
        f"{DOMAIN}/{BLUEPRINT.name}"
    )
    assert set(blueprint.inputs) == {"room", "start", "end", "mode"}
    [automation] = hass.states.async_all("automation")
    assert automation.state == "on"

    await _at(hass, freezer, night)
    assert room_mode(hass, bedroom) is PrivacyMode.MUTED
    assert dt_util.parse_datetime(mode_changes[-1].data["until"]) == morning

    await _at(hass, freezer, morning)
    assert room_mode(hass, bedroom) is PrivacyMode.GUEST
    # Home Assistant's test harness leaves automations' time triggers behind.
    await hass.services.async_call(
        "automation", "turn_off", {ATTR_ENTITY_ID: automation.entity_id}, blocking=True
    )


async def _at(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime
) -> None:
    """Move the clock to ``when`` and run what was due."""
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done()


def test_action_strings_and_icons() -> None:
    """Every action and field is named and described; modes labelled; an icon.

    Selectors are checked as Home Assistant checks them.
    """
    assert set(SERVICES_YAML) == set(STRINGS["services"]) == set(ICONS["services"])
    for action, spec in SERVICES_YAML.items():
        selector.TargetSelector(spec.get("target"))
        for field in spec["fields"].values():
            selector.validate_selector(field["selector"])
        strings = STRINGS["services"][action]
        assert strings["name"]
        assert strings["description"]
        assert set(strings["fields"]) == set(spec["fields"])
        assert all(
            field["name"] and field["description"]
            for field in strings["fields"].values()
        )
    mode = SERVICES_YAML[SET_ROOM_MODE]["fields"]["mode"]["selector"]["select"]
    assert mode["options"] == [m.value for m in PrivacyMode]
    options = STRINGS["selector"][mode["translation_key"]]["options"]
    assert set(options) == set(mode["options"])
