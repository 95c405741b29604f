"""Options: the Wyoming service's address and clients; the guard's agent and list."""

import ipaddress
from typing import Any, Final

from homeassistant.config_entries import ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.selector import (
    ConversationAgentSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
import probatio

from .const import (
    CONF_ALLOWED_ADDRESSES,
    CONF_BIND_ADDRESS,
    CONF_GUARD_AGENT,
    CONF_SENSITIVE_ACTIONS,
    DEFAULT_BIND_ADDRESS,
    DEFAULT_GUARD_AGENT,
)
from .conversation import guard_entity_id
from .privacy.sensitive import SensitiveAction

# The guard's list: every kind of sensitive action unless the user says otherwise.
_EVERY_KIND: Final = [action.value for action in SensitiveAction]

STEP_OPTIONS_SCHEMA: Final = probatio.Schema(
    {
        probatio.Optional(
            CONF_BIND_ADDRESS, default=DEFAULT_BIND_ADDRESS
        ): TextSelector(),
        probatio.Optional(CONF_ALLOWED_ADDRESSES, default=[]): TextSelector(
            TextSelectorConfig(multiple=True)
        ),
        probatio.Optional(
            CONF_GUARD_AGENT, default=DEFAULT_GUARD_AGENT
        ): ConversationAgentSelector(),
        probatio.Optional(CONF_SENSITIVE_ACTIONS, default=_EVERY_KIND): SelectSelector(
            SelectSelectorConfig(
                options=_EVERY_KIND,
                multiple=True,
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_SENSITIVE_ACTIONS,
            )
        ),
    }
)


class PrivateVoiceOptionsFlow(OptionsFlowWithReload):
    """Change the service's address and clients, and the guard; the entry reloads."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the service's addresses, the guard's agent and its list."""
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
            agent = user_input.get(CONF_GUARD_AGENT, DEFAULT_GUARD_AGENT)
            if agent == guard_entity_id(self.hass, self.config_entry):
                # The guard handing commands to itself would never answer.
                errors[CONF_GUARD_AGENT] = "guard_is_agent"
            if not errors:
                return self.async_create_entry(
                    data={
                        CONF_BIND_ADDRESS: bind,
                        CONF_ALLOWED_ADDRESSES: allowed,
                        CONF_GUARD_AGENT: agent,
                        CONF_SENSITIVE_ACTIONS: sorted(
                            map(str, user_input.get(CONF_SENSITIVE_ACTIONS, []))
                        ),
                    }
                )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                STEP_OPTIONS_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
        )
