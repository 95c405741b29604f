"""Runtime data of a Private Voice config entry."""

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry


@dataclass(kw_only=True, slots=True)
class PrivateVoiceData:
    """What a loaded Private Voice entry holds while it runs."""

    language: str
    port: int


type PrivateVoiceConfigEntry = ConfigEntry[PrivateVoiceData]
