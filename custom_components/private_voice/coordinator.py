"""What the engines offer, and whether they answer: one coordinator per entry."""

import asyncio
from dataclasses import dataclass, field
from typing import override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from wyoming.info import AsrProgram, Info, TtsProgram, WakeProgram

from .const import DOMAIN, ENGINE_REFRESH_INTERVAL, LOGGER
from .protocol.client import Endpoint, PeerError, async_describe
from .protocol.satellite import SatelliteLink
from .protocol.service import WyomingService
from .rooms import RoomManager
from .supervisor import EngineHostProcess
from .voice_id import VoiceId


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineEndpoints:
    """Where each engine is reached; None: that engine is not used."""

    stt: Endpoint | None = None
    tts: Endpoint | None = None
    wake: Endpoint | None = None

    @classmethod
    def single(cls, endpoint: Endpoint) -> EngineEndpoints:
        """Every engine from one engine host."""
        return cls(stt=endpoint, tts=endpoint, wake=endpoint)

    @property
    def distinct(self) -> list[Endpoint]:
        """Each endpoint once."""
        return list(dict.fromkeys(e for e in (self.stt, self.tts, self.wake) if e))


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineInfo:
    """The installed programs of each engine, from ``describe``."""

    stt: AsrProgram | None = None
    tts: TtsProgram | None = None
    wake: WakeProgram | None = None


def _installed[T: (AsrProgram, TtsProgram, WakeProgram)](programs: list[T]) -> T | None:
    return next((program for program in programs if program.installed), None)


class EngineCoordinator(DataUpdateCoordinator[EngineInfo]):
    """Asks every engine endpoint what it offers, every 30 s and on demand.

    An endpoint that does not answer makes the update fail, which makes the
    entities unavailable and logs the outage once (and its end once).
    """

    config_entry: PrivateVoiceConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrivateVoiceConfigEntry,
        endpoints: EngineEndpoints,
    ) -> None:
        """Watch ``endpoints``."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} engines",
            update_interval=ENGINE_REFRESH_INTERVAL,
            always_update=False,
        )
        self.endpoints = endpoints

    @override
    async def _async_update_data(self) -> EngineInfo:
        try:
            infos = await asyncio.gather(
                *(async_describe(endpoint) for endpoint in self.endpoints.distinct)
            )
        except PeerError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="engine_unreachable",
                translation_placeholders={"error": str(err)},
            ) from err
        described: dict[Endpoint, Info] = dict(
            zip(self.endpoints.distinct, infos, strict=True)
        )
        endpoints = self.endpoints
        return EngineInfo(
            stt=_installed(described[endpoints.stt].asr) if endpoints.stt else None,
            tts=_installed(described[endpoints.tts].tts) if endpoints.tts else None,
            wake=_installed(described[endpoints.wake].wake) if endpoints.wake else None,
        )


@dataclass(kw_only=True, slots=True)
class PrivateVoiceData:
    """What a loaded Private Voice entry holds while it runs."""

    language: str
    port: int
    coordinator: EngineCoordinator
    # The public, policy-enforcing Wyoming service.
    service: WyomingService
    # The rooms, their privacy modes, and where those are enforced.
    rooms: RoomManager
    # Enrolled voice prints and who spoke where.
    voice_id: VoiceId
    # The engine host child process (engine mode "local" only).
    process: EngineHostProcess | None = field(default=None)
    # The connected satellites' links, by subentry id.
    satellites: dict[str, SatelliteLink] = field(default_factory=dict)


type PrivateVoiceConfigEntry = ConfigEntry[PrivateVoiceData]
