"""Config flow for Private Voice."""

from typing import Any, override

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_PORT
from homeassistant.helpers.selector import (
    LanguageSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)
import probatio

from .const import CONF_LANGUAGE, DEFAULT_BIND_ADDRESS, DEFAULT_PORT, DOMAIN
from .network import async_check_port_free

STEP_USER_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_LANGUAGE): LanguageSelector(),
        probatio.Required(CONF_PORT, default=DEFAULT_PORT): probatio.All(
            NumberSelector(
                NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX)
            ),
            probatio.Coerce(int),
        ),
    }
)


class PrivateVoiceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the one Private Voice instance of a home."""

    VERSION = 1

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the language and the Wyoming service port."""
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()

        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                await async_check_port_free(DEFAULT_BIND_ADDRESS, user_input[CONF_PORT])
            except OSError:
                errors[CONF_PORT] = "cannot_bind"
            else:
                return self.async_create_entry(title="Private Voice", data=user_input)

        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                STEP_USER_SCHEMA,
                user_input or {CONF_LANGUAGE: self.hass.config.language},
            ),
            errors=errors,
        )
