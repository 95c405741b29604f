"""The guard: a conversation agent that applies the room's mode and the speaker.

Rooms' pipelines name the guard as their conversation agent. For each command
it finds where it was said (the satellite's room) and who said it (voice ID),
asks ``intent_preview`` what the sentence would do, and refuses with a spoken
reason what the room's policy and the speaker do not allow (DESIGN §3):
sensitive actions, and in Guest rooms where people are. Everything else goes
to the user's chosen agent (Home Assistant's built-in one by default), in the
same chat session, and comes back unchanged; in a Quiet room without speech.
"""

from dataclasses import dataclass, replace
from typing import Literal, override

from homeassistant.components import conversation
from homeassistant.components.assist_satellite import DOMAIN as ASSIST_SATELLITE
from homeassistant.components.conversation.agent_manager import async_get_agent
from homeassistant.const import MATCH_ALL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, intent
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import (
    CONF_GUARD_AGENT,
    CONF_SENSITIVE_ACTIONS,
    DEFAULT_GUARD_AGENT,
    DOMAIN,
    LOGGER,
)
from .coordinator import PrivateVoiceConfigEntry
from .intent_preview import PlannedCall, async_preview
from .privacy.policy import (
    PrivacyMode,
    Refusal,
    Reply,
    RoomPolicy,
    reply_kind,
    sensitive_action_refusal,
    voice_id_allowed,
)
from .privacy.sensitive import (
    ALL_SENSITIVE_ACTIONS,
    SensitiveAction,
    personal_data,
    sensitive_action,
)
from .rooms import mute_switch
from .spoken import async_spoken_text
from .voice_id import Identification

# Each command is handed on at once; Home Assistant need not queue them.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the guard."""
    async_add_entities([PrivateVoiceGuard(entry)])


def guard_unique_id(entry: PrivateVoiceConfigEntry) -> str:
    """Return the guard's unique id (pipelines and options look it up)."""
    return f"{entry.entry_id}_guard"


def guard_entity_id(hass: HomeAssistant, entry: PrivateVoiceConfigEntry) -> str | None:
    """Return the guard's entity id, once it is registered."""
    return er.async_get(hass).async_get_entity_id(
        Platform.CONVERSATION, DOMAIN, guard_unique_id(entry)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where a command was said, and by whom."""

    policy: RoomPolicy
    # The room's name; None: a satellite in no room, or no satellite.
    room: str | None
    speaker: Identification | None

    @property
    def speaker_allowed(self) -> bool:
        """A recognised, enrolled person who may run sensitive actions."""
        speaker = self.speaker
        return (
            speaker is not None
            and speaker.person is not None
            and speaker.may_run_sensitive
        )


class PrivateVoiceGuard(conversation.ConversationEntity):
    """Applies the room's mode and the speaker, then hands the command on."""

    _attr_has_entity_name = True
    _attr_translation_key = "guard"

    def __init__(self, entry: PrivateVoiceConfigEntry) -> None:
        """Guard for ``entry``'s rooms, with its options."""
        self._entry = entry
        self._attr_unique_id = guard_unique_id(entry)
        # The hub's device, which the engines' entities describe in full.
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            entry_type=DeviceEntryType.SERVICE,
            manufacturer="Private Voice",
            translation_key="engines",
        )
        self._agent_id: str = entry.options.get(CONF_GUARD_AGENT, DEFAULT_GUARD_AGENT)
        self._enabled = frozenset(
            entry.options.get(CONF_SENSITIVE_ACTIONS, ALL_SENSITIVE_ACTIONS)
        )

    @property
    def agent_id(self) -> str:
        """The agent commands are handed to; never the guard itself (a loop)."""
        if self._agent_id == self.entity_id:
            return conversation.HOME_ASSISTANT_AGENT
        return self._agent_id

    @property
    @override
    def supported_languages(self) -> list[str] | Literal["*"]:
        """The languages of the agent commands are handed to."""
        agent = async_get_agent(self.hass, self.agent_id)
        return agent.supported_languages if agent is not None else MATCH_ALL

    @override
    async def async_prepare(self, language: str | None = None) -> None:
        """Load the intents the guard recognises with, and the agent's."""
        for agent_id in {conversation.HOME_ASSISTANT_AGENT, self.agent_id}:
            if (agent := async_get_agent(self.hass, agent_id)) is not None:
                await agent.async_prepare(language)

    @override
    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Refuse what the room and the speaker do not allow; hand on the rest."""
        origin = self._origin(user_input)
        if origin is None:
            # Typed by a logged-in user: their login says who they are.
            return await self._async_hand_over(user_input, chat_log, quiet=False)
        quiet = reply_kind(origin.policy) is Reply.CHIME
        if (speech := await self._async_refusal(user_input, chat_log, origin)) is None:
            return await self._async_hand_over(user_input, chat_log, quiet=quiet)
        chat_log.async_add_assistant_content_without_tools(
            conversation.AssistantContent(agent_id=self.entity_id, content=speech)
        )
        response = intent.IntentResponse(language=user_input.language)
        response.async_set_error(
            intent.IntentResponseErrorCode.FAILED_TO_HANDLE, speech
        )
        if quiet:
            response.async_set_speech("")
        return conversation.ConversationResult(
            response=response, conversation_id=chat_log.conversation_id
        )

    def _origin(self, user_input: conversation.ConversationInput) -> Origin | None:
        """Find the room and the speaker; None for a logged-in user's typed command.

        A command from no satellite and no user (an automation, a service call)
        has no recognised speaker.
        """
        satellite_id = user_input.satellite_id or self._satellite_of(
            user_input.device_id
        )
        if satellite_id is None:
            if user_input.context.user_id is not None:
                return None
            return Origin(policy=RoomPolicy(), room=None, speaker=None)
        data = self._entry.runtime_data
        room = data.rooms.room_of_entity(satellite_id)
        policy = room.policy if room is not None else RoomPolicy()
        return Origin(
            policy=policy,
            room=room.name if room is not None else None,
            speaker=(
                data.voice_id.speaker_of(satellite_id)
                if voice_id_allowed(policy)
                else None
            ),
        )

    def _satellite_of(self, device_id: str | None) -> str | None:
        """Return the assist_satellite entity of a device, if it has one."""
        if device_id is None:
            return None
        return next(
            (
                entity.entity_id
                for entity in er.async_entries_for_device(
                    er.async_get(self.hass), device_id
                )
                if entity.domain == ASSIST_SATELLITE
            ),
            None,
        )

    def _sensitive(self, call: PlannedCall) -> SensitiveAction | None:
        if call.domain is None or call.service is None:
            return None
        return sensitive_action(
            call.domain,
            call.service,
            call.device_class,
            self._enabled,
            mute_switch=self._mute_switch(call.state.entity_id),
        )

    def _mute_switch(self, entity_id: str) -> bool:
        """Whether ``entity_id`` is a voice satellite's microphone mute switch."""
        entity = er.async_get(self.hass).async_get(entity_id)
        if entity is None or entity.domain != Platform.SWITCH or not entity.device_id:
            return False
        return (
            self._satellite_of(entity.device_id) is not None
            and mute_switch(self.hass, entity.device_id) == entity_id
        )

    async def _async_refusal(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        origin: Origin,
    ) -> str | None:
        """Return the spoken reason to refuse the command; None to let it through."""
        calls = await async_preview(
            self.hass,
            replace(
                user_input,
                conversation_id=chat_log.conversation_id,
                agent_id=conversation.HOME_ASSISTANT_AGENT,
            ),
        )
        room = origin.room or ""
        for call in calls:
            if (action := self._sensitive(call)) is None:
                continue
            refusal = sensitive_action_refusal(
                origin.policy, speaker_allowed=origin.speaker_allowed
            )
            if refusal is None:
                continue
            LOGGER.info("Refused %s in %s: %s", action, room or "no room", refusal)
            return await self._async_spoken(self._reason(refusal, origin), action, room)
        if origin.policy.mode is PrivacyMode.GUEST and any(
            personal_data(call.state.domain) for call in calls
        ):
            return await self._async_spoken("guard_guest_personal", None, room)
        return None

    @staticmethod
    def _reason(refusal: Refusal, origin: Origin) -> str:
        """Return the key of the spoken reason for a refusal."""
        match refusal:
            case Refusal.MUTED:
                return "guard_muted"
            case Refusal.GUEST_SENSITIVE:
                return "guard_guest_sensitive"
            case _ if origin.speaker is None or origin.speaker.person is None:
                return "guard_unknown_speaker"
            case _:
                return "guard_speaker_not_allowed"

    async def _async_spoken(
        self, key: str, action: SensitiveAction | None, room: str
    ) -> str:
        """Return a spoken reason, with the words for ``action`` and ``room``."""
        return await async_spoken_text(
            self.hass,
            key,
            {
                "action": (
                    await async_spoken_text(self.hass, f"guard_action_{action}")
                    if action is not None
                    else ""
                ),
                "room": room,
            },
        )

    async def _async_hand_over(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        *,
        quiet: bool,
    ) -> conversation.ConversationResult:
        """Hand the command to the chosen agent, in the same chat session.

        The agent finds the session and the chat log open under the same
        conversation id and adds to them: one conversation, not two. In a
        Quiet room its answer stays in the chat log but is not spoken: not
        streamed to text-to-speech while it is written, and no speech after.
        """
        listener = chat_log.delta_listener
        if quiet:
            chat_log.delta_listener = None
        try:
            result = await conversation.async_converse(
                self.hass,
                text=user_input.text,
                conversation_id=chat_log.conversation_id,
                context=user_input.context,
                language=user_input.language,
                agent_id=self.agent_id,
                device_id=user_input.device_id,
                satellite_id=user_input.satellite_id,
                extra_system_prompt=user_input.extra_system_prompt,
            )
        except ValueError:  # the agent is gone (its integration was removed)
            speech = await self._async_spoken("guard_agent_missing", None, "")
            response = intent.IntentResponse(language=user_input.language)
            response.async_set_error(intent.IntentResponseErrorCode.UNKNOWN, speech)
            result = conversation.ConversationResult(
                response=response, conversation_id=chat_log.conversation_id
            )
        finally:
            chat_log.delta_listener = listener
        if quiet:
            result.response.async_set_speech("")
        return result
