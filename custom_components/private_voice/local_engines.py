"""Engines on this Home Assistant: their packages, and the engine host child process."""

from collections.abc import Callable
import logging
import os
from pathlib import Path
import platform
import sys
from typing import Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant
from homeassistant.requirements import RequirementsNotFound, async_process_requirements
from homeassistant.util.package import is_installed

from .const import (
    CONF_OPENWAKEWORD,
    CONF_STT_MODEL,
    CONF_VOICE,
    DOMAIN,
    LOGGER,
    MODELS_DIR,
)
from .coordinator import PrivateVoiceConfigEntry
from .protocol.client import Endpoint
from .supervisor import EngineHostProcess

# The folder that holds the engine_host package: the child's PYTHONPATH.
PACKAGE_PARENT: Final = Path(__file__).parent
REQUIREMENTS_FILE: Final = PACKAGE_PARENT / "engine_host" / "requirements.txt"
# Processors for which ctranslate2 and onnxruntime publish wheels.
_MACHINES_WITH_WHEELS: Final = frozenset({"x86_64", "amd64", "aarch64", "arm64"})


class LocalEnginesUnavailable(Exception):  # noqa: N818 - a state, not a fault
    """The engine packages are missing and cannot be installed; says why, plainly."""


def unsupported_reason() -> str | None:
    """Why the engine packages cannot install on this system, or None if they can.

    Looks at the system only (no file read, no engine import), so it is cheap
    enough for the event loop.
    """
    if sys.platform == "linux":
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION")
        except OSError, ValueError:
            # Not glibc: musl answers EINVAL.
            libc = None
        if not libc or not libc.startswith("glibc"):
            return (
                "this system's C library is not glibc (Home Assistant OS and "
                "Container use musl), and the speech engines (ctranslate2, "
                "onnxruntime) publish no packages for it"
            )
    if (machine := platform.machine()).lower() not in _MACHINES_WITH_WHEELS:
        return (
            f"the speech engines (ctranslate2, onnxruntime) publish no packages "
            f"for this processor ({machine})"
        )
    return None


def _missing_requirements(requirements_file: Path) -> list[str]:
    """Return the requirements in ``requirements_file`` that are not installed."""
    lines = requirements_file.read_text(encoding="utf-8").splitlines()
    requirements = [req for line in lines if (req := line.partition("#")[0].strip())]
    return [req for req in requirements if not is_installed(req)]


async def async_ensure_engine_packages(hass: HomeAssistant) -> None:
    """Install the engine host's packages unless they are already installed.

    LocalEnginesUnavailable, with a plain reason, when they cannot be.
    """
    missing = await hass.async_add_executor_job(
        _missing_requirements, REQUIREMENTS_FILE
    )
    if not missing:
        return
    if reason := unsupported_reason():
        raise LocalEnginesUnavailable(reason)
    if hass.config.skip_pip:
        # Home Assistant's requirements helper would install them anyway.
        msg = (
            "Home Assistant runs with --skip-pip, so it installs no packages; "
            f"missing: {', '.join(missing)}"
        )
        raise LocalEnginesUnavailable(msg)
    LOGGER.info("Installing the speech engines' packages: %s", ", ".join(missing))
    try:
        await async_process_requirements(hass, DOMAIN, missing, is_built_in=False)
    except RequirementsNotFound as err:
        msg = (
            "these packages could not be installed (the log says why): "
            f"{', '.join(err.requirements)}"
        )
        raise LocalEnginesUnavailable(msg) from err


def create_engine_host(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    endpoint: Endpoint,
    *,
    on_ready: Callable[[], None],
    on_exit: Callable[[], None],
) -> EngineHostProcess:
    """Prepare the engine host child process for ``entry``, serving on ``endpoint``.

    The models the entry names are already installed (the config flow
    downloads them), so the host downloads none of them. It downloads only
    the voice encoder, on its first start (16 MB, once): the engine packages
    cannot include it, as its package depends on torch. Without it the host
    still serves, without voice prints. The process stops with Home
    Assistant; the caller stops it with the entry.
    """
    command = [
        sys.executable,
        "-m",
        "engine_host",
        "--uri",
        endpoint.uri,
        "--models-dir",
        hass.config.path(MODELS_DIR),
        "--download-voice-encoder",
        "--stop-with-stdin",
    ]
    if stt_model := entry.data.get(CONF_STT_MODEL):
        command += ["--stt-model", stt_model]
    if voice := entry.data.get(CONF_VOICE):
        command += ["--voice", voice]
    if entry.data.get(CONF_OPENWAKEWORD):
        command.append("--openwakeword")
    logger = LOGGER.getChild("engine_host")
    if logger.isEnabledFor(logging.DEBUG):
        # The host's debug lines are worth producing only when they are read.
        command.append("--debug")
    python_path = [str(PACKAGE_PARENT)]
    if inherited := os.environ.get("PYTHONPATH"):
        python_path.append(inherited)
    process = EngineHostProcess(
        command=command,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(python_path)},
        endpoint=endpoint,
        on_ready=on_ready,
        on_exit=on_exit,
        logger=logger,
    )

    async def _async_stop(event: Event) -> None:
        # Config entries are not unloaded when Home Assistant stops; the child,
        # in its own session, would outlive it and hold the port.
        await process.async_stop()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_stop)
    )
    return process
