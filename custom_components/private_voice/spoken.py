"""Sentences the hub says itself, in the user's language (from translations)."""

from homeassistant.core import HomeAssistant
from homeassistant.helpers import translation

from .const import DOMAIN


async def async_spoken_text(
    hass: HomeAssistant, key: str, placeholders: dict[str, str] | None = None
) -> str:
    """Return the sentence ``key`` (in ``exceptions``), with its placeholders."""
    strings = await translation.async_get_translations(
        hass, hass.config.language, "exceptions", {DOMAIN}
    )
    message = strings.get(f"component.{DOMAIN}.exceptions.{key}.message", key)
    return message.format(**(placeholders or {}))
