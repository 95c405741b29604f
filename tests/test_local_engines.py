"""Engines on this Home Assistant: packages on demand, the engine host as a child."""

import asyncio
from collections.abc import Callable
import os
from pathlib import Path
import signal

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_PORT,
    EVENT_HOMEASSISTANT_STOP,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.private_voice import local_engines
from custom_components.private_voice.const import (
    CONF_ENGINE_MODE,
    CONF_ENGINE_PORT,
    CONF_LANGUAGE,
    CONF_STT_MODEL,
    CONF_VOICE,
    DOMAIN,
    EngineMode,
)
from custom_components.private_voice.coordinator import EngineCoordinator
from custom_components.private_voice.local_engines import (
    LocalEnginesUnavailable,
    async_ensure_engine_packages,
    unsupported_reason,
)
from custom_components.private_voice.protocol.client import (
    Endpoint,
    PeerError,
    async_ping,
)

# A requirement that cannot install, with no network needed to find that out.
UNINSTALLABLE = "private-voice-absent @ file:///nonexistent/private-voice-absent"
# Generous: a guard against a hang, not a measurement.
GUARD = 120


@pytest.fixture
def local_entry(
    hass: HomeAssistant, tmp_path: Path, free_port: int, unused_tcp_port: int
) -> MockConfigEntry:
    """Return an entry that runs the engines on this Home Assistant, not yet added."""
    # The models folder, below the configuration folder, is this test's own.
    hass.config.config_dir = str(tmp_path)
    return MockConfigEntry(
        domain=DOMAIN,
        title="Private Voice",
        unique_id=DOMAIN,
        data={
            CONF_LANGUAGE: "en",
            CONF_PORT: unused_tcp_port,
            CONF_ENGINE_MODE: EngineMode.LOCAL,
            CONF_ENGINE_PORT: free_port,
            CONF_STT_MODEL: "tiny.en",
            CONF_VOICE: "en_US-joe-medium",
        },
    )


@pytest.fixture
def uninstallable_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the engine packages one that cannot install, and keep uv offline."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# cannot install\n{UNINSTALLABLE}\n", encoding="utf-8")
    monkeypatch.setattr(local_engines, "REQUIREMENTS_FILE", requirements)
    monkeypatch.setenv("UV_OFFLINE", "1")


async def _until(coordinator: EngineCoordinator, condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds after a coordinator update."""
    changed = asyncio.Event()
    remove = coordinator.async_add_listener(changed.set)
    try:
        async with asyncio.timeout(GUARD):
            while not condition():
                changed.clear()
                await changed.wait()
    finally:
        remove()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_engine_host_runs_with_the_entry(
    hass: HomeAssistant, local_entry: MockConfigEntry, free_port: int
) -> None:
    """Setup starts the engine host; unload leaves no process or socket behind."""
    local_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(local_entry.entry_id)
    await hass.async_block_till_done()
    assert local_entry.state is ConfigEntryState.LOADED

    process = local_entry.runtime_data.process
    assert process is not None
    assert process.running
    pid = process.pid
    assert pid is not None
    engines = local_entry.runtime_data.coordinator.data
    assert engines.stt is not None
    assert [model.name for model in engines.stt.models] == ["tiny.en"]
    assert engines.tts is not None
    assert [voice.name for voice in engines.tts.voices] == ["en_US-joe-medium"]

    assert await hass.config_entries.async_unload(local_entry.entry_id)
    await hass.async_block_till_done()
    assert local_entry.state is ConfigEntryState.NOT_LOADED
    assert not process.running
    assert not _alive(pid)
    with pytest.raises(PeerError):
        await async_ping(Endpoint("127.0.0.1", free_port))


async def test_engine_host_stops_with_home_assistant(
    hass: HomeAssistant, local_entry: MockConfigEntry
) -> None:
    """Home Assistant stopping (entries stay loaded) stops the child too."""
    local_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(local_entry.entry_id)
    await hass.async_block_till_done()
    process = local_entry.runtime_data.process
    assert process is not None
    pid = process.pid
    assert pid is not None

    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()

    assert local_entry.state is ConfigEntryState.LOADED
    assert not process.running
    assert not _alive(pid)
    assert await hass.config_entries.async_unload(local_entry.entry_id)
    await hass.async_block_till_done()


async def test_killed_engine_host_is_unavailable_then_back(
    hass: HomeAssistant,
    local_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A dead engine host fails the engines (entities unavailable) until it is back."""
    local_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(local_entry.entry_id)
    await hass.async_block_till_done()
    data = local_entry.runtime_data
    assert data.process is not None
    pid = data.process.pid
    assert pid is not None
    # The engines' entities; the guard works on text and needs no engine.
    entity_ids = [
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            entity_registry, local_entry.entry_id
        )
        if entry.domain != "conversation"
    ]
    assert entity_ids

    def states() -> set[str]:
        return {
            state.state
            for entity_id in entity_ids
            if (state := hass.states.get(entity_id))
        }

    assert STATE_UNAVAILABLE not in states()

    os.kill(pid, signal.SIGKILL)
    await _until(data.coordinator, lambda: not data.coordinator.last_update_success)
    assert states() == {STATE_UNAVAILABLE}

    await _until(data.coordinator, lambda: data.coordinator.last_update_success)
    assert STATE_UNAVAILABLE not in states()
    assert data.process.restarts == 1
    assert data.process.pid not in (None, pid)

    assert await hass.config_entries.async_unload(local_entry.entry_id)
    await hass.async_block_till_done()


async def test_failing_install_fails_the_entry(
    hass: HomeAssistant,
    local_entry: MockConfigEntry,
    uninstallable_requirements: None,
    free_port: int,
) -> None:
    """Packages that cannot install: the entry fails, says why, runs no process."""
    hass.config.skip_pip = False
    local_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(local_entry.entry_id)
    await hass.async_block_till_done()

    assert local_entry.state is ConfigEntryState.SETUP_ERROR
    assert local_entry.error_reason_translation_key == "local_engines_unavailable"
    assert local_entry.error_reason_translation_placeholders == {
        "reason": "these packages could not be installed (the log says why): "
        + UNINSTALLABLE
    }
    with pytest.raises(PeerError):
        await async_ping(Endpoint("127.0.0.1", free_port))


async def test_missing_packages_are_not_installed_with_skip_pip(
    hass: HomeAssistant, uninstallable_requirements: None
) -> None:
    """Home Assistant told to install nothing: the engines are unavailable."""
    assert hass.config.skip_pip
    with pytest.raises(LocalEnginesUnavailable, match="--skip-pip"):
        await async_ensure_engine_packages(hass)


async def test_installed_packages_need_no_install(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """Every engine package is here already: nothing to install, nothing raised.

    With skip_pip (as in every test) a missing package would raise instead.
    """
    assert hass.config.skip_pip
    await async_ensure_engine_packages(hass)
    assert "Installing" not in caplog.text


def test_supported_here() -> None:
    """The engines run on this machine (glibc, x86-64 or arm64)."""
    assert unsupported_reason() is None


def test_mock_musl_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    """On musl (Home Assistant OS, Container) the reason says so plainly."""

    def musl_confstr(name: str) -> str:
        # What musl answers for glibc's own name.
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "confstr", musl_confstr)
    reason = unsupported_reason()
    assert reason is not None
    assert "musl" in reason


def test_mock_processor_without_wheels_is_unsupported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A processor the engines have no packages for is named."""
    monkeypatch.setattr("platform.machine", lambda: "armv7l")
    reason = unsupported_reason()
    assert reason is not None
    assert "(armv7l)" in reason


async def test_mock_musl_missing_packages_are_unavailable(
    hass: HomeAssistant,
    uninstallable_requirements: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On musl a missing package is not even tried: the reason is the C library."""
    hass.config.skip_pip = False
    monkeypatch.setattr(local_engines, "unsupported_reason", lambda: "musl here")
    with pytest.raises(LocalEnginesUnavailable, match=r"^musl here$"):
        await async_ensure_engine_packages(hass)
