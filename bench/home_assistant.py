"""A real Home Assistant in this process, set up as a voice home is.

Core (``homeassistant.core.HomeAssistant`` on this event loop) with a fresh
configuration folder, the registries on disk, ``http`` on a free loopback
port, and the integrations an Assist satellite needs: ``assist_pipeline``,
``conversation`` (HA's own agent), ``intent``, ``light`` with a template light
"Kitchen lights" in the area "Kitchen", ``wyoming``, and custom integrations
(Private Voice) from the checkout's custom_components/. No default_config, no
frontend: nothing runs here that the benchmark does not measure.
"""

import asyncio
import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

from homeassistant import bootstrap, loader
from homeassistant.components import assist_pipeline
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntries,
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.setup import async_setup_component

from .servers import HOST, BenchError, free_port

KITCHEN = "Kitchen"
LIGHT_NAME = "Kitchen lights"
LIGHT_UNIQUE_ID = "bench_kitchen_lights"
INTEGRATIONS = ("assist_pipeline", "conversation", "intent", "light", "wyoming")
SETUP_TIMEOUT = 120.0
# What --debug logs in full: the path of a voice command.
DEBUG_LOGGERS = (
    "homeassistant.components.assist_pipeline",
    "homeassistant.components.assist_satellite",
    "homeassistant.components.wyoming",
    "custom_components.private_voice",
)


class Home:
    """Home Assistant with a kitchen light, and the helpers the bench needs."""

    def __init__(self, hass: HomeAssistant, kitchen_area_id: str, light: str) -> None:
        """Wrap a started ``hass``; use ``Home.start``."""
        self.hass = hass
        self.kitchen_area_id = kitchen_area_id
        self.light = light

    @classmethod
    async def start(cls, config_dir: Path, log: Path, *, debug: bool = False) -> Self:
        """Start Home Assistant in ``config_dir`` (empty), logging to ``log``."""
        _log_to(log, debug=debug)
        hass = HomeAssistant(str(config_dir))
        loader.async_setup(hass)
        # Every requirement is installed already; never pip.
        hass.config.skip_pip = True
        config: dict[str, Any] = {
            "homeassistant": {
                "name": "Bench",
                "latitude": 52.37,
                "longitude": 4.89,
                "elevation": 0,
                "unit_system": "metric",
                "time_zone": "UTC",
                "country": "US",
                "language": "en",
            },
            "http": {"server_host": [HOST], "server_port": free_port()},
            "template": [
                {
                    "light": [
                        {
                            "name": LIGHT_NAME,
                            "unique_id": LIGHT_UNIQUE_ID,
                            # Optimistic: the state follows the commands.
                            "turn_on": [],
                            "turn_off": [],
                        }
                    ]
                }
            ],
        }
        hass.config_entries = ConfigEntries(hass, config)
        await loader.async_get_custom_components(hass)
        if not await bootstrap.async_load_base_functionality(hass):
            msg = "Home Assistant could not load its registries"
            raise BenchError(msg)
        await async_process_ha_core_config(hass, config["homeassistant"])
        for domain in ("homeassistant", "http", *INTEGRATIONS, "template"):
            if not await async_setup_component(hass, domain, config):
                msg = f"Home Assistant could not set up {domain} (see {log})"
                raise BenchError(msg)
        await hass.async_start()
        await hass.async_block_till_done()

        entities = er.async_get(hass)
        light = entities.async_get_entity_id("light", "template", LIGHT_UNIQUE_ID)
        if light is None:
            msg = f"the template light did not appear (see {log})"
            raise BenchError(msg)
        kitchen = ar.async_get(hass).async_create(KITCHEN)
        entities.async_update_entity(light, area_id=kitchen.id)
        return cls(hass, kitchen.id, light)

    async def stop(self) -> None:
        """Stop Home Assistant: entries unload, satellites are let go."""
        await self.hass.async_stop()

    # Entries -----------------------------------------------------------------

    async def add_wyoming(self, port: int) -> ConfigEntry:
        """Add HA's ``wyoming`` integration for a service, as the UI does."""
        result = await self.hass.config_entries.flow.async_init(
            "wyoming",
            context={"source": SOURCE_USER},
            data={"host": HOST, "port": port},
        )
        if result.get("type") != "create_entry":
            msg = f"wyoming could not add {HOST}:{port}: {result}"
            raise BenchError(msg)
        entry: ConfigEntry = result["result"]
        await self.hass.async_block_till_done()
        await self.wait_loaded(entry)
        return entry

    async def add_entry(
        self,
        domain: str,
        data: dict[str, Any],
        subentries: list[ConfigSubentryData] | None = None,
    ) -> ConfigEntry:
        """Add and set up an entry with ``subentries``, as a finished flow does."""
        entry = ConfigEntry(
            data=data,
            discovery_keys=MappingProxyType({}),
            domain=domain,
            minor_version=1,
            options={},
            source=SOURCE_USER,
            subentries_data=subentries,
            title=domain,
            unique_id=domain,
            version=1,
        )
        await self.hass.config_entries.async_add(entry)
        await self.hass.async_block_till_done()
        await self.wait_loaded(entry)
        return entry

    async def wait_loaded(self, entry: ConfigEntry) -> None:
        """Wait until ``entry`` is loaded; BenchError if it fails or takes long."""
        failed = {ConfigEntryState.SETUP_ERROR, ConfigEntryState.MIGRATION_ERROR}
        try:
            async with asyncio.timeout(SETUP_TIMEOUT):
                while entry.state is not ConfigEntryState.LOADED:
                    if entry.state in failed:
                        break
                    await asyncio.sleep(0.1)
        except TimeoutError:
            pass
        if entry.state is not ConfigEntryState.LOADED:
            msg = f"{entry.domain} entry {entry.title!r}: {entry.state.value}"
            raise BenchError(f"{msg} {entry.reason or ''}".strip())

    # Entities ----------------------------------------------------------------

    def entity_id(self, domain: str, platform: str, unique_id: str) -> str:
        """Return the entity id registered for ``unique_id``; BenchError if none."""
        found = er.async_get(self.hass).async_get_entity_id(domain, platform, unique_id)
        if found is None:
            msg = f"no {domain} entity {unique_id!r} of {platform}"
            raise BenchError(msg)
        return found

    def entities_of(self, entry: ConfigEntry, domain: str) -> list[str]:
        """Return the entry's ``domain`` entities."""
        return [
            entity.entity_id
            for entity in er.async_entries_for_config_entry(
                er.async_get(self.hass), entry.entry_id
            )
            if entity.domain == domain
        ]

    def put_in_kitchen(self, entry: ConfigEntry) -> None:
        """Put the entry's devices in the kitchen, as a user places a satellite."""
        devices = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
            devices.async_update_device(device.id, area_id=self.kitchen_area_id)

    async def select(self, entity_id: str, option: str) -> None:
        """Choose ``option`` in a select entity."""
        await self.hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": entity_id, "option": option},
            blocking=True,
        )

    async def create_pipeline(
        self, name: str, stt: str, tts: str, voice: str, wake: str | None = None
    ) -> str:
        """Create an Assist pipeline on HA's own agent; return its id."""
        pipeline = await assist_pipeline.async_create_default_pipeline(
            self.hass, stt_engine_id=stt, tts_engine_id=tts, pipeline_name=name
        )
        if pipeline is None:
            msg = f"no pipeline on {stt} and {tts}: do they speak English?"
            raise BenchError(msg)
        await assist_pipeline.async_update_pipeline(
            self.hass,
            pipeline,
            tts_voice=voice,
            wake_word_entity=wake,
            wake_word_id="okay_nabu" if wake else None,
        )
        return pipeline.id

    # The light ---------------------------------------------------------------

    async def light_off(self) -> None:
        """Turn the kitchen light off, so a run shows whether it turns it on."""
        await self.hass.services.async_call(
            "light", "turn_off", {"entity_id": self.light}, blocking=True
        )

    def light_is_on(self) -> bool:
        """Whether the kitchen light is on."""
        state = self.hass.states.get(self.light)
        return state is not None and state.state == STATE_ON


def _log_to(path: Path, *, debug: bool) -> None:
    """Send Home Assistant's log to ``path``: warnings, or the voice path's debug."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s (%(name)s) %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    if debug:
        for name in DEBUG_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)
