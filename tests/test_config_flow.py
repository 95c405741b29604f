"""Tests for the Private Voice config flow."""

from http import HTTPStatus

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.private_voice.const import CONF_LANGUAGE, DEFAULT_PORT, DOMAIN


async def test_user_flow_creates_entry(hass: HomeAssistant, free_port: int) -> None:
    """The user picks a language and a free port and gets an entry."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "en", CONF_PORT: free_port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Private Voice"
    assert result["data"] == {CONF_LANGUAGE: "en", CONF_PORT: free_port}
    entry = result["result"]
    assert entry.unique_id == DOMAIN


async def test_user_flow_suggests_home_language_and_default_port(
    hass: HomeAssistant,
) -> None:
    """The form starts from the home's language and port 10600."""
    hass.config.language = "nl"
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    schema = result["data_schema"].schema
    suggested = {
        str(key): key.description["suggested_value"]
        for key in schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested == {CONF_LANGUAGE: "nl"}
    defaults = {str(key): key.default() for key in schema if callable(key.default)}
    assert defaults[CONF_PORT] == DEFAULT_PORT


async def test_user_flow_port_in_use_then_recovers(
    hass: HomeAssistant, busy_port: int, free_port: int
) -> None:
    """A port another program holds is refused; a free one then succeeds."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "en", CONF_PORT: busy_port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "cannot_bind"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "en", CONF_PORT: free_port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PORT] == free_port


async def test_user_flow_already_configured(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A second instance is refused."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_flow_through_rest_api(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, free_port: int
) -> None:
    """The frontend's path: start and finish the flow over the REST API."""
    # The web app freezes its routes when the client starts: load what the
    # integration's dependencies register first, as a running HA has.
    assert await async_setup_component(hass, "config", {})
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client()
    response = await client.post(
        "/api/config/config_entries/flow", json={"handler": DOMAIN}
    )
    assert response.status == HTTPStatus.OK, await response.text()
    form = await response.json()
    assert form["type"] == "form"
    assert [field["name"] for field in form["data_schema"]] == [
        CONF_LANGUAGE,
        CONF_PORT,
    ]

    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}",
        json={CONF_LANGUAGE: "en", CONF_PORT: free_port},
    )
    assert response.status == HTTPStatus.OK
    created = await response.json()
    assert created["type"] == "create_entry"
    assert created["result"]["domain"] == DOMAIN
    assert created["result"]["state"] == "loaded"
    assert hass.config_entries.async_entries(DOMAIN)[0].runtime_data.port == free_port
