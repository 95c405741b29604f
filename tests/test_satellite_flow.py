"""Adding and changing satellites: the subentry flow as the UI drives it, and zeroconf.

The subentry flow goes through Home Assistant's REST API, as the frontend
posts it; discoveries come in as zeroconf hands them to a flow. The satellites
are the project's simulator (a real Wyoming server on 127.0.0.1), the engines
the session's engine host.
"""

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from ipaddress import ip_address
from typing import Any

from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.config_entries import (
    SOURCE_ZEROCONF,
    ConfigFlowResult,
    ConfigSubentry,
)
from homeassistant.const import CONF_HOST, CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import area_registry as ar, device_registry as dr
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from wyoming.info import Describe
from wyoming.satellite import PauseSatellite, RunSatellite

from custom_components.private_voice.const import (
    CONF_AREA_ID,
    DOMAIN,
    SUBENTRY_SATELLITE,
)

from .conftest import StartSatellite
from .protocol.simulator import Device, SimulatedSatellite
from .test_assist_satellite import satellite_entity
from .waiting import until

FLOWS = "/api/config/config_entries/subentries/flow"
# What the simulator calls itself in its info.
SIMULATOR_NAME = "esp32-s3"

type Post = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@pytest.fixture
async def post(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> Post:
    """Post to the config API as the frontend does; return the JSON answer."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()

    async def _post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body)
        assert response.status == HTTPStatus.OK, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    return _post


@pytest.fixture
def kitchen(area_registry: ar.AreaRegistry) -> str:
    """Return the Kitchen's area id."""
    return area_registry.async_create("Kitchen").id


def _satellites(entry: MockConfigEntry) -> list[ConfigSubentry]:
    return [
        subentry
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_SATELLITE
    ]


async def _start_adding(post: Post, entry: MockConfigEntry) -> str:
    """Open the "Add satellite" form; return its flow id."""
    form = await post(FLOWS, {"handler": [entry.entry_id, SUBENTRY_SATELLITE]})
    assert form["type"] == FlowResultType.FORM
    assert form["step_id"] == "user"
    assert [field["name"] for field in form["data_schema"]] == [
        CONF_HOST,
        CONF_PORT,
        CONF_AREA_ID,
    ]
    return str(form["flow_id"])


async def _add(
    post: Post,
    entry: MockConfigEntry,
    satellite: SimulatedSatellite,
    area_id: str | None = None,
) -> ConfigSubentry:
    """Add ``satellite`` through the form; return its subentry."""
    flow_id = await _start_adding(post, entry)
    body: dict[str, Any] = {CONF_HOST: "127.0.0.1", CONF_PORT: satellite.port}
    if area_id is not None:
        body[CONF_AREA_ID] = area_id
    result = await post(f"{FLOWS}/{flow_id}", body)
    assert result["type"] == FlowResultType.CREATE_ENTRY, result
    [subentry] = [s for s in _satellites(entry) if s.data[CONF_PORT] == satellite.port]
    return subentry


async def _available(hass: HomeAssistant, subentry: ConfigSubentry) -> str:
    """Wait for the satellite's entity to be connected and idle; return its id."""
    entity = satellite_entity(hass, subentry.subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    assert hass.states.get(entity).state == AssistSatelliteState.IDLE
    return entity


def _device(
    hass: HomeAssistant, entry: MockConfigEntry, subentry: ConfigSubentry
) -> dr.DeviceEntry:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, subentry.subentry_id), entry.entry_id
    )
    assert device is not None
    return device


def _zeroconf(name: str, port: int) -> ZeroconfServiceInfo:
    """Build what zeroconf hands a flow for a satellite's `_wyoming._tcp` service."""
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"),
        ip_addresses=[ip_address("127.0.0.1")],
        hostname=f"{name}.local.",
        name=f"{name}._wyoming._tcp.local.",
        port=port,
        type="_wyoming._tcp.local.",
        properties={},
    )


async def _discover(
    hass: HomeAssistant, name: str, satellite: SimulatedSatellite
) -> ConfigFlowResult:
    """Announce ``satellite`` under the zeroconf instance name ``name``."""
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=_zeroconf(name, satellite.port),
    )


# Added by hand -----------------------------------------------------------------


async def test_add_satellite_in_its_room(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """The form adds the satellite, named as it names itself, in the chosen room."""
    satellite = await start_satellite(b"", Device())

    subentry = await _add(post, init_integration, satellite, kitchen)

    assert subentry.title == SIMULATOR_NAME
    assert subentry.unique_id == f"127.0.0.1:{satellite.port}"
    assert dict(subentry.data) == {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: satellite.port,
        CONF_AREA_ID: kitchen,
    }
    await _available(hass, subentry)
    assert _device(hass, init_integration, subentry).area_id == kitchen
    assert RunSatellite().event().type in satellite.recording.types()


async def test_add_satellite_errors_until_it_answers(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    unused_tcp_port: int,
    start_satellite: StartSatellite,
) -> None:
    """Nothing there, then something that is not a satellite; then the satellite."""
    other_service = await start_satellite(b"", Device(is_satellite=False))
    satellite = await start_satellite(b"", Device())
    flow_id = await _start_adding(post, init_integration)

    result = await post(
        f"{FLOWS}/{flow_id}", {CONF_HOST: "127.0.0.1", CONF_PORT: unused_tcp_port}
    )
    assert result["type"] == FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    result = await post(
        f"{FLOWS}/{flow_id}", {CONF_HOST: "127.0.0.1", CONF_PORT: other_service.port}
    )
    assert result["type"] == FlowResultType.FORM
    assert result["errors"] == {"base": "not_a_satellite"}
    # It was asked what it is, and nothing more.
    assert other_service.recording.types() == [Describe().event().type]

    result = await post(
        f"{FLOWS}/{flow_id}", {CONF_HOST: " 127.0.0.1 ", CONF_PORT: satellite.port}
    )
    assert result["type"] == FlowResultType.CREATE_ENTRY
    [subentry] = _satellites(init_integration)
    assert subentry.data[CONF_HOST] == "127.0.0.1"
    await _available(hass, subentry)


async def test_add_known_satellite_aborts_without_connecting(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    start_satellite: StartSatellite,
) -> None:
    """The same address again: aborted before the satellite is disturbed."""
    satellite = await start_satellite(b"", Device())
    subentry = await _add(post, init_integration, satellite)
    await _available(hass, subentry)
    connections = satellite.recording.connections

    flow_id = await _start_adding(post, init_integration)
    result = await post(
        f"{FLOWS}/{flow_id}", {CONF_HOST: "127.0.0.1", CONF_PORT: satellite.port}
    )

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(_satellites(init_integration)) == 1
    # A satellite serves one client at a time: asking it would drop the hub.
    assert satellite.recording.connections == connections


# Reconfigured ------------------------------------------------------------------


async def _reconfigure(
    post: Post, entry: MockConfigEntry, subentry: ConfigSubentry, body: dict[str, Any]
) -> dict[str, Any]:
    """Open the satellite's reconfigure form, check it is filled in, submit ``body``."""
    form = await post(
        FLOWS,
        {
            "handler": [entry.entry_id, SUBENTRY_SATELLITE],
            "subentry_id": subentry.subentry_id,
        },
    )
    assert form["type"] == FlowResultType.FORM
    assert form["step_id"] == "reconfigure"
    suggested = {
        field["name"]: field["description"]["suggested_value"]
        for field in form["data_schema"]
        if "description" in field
    }
    assert suggested == dict(subentry.data)
    return await post(f"{FLOWS}/{form['flow_id']}", body)


async def test_reconfigure_room_moves_the_device_only(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """Same address, another room: the device moves; the satellite is not disturbed."""
    living_room = ar.async_get(hass).async_create("Living room").id
    satellite = await start_satellite(b"", Device())
    subentry = await _add(post, init_integration, satellite, kitchen)
    entity = await _available(hass, subentry)
    connections = satellite.recording.connections
    events = len(satellite.recording.events)

    result = await _reconfigure(
        post,
        init_integration,
        subentry,
        {CONF_HOST: "127.0.0.1", CONF_PORT: satellite.port, CONF_AREA_ID: living_room},
    )
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert subentry.data[CONF_AREA_ID] == living_room
    assert _device(hass, init_integration, subentry).area_id == living_room
    assert satellite.recording.connections == connections
    assert len(satellite.recording.events) == events
    assert hass.states.get(entity).state == AssistSatelliteState.IDLE


async def test_reconfigure_address_reconnects_there(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    start_satellite: StartSatellite,
) -> None:
    """A new port: the entity leaves the old satellite and serves the new one."""
    old = await start_satellite(b"", Device())
    subentry = await _add(post, init_integration, old)
    entity = await _available(hass, subentry)
    new = await start_satellite(b"", Device())

    result = await _reconfigure(
        post, init_integration, subentry, {CONF_HOST: "127.0.0.1", CONF_PORT: new.port}
    )

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert subentry.data[CONF_PORT] == new.port
    # Known by its address: the old one is free for another satellite.
    assert subentry.unique_id == f"127.0.0.1:{new.port}"
    await until(lambda: RunSatellite().event().type in new.recording.types())
    await until(lambda: hass.states.get(entity).state == AssistSatelliteState.IDLE)
    assert old.recording.types()[-1] == PauseSatellite().event().type
    assert init_integration.runtime_data.satellites[
        subentry.subentry_id
    ].endpoint.port == (new.port)


async def test_reconfigure_to_another_satellites_address_aborts(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    start_satellite: StartSatellite,
) -> None:
    """One satellite cannot take over another one's address."""
    first = await start_satellite(b"", Device())
    second = await start_satellite(b"", Device())
    subentry = await _add(post, init_integration, first)
    await _add(post, init_integration, second)

    result = await _reconfigure(
        post,
        init_integration,
        subentry,
        {CONF_HOST: "127.0.0.1", CONF_PORT: second.port},
    )

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert subentry.data[CONF_PORT] == first.port


# Discovered --------------------------------------------------------------------


async def test_zeroconf_satellite_is_added_in_its_room(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """A discovered satellite is offered with a room to choose, then added."""
    satellite = await start_satellite(b"", Device())

    result = await _discover(hass, "kitchen-satellite", satellite)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_satellite"
    assert result["description_placeholders"] == {
        "name": SIMULATOR_NAME,
        "host": satellite.endpoint.uri,
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AREA_ID: kitchen}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "satellite_added"
    assert result["description_placeholders"] == {"name": SIMULATOR_NAME}
    [subentry] = _satellites(init_integration)
    # The instance name: it stays when the satellite gets another address.
    assert subentry.unique_id == "kitchen-satellite"
    assert subentry.title == SIMULATOR_NAME
    assert dict(subentry.data) == {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: satellite.port,
        CONF_AREA_ID: kitchen,
    }
    await _available(hass, subentry)
    assert _device(hass, init_integration, subentry).area_id == kitchen
    # Nothing of ours is left in progress: the entry is not a new one.
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_zeroconf_known_satellite_is_not_disturbed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    post: Post,
    start_satellite: StartSatellite,
) -> None:
    """Announced again where it is: aborted, and the satellite is not asked."""
    satellite = await start_satellite(b"", Device())
    subentry = await _add(post, init_integration, satellite)
    await _available(hass, subentry)
    connections = satellite.recording.connections

    result = await _discover(hass, "kitchen-satellite", satellite)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert satellite.recording.connections == connections
    assert len(_satellites(init_integration)) == 1


async def test_zeroconf_known_satellite_at_new_port_is_followed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """The same name at another port: followed without asking it; the room kept."""
    before = await start_satellite(b"", Device())
    result = await _discover(hass, "kitchen-satellite", before)
    await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AREA_ID: kitchen}
    )
    [subentry] = _satellites(init_integration)
    entity = await _available(hass, subentry)
    # The user moves the device on its page: that choice outlives the move.
    hall = ar.async_get(hass).async_create("Hall").id
    device = _device(hass, init_integration, subentry)
    dr.async_get(hass).async_update_device(device.id, area_id=hall)
    await before.stop()
    await until(lambda: hass.states.get(entity).state == STATE_UNAVAILABLE)
    after = await start_satellite(b"", Device())

    result = await _discover(hass, "kitchen-satellite", after)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert subentry.data[CONF_PORT] == after.port
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    # One connection: the satellite link's. The flow did not describe it.
    assert after.recording.connections == 1
    assert after.recording.types()[:2] == [
        Describe().event().type,
        RunSatellite().event().type,
    ]
    assert _device(hass, init_integration, subentry).area_id == hall


async def test_zeroconf_satellite_needs_private_voice_first(
    hass: HomeAssistant, start_satellite: StartSatellite
) -> None:
    """Before Private Voice is set up, a satellite cannot be added."""
    satellite = await start_satellite(b"", Device())

    result = await _discover(hass, "kitchen-satellite", satellite)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "satellite_needs_setup"
    assert hass.config_entries.async_entries(DOMAIN) == []
