"""Private Voice: a voice assistant that never leaves the house."""

from homeassistant.config_entries import SIGNAL_CONFIG_ENTRY_CHANGED
from homeassistant.const import CONF_PORT, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_ALLOWED_ADDRESSES,
    CONF_BIND_ADDRESS,
    CONF_ENGINE_MODE,
    CONF_ENGINE_PORT,
    CONF_LANGUAGE,
    CONF_STT_URI,
    CONF_TTS_URI,
    CONF_URI,
    CONF_WAKE_URI,
    DEFAULT_BIND_ADDRESS,
    DEFAULT_ENGINE_PORT,
    DOMAIN,
    EngineMode,
)
from .coordinator import (
    EngineCoordinator,
    EngineEndpoints,
    PrivateVoiceConfigEntry,
    PrivateVoiceData,
)
from .local_engines import (
    LocalEnginesUnavailable,
    async_ensure_engine_packages,
    create_engine_host,
)
from .pipeline import async_ensure_pipeline, async_remove_pipeline_record
from .protocol.client import Endpoint
from .protocol.service import WyomingService
from .rooms import RoomManager, async_remove_room_settings
from .satellites import SatelliteTracker, satellite_entities_by_address
from .service_policy import AddressPolicy
from .services import async_setup_services
from .supervisor import EngineHostError, EngineHostProcess
from .voice_id import VoiceId, async_remove_voice_prints

PLATFORMS = [
    Platform.ASSIST_SATELLITE,
    Platform.BINARY_SENSOR,
    Platform.CONVERSATION,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.STT,
    Platform.SWITCH,
    Platform.TTS,
    Platform.WAKE_WORD,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which work on whichever entries are loaded."""
    async_setup_services(hass)
    return True


def _remote_endpoints(entry: PrivateVoiceConfigEntry) -> EngineEndpoints:
    """Where the engines are when Home Assistant does not run them."""
    data = entry.data
    if data[CONF_ENGINE_MODE] == EngineMode.REMOTE:
        return EngineEndpoints.single(Endpoint.from_uri(data[CONF_URI]))
    return EngineEndpoints(
        stt=Endpoint.from_uri(uri) if (uri := data.get(CONF_STT_URI)) else None,
        tts=Endpoint.from_uri(uri) if (uri := data.get(CONF_TTS_URI)) else None,
        wake=Endpoint.from_uri(uri) if (uri := data.get(CONF_WAKE_URI)) else None,
    )


async def _async_start_engine_host(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> tuple[EngineCoordinator, EngineHostProcess]:
    """Run the engine host as a child process on loopback; watch it."""
    try:
        await async_ensure_engine_packages(hass)
    except LocalEnginesUnavailable as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="local_engines_unavailable",
            translation_placeholders={"reason": str(err)},
        ) from err
    endpoint = Endpoint(
        "127.0.0.1", entry.data.get(CONF_ENGINE_PORT, DEFAULT_ENGINE_PORT)
    )
    coordinator = EngineCoordinator(hass, entry, EngineEndpoints.single(endpoint))

    @callback
    def _exited() -> None:
        coordinator.async_set_update_error(
            EngineHostError("the engine host process exited; restarting it")
        )

    @callback
    def _ready() -> None:
        entry.async_create_task(hass, coordinator.async_request_refresh())

    process = create_engine_host(
        hass, entry, endpoint, on_ready=_ready, on_exit=_exited
    )
    try:
        await process.async_start()
    except EngineHostError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="engine_host_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    entry.async_on_unload(process.async_stop)
    return coordinator, process


async def async_setup_entry(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> bool:
    """Set up Private Voice from a config entry."""
    if CONF_ENGINE_MODE not in entry.data:
        # Made by 0.1.0, before the engines could be chosen: Reconfigure asks.
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="engines_not_chosen"
        )
    process: EngineHostProcess | None = None
    if entry.data[CONF_ENGINE_MODE] == EngineMode.LOCAL:
        coordinator, process = await _async_start_engine_host(hass, entry)
    else:
        coordinator = EngineCoordinator(hass, entry, _remote_endpoints(entry))

    await coordinator.async_config_entry_first_refresh()

    rooms = RoomManager(hass, entry)
    await rooms.async_start()
    entry.async_on_unload(rooms.async_stop)

    service = WyomingService(
        coordinator.endpoints,
        AddressPolicy(
            hass,
            entry.options.get(CONF_ALLOWED_ADDRESSES, []),
            lambda: satellite_entities_by_address(hass, entry),
            rooms,
        ),
        host=entry.options.get(CONF_BIND_ADDRESS, DEFAULT_BIND_ADDRESS),
        port=entry.data[CONF_PORT],
    )
    try:
        await service.async_start()
    except OSError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="service_port_busy",
            translation_placeholders={
                "port": str(entry.data[CONF_PORT]),
                "error": str(err),
            },
        ) from err
    entry.async_on_unload(service.async_stop)
    voice_id = VoiceId(hass, entry)
    await voice_id.async_start()
    entry.runtime_data = PrivateVoiceData(
        language=entry.data[CONF_LANGUAGE],
        port=entry.data[CONF_PORT],
        coordinator=coordinator,
        service=service,
        process=process,
        rooms=rooms,
        voice_id=voice_id,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # A pipeline through the guard, once the entities it names exist.
    await async_ensure_pipeline(hass, entry)
    # Satellites are added, reconfigured and removed without a reload.
    entry.async_on_unload(
        async_dispatcher_connect(
            hass,
            SIGNAL_CONFIG_ENTRY_CHANGED,
            SatelliteTracker(hass, entry).async_entry_changed,
        )
    )
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> bool:
    """Unload a config entry; the engine host process stops with it.

    The satellites are paused and disconnected first: an always-streaming one
    would otherwise start a run while its settings' entities are being removed.
    """
    for link in list(entry.runtime_data.satellites.values()):
        await link.async_stop()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> None:
    """Delete the entry's voice prints and room settings with it."""
    await async_remove_voice_prints(hass, entry)
    await async_remove_room_settings(hass, entry)
    # The pipeline itself is the user's now: only our record of it goes.
    await async_remove_pipeline_record(hass, entry)
