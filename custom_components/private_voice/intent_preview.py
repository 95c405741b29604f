"""What a sentence would do in Home Assistant, found before anything runs.

The guard asks this before it hands a command on. The answer is what Home
Assistant's built-in agent would do with the sentence: the intent it
recognises (hassil, then its gazetteer fallback for wordings hassil has no
template for) and the entities that intent's handler would match, with the
satellite's area preferred, exactly as the handler matches them. Nothing is
called and nothing is changed.

What it cannot see: sentence triggers and scripts (what their actions do), a
custom intent whose handler is not a service handler, and what another agent
(an LLM) makes of a wording the built-in agent does not understand.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeassistant.components import conversation
from homeassistant.components.conversation.agent_manager import get_agent_manager
from homeassistant.components.conversation.default_agent import DefaultAgent
from homeassistant.components.conversation.gazetteer import GazetteerFallback
from homeassistant.const import ATTR_DEVICE_CLASS
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    intent,
)
import probatio

from .privacy.sensitive import service_called

type Slots = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedCall:
    """One entity an intent would act on or read, and how."""

    intent: str
    state: State
    # The service the call ends as (``privacy.sensitive.service_called``);
    # None: the intent reads the entity, or its handler calls no service we know.
    domain: str | None
    service: str | None

    @property
    def device_class(self) -> str | None:
        """The entity's device class, as its state says."""
        device_class = self.state.attributes.get(ATTR_DEVICE_CLASS)
        return str(device_class) if device_class is not None else None


def satellite_area(
    hass: HomeAssistant, satellite_id: str | None, device_id: str | None
) -> ar.AreaEntry | None:
    """Return the area of the satellite (or device) a command came from.

    As the built-in agent finds it: the satellite entity's area, else its
    device's.
    """
    area_id: str | None = None
    if satellite_id is not None and (
        entity := er.async_get(hass).async_get(satellite_id)
    ):
        area_id = entity.area_id
        device_id = entity.device_id
    if area_id is None and device_id is not None:
        device = dr.async_get(hass).async_get(device_id)
        if device is not None:
            area_id = dr.async_get_effective_area_id(hass, device)
    return ar.async_get(hass).async_get_area(area_id) if area_id else None


async def async_preview(
    hass: HomeAssistant, user_input: conversation.ConversationInput
) -> list[PlannedCall]:
    """Return what the built-in agent would do with ``user_input``'s sentence.

    ``user_input.conversation_id`` must be the chat session's: a follow-up
    ("unlock it") is resolved against what the conversation was about.
    """
    agent = get_agent_manager(hass).default_agent
    if agent is None:
        return []
    area = satellite_area(hass, user_input.satellite_id, user_input.device_id)
    calls: list[PlannedCall] = []
    for intent_name, slots in await _async_recognize(agent, user_input, area):
        calls.extend(_planned_calls(hass, user_input, intent_name, slots, area))
    return calls


async def _async_recognize(
    agent: DefaultAgent,
    user_input: conversation.ConversationInput,
    area: ar.AreaEntry | None,
) -> list[tuple[str, Slots]]:
    """Recognise the intents of a sentence, with their slots, as the agent does."""
    result = await agent.async_recognize_intent(user_input)
    if result is not None and not result.unmatched_entities:
        return [
            (
                result.intent.name,
                {
                    entity.name: {
                        "value": entity.value,
                        "text": entity.text or entity.value,
                    }
                    for entity in result.entities_list
                },
            )
        ]
    # Home Assistant offers no public way to it; without it, a wording only
    # the fallback understands would pass unseen.
    gazetteer: GazetteerFallback | None = getattr(agent, "_gazetteer", None)
    if (
        gazetteer is None
        or user_input.conversation_id is None
        or not gazetteer.supports(user_input.language)
    ):
        return []
    matcher, interpretation = await gazetteer.async_interpret(
        user_input.text, user_input.conversation_id, area
    )
    if not interpretation.accepted:
        return []
    return [
        (
            frame.intent,
            {
                slot: {"value": value, "text": matcher.display_name(slot, value)}
                for slot, value in frame.slots.items()
            },
        )
        for frame in interpretation.frames
    ]


def _handler(hass: HomeAssistant, intent_name: str) -> intent.IntentHandler | None:
    return next(
        (
            handler
            for handler in intent.async_get(hass)
            if handler.intent_type == intent_name
        ),
        None,
    )


def _values(slots: Slots, name: str) -> set[str] | None:
    return set(slots[name]["value"]) if name in slots else None


def _planned_calls(
    hass: HomeAssistant,
    user_input: conversation.ConversationInput,
    intent_name: str,
    slots: Slots,
    area: ar.AreaEntry | None,
) -> Iterable[PlannedCall]:
    """Match an intent's targets as its handler would; say what it would call.

    Service handlers build their constraints from the slots (and their own
    required domains, features and states); other handlers that take targets
    (questions such as HassGetState) use the slots alone.
    """
    handler = _handler(hass, intent_name)
    if handler is None:
        return []
    if area is not None:
        slots = slots | {"preferred_area_id": {"value": area.id}}
    try:
        slots = handler.async_validate_slots(slots)
    except probatio.Invalid:
        return []  # the handler refuses these slots: nothing runs
    service_handler = (
        handler if isinstance(handler, intent.DynamicServiceIntentHandler) else None
    )
    name = slots.get("name", {}).get("value")
    constraints = intent.MatchTargetsConstraints(
        name=None if name == "all" else name,
        area_name=slots.get("area", {}).get("value"),
        floor_name=slots.get("floor", {}).get("value"),
        domains=_values(slots, "domain")
        or (service_handler.required_domains if service_handler else None),
        device_classes=_values(slots, "device_class"),
        features=service_handler.required_features if service_handler else None,
        states=service_handler.required_states if service_handler else None,
        assistant=conversation.DOMAIN,
    )
    if not constraints.has_constraints:
        return []
    match = intent.async_match_targets(
        hass,
        constraints,
        intent.MatchTargetsPreferences(
            area_id=slots.get("preferred_area_id", {}).get("value"),
            floor_id=slots.get("preferred_floor_id", {}).get("value"),
        ),
    )
    if not match.is_match:
        return []
    if service_handler is None:
        return [
            PlannedCall(intent=intent_name, state=state, domain=None, service=None)
            for state in match.states
        ]
    intent_obj = intent.Intent(
        hass,
        platform=conversation.DOMAIN,
        intent_type=intent_name,
        slots=slots,
        text_input=user_input.text,
        context=user_input.context,
        language=user_input.language,
        assistant=conversation.DOMAIN,
        device_id=user_input.device_id,
        satellite_id=user_input.satellite_id,
    )
    position = slots.get("position", {}).get("value")
    calls: list[PlannedCall] = []
    for state in match.states:
        domain, service = service_called(
            state.domain,
            *service_handler.get_domain_and_service(intent_obj, state),
            position=position,
        )
        calls.append(
            PlannedCall(intent=intent_name, state=state, domain=domain, service=service)
        )
    return calls
