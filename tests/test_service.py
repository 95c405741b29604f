"""The public Wyoming service the entry runs, with HA's own wyoming as a peer."""

import socket
from types import MappingProxyType

from homeassistant.components import stt, tts
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.private_voice.const import (
    CONF_ALLOWED_ADDRESSES,
    CONF_BIND_ADDRESS,
    CONF_GUARD_AGENT,
    CONF_SENSITIVE_ACTIONS,
    DEFAULT_BIND_ADDRESS,
    DEFAULT_GUARD_AGENT,
    DOMAIN,
    SUBENTRY_SATELLITE,
)
from custom_components.private_voice.privacy.sensitive import SensitiveAction
from custom_components.private_voice.protocol.client import Endpoint, async_describe
from custom_components.private_voice.rooms import RoomManager
from custom_components.private_voice.service_policy import AddressPolicy

from .engines import COMMAND, async_chunks, silence, speech
from .test_stt import metadata

# A satellite's address that is never connected to (TEST-NET-1).
SATELLITE_HOST = "192.0.2.30"
# Loopback, but not where clients reach the service.
OTHER_LOOPBACK = "127.0.0.2"


def _normalise(text: str | None) -> str:
    return "".join(c for c in (text or "").lower() if c.isalnum() or c == " ").strip()


async def test_home_assistants_wyoming_integration_uses_the_service(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """HA core's wyoming, pointed at our port, finds asr/tts/wake and transcribes."""
    port = init_integration.data[CONF_PORT]
    result = await hass.config_entries.flow.async_init(
        "wyoming",
        context={"source": "user"},
        data={CONF_HOST: "127.0.0.1", CONF_PORT: port},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    wyoming = result["result"]
    await hass.async_block_till_done()
    assert wyoming.state is ConfigEntryState.LOADED
    platforms = {
        entry.domain
        for entry in er.async_entries_for_config_entry(
            entity_registry, wyoming.entry_id
        )
    }
    assert platforms == {"stt", "tts", "wake_word"}

    stt_id = next(
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            entity_registry, wyoming.entry_id
        )
        if entry.domain == "stt"
    )
    provider = stt.async_get_speech_to_text_entity(hass, stt_id)
    assert provider is not None
    result = await provider.async_process_audio_stream(
        metadata(), async_chunks(silence(0.3) + speech(COMMAND) + silence(0.5))
    )
    assert result.result is stt.SpeechResultState.SUCCESS
    assert _normalise(result.text) == _normalise(COMMAND)

    tts_id = next(
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            entity_registry, wyoming.entry_id
        )
        if entry.domain == "tts"
    )
    entity = hass.data[tts.DATA_COMPONENT].get_entity(tts_id)
    assert entity is not None
    extension, audio = await entity.async_get_tts_audio("Hello there.", "en_US", {})
    assert extension == "wav"
    assert audio is not None
    assert len(audio) > 22050  # about a second of speech at 22.05 kHz


async def test_unload_frees_the_port(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Unloading stops the service: its port can be bound again."""
    port = init_integration.data[CONF_PORT]
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", port))  # noqa: S104 - where the service listened


async def test_port_in_use_retries_setup(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Another program on the service port: setup is retried, with the reason."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", mock_config_entry.data[CONF_PORT]))  # noqa: S104
        sock.listen()
        mock_config_entry.add_to_hass(hass)
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
        assert mock_config_entry.error_reason_translation_key == "service_port_busy"


async def test_policy_admits_loopback_listed_addresses_and_satellites(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """Loopback, listed and satellites' addresses are admitted; others get an issue."""
    satellites = {"192.0.2.30": "assist_satellite.hall"}
    rooms = RoomManager(hass, MockConfigEntry(domain=DOMAIN))
    policy = AddressPolicy(hass, ["192.0.2.10"], lambda: satellites, rooms)
    assert policy.client_allowed("127.0.0.1")
    assert policy.client_allowed("::1")
    assert policy.client_allowed("192.0.2.10")
    assert policy.client_allowed("192.0.2.30")
    assert not policy.client_allowed("192.0.2.99")
    # The satellites are asked each time: one added later is admitted at once.
    satellites["192.0.2.99"] = "assist_satellite.porch"
    assert policy.client_allowed("192.0.2.99")

    policy.client_refused("192.0.2.98")
    issue = issue_registry.async_get_issue(DOMAIN, "client_refused_192.0.2.98")
    assert issue is not None
    assert issue.translation_key == "client_refused"
    assert issue.translation_placeholders == {"address": "192.0.2.98"}


async def test_service_admits_the_satellites_hosts(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The entry's service admits its satellites' hosts, and only while they exist.

    The satellite's entity is disabled, so nothing ever connects to its
    address (TEST-NET-1): only the service's decision is looked at.
    """
    mock_config_entry.add_to_hass(hass)
    satellite = ConfigSubentry(
        data=MappingProxyType({CONF_HOST: SATELLITE_HOST, CONF_PORT: 10700}),
        subentry_type=SUBENTRY_SATELLITE,
        title="Hall satellite",
        unique_id=f"{SATELLITE_HOST}:10700",
    )
    hass.config_entries.async_add_subentry(mock_config_entry, satellite)
    entity_registry.async_get_or_create(
        "assist_satellite",
        DOMAIN,
        f"{satellite.subentry_id}-assist_satellite",
        config_entry=mock_config_entry,
        config_subentry_id=satellite.subentry_id,
        disabled_by=er.RegistryEntryDisabler.USER,
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.runtime_data.satellites == {}
    policy = mock_config_entry.runtime_data.service.policy

    assert policy.client_allowed(SATELLITE_HOST)
    assert not policy.client_allowed("192.0.2.99")

    assert hass.config_entries.async_remove_subentry(
        mock_config_entry, satellite.subentry_id
    )
    assert not policy.client_allowed(SATELLITE_HOST)


async def test_options_list_allowed_addresses(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The options flow takes IP addresses only, then reloads the entry."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_ALLOWED_ADDRESSES: ["kitchen-pc"]}
    )
    assert result["errors"] == {CONF_ALLOWED_ADDRESSES: "invalid_address"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_ALLOWED_ADDRESSES: [" 192.0.2.20 ", "192.0.2.10", "", "192.0.2.20"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.options == {
        CONF_BIND_ADDRESS: DEFAULT_BIND_ADDRESS,
        CONF_ALLOWED_ADDRESSES: ["192.0.2.10", "192.0.2.20"],
        CONF_GUARD_AGENT: DEFAULT_GUARD_AGENT,
        CONF_SENSITIVE_ACTIONS: sorted(SensitiveAction),
    }
    assert init_integration.state is ConfigEntryState.LOADED


async def test_options_bind_address(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An IP address only; after the reload the service listens there alone."""
    port = init_integration.data[CONF_PORT]
    # On every address: the port is taken on any loopback address.
    with socket.socket() as sock, pytest.raises(OSError, match="already in use"):
        sock.bind((OTHER_LOOPBACK, port))

    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_BIND_ADDRESS: "home-assistant.local"}
    )
    assert result["errors"] == {CONF_BIND_ADDRESS: "invalid_address"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_BIND_ADDRESS: " 127.0.0.1 "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert init_integration.options == {
        CONF_BIND_ADDRESS: "127.0.0.1",
        CONF_ALLOWED_ADDRESSES: [],
        CONF_GUARD_AGENT: DEFAULT_GUARD_AGENT,
        CONF_SENSITIVE_ACTIONS: sorted(SensitiveAction),
    }
    assert init_integration.state is ConfigEntryState.LOADED
    # Another address's port is free now; 127.0.0.1's still serves.
    with socket.socket() as sock:
        sock.bind((OTHER_LOOPBACK, port))
    info = await async_describe(Endpoint("127.0.0.1", port))
    assert info.asr
    assert info.tts
