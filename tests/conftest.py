"""Fixtures for Private Voice tests."""

# Imported first on purpose: pytest-homeassistant-custom-component mounts its own
# testing_config/custom_components, which would shadow ours otherwise.
import custom_components.private_voice  # noqa: F401, I001

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import socket
import subprocess
import sys

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.const import CONF_PORT, STATE_OFF
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, entity_registry as er
from homeassistant.setup import async_setup_component

from custom_components.private_voice import engine_host
from custom_components.private_voice.const import (
    CONF_ENGINE_MODE,
    CONF_LANGUAGE,
    CONF_URI,
    DOMAIN,
    EngineMode,
)
from custom_components.private_voice.engine_host.cli import READY
from custom_components.private_voice.protocol.client import Endpoint

from .engine_proxy import EngineProxy
from .protocol.simulator import Device, SimulatedSatellite

KITCHEN_LIGHT = "light.kitchen_light"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""


@pytest.fixture(autouse=True)
async def setup_core(hass: HomeAssistant) -> None:
    """Load the core integration, as a running Home Assistant always has."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
def free_port(socket_enabled: None) -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def busy_port(socket_enabled: None) -> Generator[int]:
    """Return a TCP port that another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
async def kitchen_light(
    hass: HomeAssistant,
    area_registry: ar.AreaRegistry,
    entity_registry: er.EntityRegistry,
) -> str:
    """Return a light, off, in the Kitchen (a template light: no device needed)."""
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "light": [
                        {
                            "name": "Kitchen light",
                            "unique_id": "kitchen_light",
                            "turn_on": [],
                            "turn_off": [],
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    kitchen = area_registry.async_create("Kitchen")
    entity_registry.async_update_entity(KITCHEN_LIGHT, area_id=kitchen.id)
    await hass.services.async_call(
        "light", "turn_off", {"entity_id": KITCHEN_LIGHT}, blocking=True
    )
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_OFF
    return KITCHEN_LIGHT


type StartSatellite = Callable[..., Awaitable[SimulatedSatellite]]


@pytest.fixture
async def start_satellite(socket_enabled: None) -> AsyncIterator[StartSatellite]:
    """Start simulated satellites: ``(mic_audio=b"", device=Device())``.

    With no audio nobody speaks to it; all are stopped after the test.
    """
    started: list[SimulatedSatellite] = []

    async def _start(
        mic_audio: bytes = b"", device: Device | None = None
    ) -> SimulatedSatellite:
        satellite = SimulatedSatellite(mic_audio, device)
        await satellite.start()
        started.append(satellite)
        return satellite

    yield _start
    for satellite in started:
        await satellite.stop()


@pytest.fixture
def mock_config_entry(
    free_port: int, engine_host_endpoint: Endpoint
) -> MockConfigEntry:
    """Return a Private Voice entry using the session's engine host, not yet added."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Private Voice",
        unique_id=DOMAIN,
        data={
            CONF_LANGUAGE: "en",
            CONF_PORT: free_port,
            CONF_ENGINE_MODE: EngineMode.REMOTE,
            CONF_URI: engine_host_endpoint.uri,
        },
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """Set up Private Voice and return its entry."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


@contextmanager
def run_engine_host(models_dir: Path, *args: str) -> Iterator[Endpoint]:
    """Run a real engine host process with tiny.en, joe and microWakeWord.

    Started as Home Assistant and the scripts start it (python -m engine_host),
    on a port it picks itself and reports in its ready line; ``args`` added.
    """
    process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments
        [
            sys.executable,
            "-m",
            "engine_host",
            "--uri",
            "tcp://127.0.0.1:0",
            "--models-dir",
            str(models_dir),
            "--stt-model",
            "tiny.en",
            *args,
        ],
        env={**os.environ, "PYTHONPATH": str(Path(engine_host.__file__).parent.parent)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(READY), f"engine host did not start: {line!r}"
    try:
        yield Endpoint.from_uri(line.removeprefix(READY))
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def engine_host_endpoint(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Endpoint]:
    """Run a real engine host process for the session (``run_engine_host``)."""
    with run_engine_host(tmp_path_factory.mktemp("models")) as endpoint:
        yield endpoint


@pytest.fixture
async def engine_proxy(
    socket_enabled: None, engine_host_endpoint: Endpoint
) -> AsyncIterator[EngineProxy]:
    """Count what reaches the session's engine host (point an entry at it)."""
    proxy = EngineProxy(engine_host_endpoint)
    await proxy.start()
    yield proxy
    await proxy.stop()
