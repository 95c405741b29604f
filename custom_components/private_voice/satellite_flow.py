"""Adding a Wyoming satellite: a config subentry with its address and room.

The same step adds a satellite and reconfigures one. A satellite is checked by
asking it ``describe``: its ``info`` must say it is a satellite. Satellites
found on the network are offered by the main flow's zeroconf step, which adds
the same subentry (``satellite_subentry``).
"""

from types import MappingProxyType
from typing import Any, Final

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntry,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.selector import (
    AreaSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
)
import probatio
from wyoming.info import Info

from .const import CONF_AREA_ID, DEFAULT_SATELLITE_PORT, LOGGER, SUBENTRY_SATELLITE
from .protocol.client import Endpoint, PeerError, async_describe
from .satellites import satellite_subentries

STEP_SATELLITE_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(CONF_HOST): TextSelector(),
        probatio.Required(CONF_PORT, default=DEFAULT_SATELLITE_PORT): probatio.All(
            NumberSelector(
                NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX)
            ),
            probatio.Coerce(int),
        ),
        probatio.Optional(CONF_AREA_ID): AreaSelector(),
    }
)


def satellite_title(info: Info, endpoint: Endpoint) -> str:
    """Name a satellite as it names itself, else by its address."""
    if info.satellite is not None and info.satellite.name:
        return info.satellite.name
    return endpoint.host


def satellite_unique_id(endpoint: Endpoint) -> str:
    """Identify a satellite added by hand by its address."""
    return f"{endpoint.host}:{endpoint.port}"


def find_satellite(entry: ConfigEntry, endpoint: Endpoint) -> ConfigSubentry | None:
    """Return the satellite subentry at ``endpoint``, if there is one."""
    for subentry in satellite_subentries(entry):
        if Endpoint(subentry.data[CONF_HOST], subentry.data[CONF_PORT]) == endpoint:
            return subentry
    return None


def _satellite_data(endpoint: Endpoint, area_id: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {CONF_HOST: endpoint.host, CONF_PORT: endpoint.port}
    if area_id:
        data[CONF_AREA_ID] = area_id
    return data


def satellite_subentry(
    endpoint: Endpoint, title: str, area_id: str | None, unique_id: str
) -> ConfigSubentry:
    """Make a new satellite subentry."""
    return ConfigSubentry(
        data=MappingProxyType(_satellite_data(endpoint, area_id)),
        subentry_type=SUBENTRY_SATELLITE,
        title=title,
        unique_id=unique_id,
    )


async def async_describe_satellite(endpoint: Endpoint) -> tuple[Info | None, str]:
    """Ask a peer what it is; return its info, or None and the error key."""
    try:
        info = await async_describe(endpoint)
    except PeerError as err:
        LOGGER.debug("Satellite %s does not answer: %s", endpoint.uri, err)
        return None, "cannot_connect"
    if info.satellite is None:
        return None, "not_a_satellite"
    return info, ""


class SatelliteSubentryFlow(ConfigSubentryFlow):
    """Add a satellite by its address, or change a satellite's address or room."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the satellite's address and room."""
        return await self._async_step_satellite(user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change the satellite's address or room."""
        return await self._async_step_satellite(user_input)

    async def _async_step_satellite(
        self, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        current = None if self._is_new else self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            endpoint = Endpoint(user_input[CONF_HOST].strip(), user_input[CONF_PORT])
            area_id = user_input.get(CONF_AREA_ID)
            existing = find_satellite(entry, endpoint)
            if existing is not None and existing is not current:
                return self.async_abort(reason="already_configured")
            if current is not None and existing is current:
                # Same address: only the room changes; no need to disturb it.
                return self._async_save(current, endpoint, current.title, area_id)
            info, error = await async_describe_satellite(endpoint)
            if info is None:
                errors["base"] = error
            elif current is not None:
                return self._async_save(
                    current, endpoint, satellite_title(info, endpoint), area_id
                )
            else:
                subentry = satellite_subentry(
                    endpoint,
                    satellite_title(info, endpoint),
                    area_id,
                    satellite_unique_id(endpoint),
                )
                return self.async_create_entry(
                    title=subentry.title,
                    data=dict(subentry.data),
                    unique_id=subentry.unique_id,
                )
        suggested = user_input or (dict(current.data) if current else {})
        return self.async_show_form(
            step_id="user" if current is None else "reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                STEP_SATELLITE_SCHEMA, suggested
            ),
            errors=errors,
        )

    @property
    def _is_new(self) -> bool:
        return self.source == SOURCE_USER

    def _async_save(
        self,
        current: ConfigSubentry,
        endpoint: Endpoint,
        title: str,
        area_id: str | None,
    ) -> SubentryFlowResult:
        # Added by hand, a satellite is known by its address: it moves with it.
        old = Endpoint(current.data[CONF_HOST], current.data[CONF_PORT])
        unique_id = (
            satellite_unique_id(endpoint)
            if current.unique_id == satellite_unique_id(old)
            else current.unique_id
        )
        return self.async_update_and_abort(
            self._get_entry(),
            current,
            unique_id=unique_id,
            title=title,
            data=_satellite_data(endpoint, area_id),
        )
