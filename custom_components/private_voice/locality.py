"""Which engines of an Assist pipeline may carry a room's voice off the hub.

A room without "Cloud allowed" keeps its audio and text on local engines
(DESIGN §3). Whether an engine is local is decided here, from the manifest of
the integration that provides it: Home Assistant Cloud, and any integration
whose ``iot_class`` is ``cloud_*``, run off the hub.

An engine whose integration cannot be found counts as off the hub: a privacy
product fails closed. Such a pipeline fails anyway once it reaches that stage,
but the check runs before any audio moves, and Home Assistant might find the
engine by then (an integration still loading at startup).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from homeassistant.components import conversation, wake_word
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.core import HomeAssistant, callback, split_entity_id
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.entity_component import DATA_INSTANCES
from homeassistant.loader import Integration, async_get_integrations

from .const import DOMAIN

# Home Assistant Cloud: whatever its manifest says, it runs elsewhere.
CLOUD_DOMAIN: Final = "cloud"
# The built-in conversation agent, by its id and by its former id.
BUILT_IN_AGENTS: Final = frozenset({conversation.HOME_ASSISTANT_AGENT, "homeassistant"})
_ISSUE_PREFIX: Final = "cloud_not_allowed_"


class Stage(StrEnum):
    """A pipeline stage that hands the room's audio or text to an engine."""

    WAKE_WORD = "wake_word"
    STT = "stt"
    CONVERSATION = "conversation"
    TTS = "tts"


@dataclass(frozen=True, slots=True)
class EngineIntegration:
    """The integration that provides an engine, as a user knows it."""

    # None: not even the integration's domain could be found.
    domain: str | None
    name: str


@dataclass(frozen=True, slots=True)
class OffHubEngine:
    """An engine a pipeline names that may send what is said off the hub."""

    stage: Stage
    # The engine's id as the pipeline names it: an entity id or a provider name.
    engine: str
    integration: EngineIntegration


def _pipeline_engines(hass: HomeAssistant, pipeline_id: str | None) -> dict[Stage, str]:
    """Return the engine each stage of the pipeline uses, as its run resolves them."""
    pipeline = async_get_pipeline(hass, pipeline_id)
    engines = {
        # A run that starts at the wake word falls back to the first wake word entity.
        Stage.WAKE_WORD: pipeline.wake_word_entity
        or wake_word.async_default_entity(hass),
        Stage.STT: pipeline.stt_engine,
        Stage.CONVERSATION: pipeline.conversation_engine
        or conversation.HOME_ASSISTANT_AGENT,
        Stage.TTS: pipeline.tts_engine,
    }
    return {stage: engine for stage, engine in engines.items() if engine}


def _provider_domain(hass: HomeAssistant, engine: str) -> str | None:
    """Return the domain of the integration that provides ``engine``, if known."""
    if "." in engine:
        if (entry := er.async_get(hass).async_get(engine)) is not None:
            return entry.platform
        # An entity without a unique id is in no registry; ask its component.
        component = hass.data.get(DATA_INSTANCES, {}).get(split_entity_id(engine)[0])
        entity = component.get_entity(engine) if component is not None else None
        if entity is None or entity.platform is None:
            return None
        return entity.platform.platform_name
    # Conversation agents of config entries are named by the entry's id.
    if (config_entry := hass.config_entries.async_get_entry(engine)) is not None:
        return config_entry.domain
    # Legacy speech-to-text and text-to-speech providers carry their domain's name.
    return engine


def _runs_off_hub(integration: Integration) -> bool:
    if integration.domain == CLOUD_DOMAIN:
        return True
    if integration.iot_class is None:
        # Built-in system integrations declare none; a custom one that says
        # nothing about where it runs is not trusted to be local.
        return not integration.is_built_in
    return integration.iot_class.startswith("cloud")


async def async_offhub_engines(
    hass: HomeAssistant, pipeline_id: str | None
) -> list[OffHubEngine]:
    """Return the engines of the pipeline that may carry the room's voice off the hub.

    ``pipeline_id`` None is the preferred pipeline. The list follows the
    pipeline's stages and is empty when every engine is local. Raises
    ``assist_pipeline.PipelineNotFound`` for an unknown pipeline, as a run
    with it would.
    """
    engines = {
        stage: engine
        for stage, engine in _pipeline_engines(hass, pipeline_id).items()
        if not (stage is Stage.CONVERSATION and engine in BUILT_IN_AGENTS)
    }
    domains = {
        stage: _provider_domain(hass, engine) for stage, engine in engines.items()
    }
    # Cached by Home Assistant: no I/O once each domain has been looked up.
    integrations = await async_get_integrations(
        hass, {domain for domain in domains.values() if domain is not None}
    )
    off_hub: list[OffHubEngine] = []
    for stage, engine in engines.items():
        domain = domains[stage]
        found = integrations.get(domain) if domain is not None else None
        if isinstance(found, Integration):
            if _runs_off_hub(found):
                off_hub.append(
                    OffHubEngine(stage, engine, EngineIntegration(domain, found.name))
                )
        else:
            off_hub.append(
                OffHubEngine(stage, engine, EngineIntegration(domain, domain or engine))
            )
    return off_hub


def integration_names(engines: Iterable[OffHubEngine]) -> str:
    """Name the integrations behind ``engines`` once each, for a message."""
    return ", ".join(dict.fromkeys(engine.integration.name for engine in engines))


def _issue_id(area_id: str) -> str:
    return f"{_ISSUE_PREFIX}{area_id}"


@callback
def async_raise_cloud_issue(
    hass: HomeAssistant, area_id: str, room_name: str, engines: Sequence[OffHubEngine]
) -> None:
    """Tell the user the room's pipeline was refused, and which engines caused it."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(area_id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="cloud_not_allowed",
        translation_placeholders={
            "room": room_name,
            "engines": integration_names(engines),
        },
    )


@callback
def async_clear_cloud_issue(hass: HomeAssistant, area_id: str) -> None:
    """Withdraw the room's issue: its pipeline is local now, or cloud is allowed."""
    ir.async_delete_issue(hass, DOMAIN, _issue_id(area_id))
