"""Options: where the public Wyoming service listens, and who may use it."""

import ipaddress
from typing import Any, Final

from homeassistant.config_entries import ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig
import probatio

from .const import CONF_ALLOWED_ADDRESSES, CONF_BIND_ADDRESS, DEFAULT_BIND_ADDRESS

STEP_OPTIONS_SCHEMA: Final = probatio.Schema(
    {
        probatio.Optional(
            CONF_BIND_ADDRESS, default=DEFAULT_BIND_ADDRESS
        ): TextSelector(),
        probatio.Optional(CONF_ALLOWED_ADDRESSES, default=[]): TextSelector(
            TextSelectorConfig(multiple=True)
        ),
    }
)


class PrivateVoiceOptionsFlow(OptionsFlowWithReload):
    """Change the service's address and its clients; the entry reloads to apply it."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the address to listen on and the addresses that may connect."""
        errors: dict[str, str] = {}
        if user_input is not None:
            addresses = [
                a.strip() for a in user_input[CONF_ALLOWED_ADDRESSES] if a.strip()
            ]
            try:
                allowed = sorted({str(ipaddress.ip_address(a)) for a in addresses})
            except ValueError:
                errors[CONF_ALLOWED_ADDRESSES] = "invalid_address"
            try:
                bind = str(ipaddress.ip_address(user_input[CONF_BIND_ADDRESS].strip()))
            except ValueError:
                errors[CONF_BIND_ADDRESS] = "invalid_address"
            if not errors:
                return self.async_create_entry(
                    data={CONF_BIND_ADDRESS: bind, CONF_ALLOWED_ADDRESSES: allowed}
                )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                STEP_OPTIONS_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
        )
