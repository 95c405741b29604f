"""Voice ID: enrolled people's voice prints, and who spoke in each room.

Only voice prints (embeddings the engine host computes from an utterance's
audio while it transcribes it) are kept, in a Home Assistant ``Store``; no
audio reaches this module. Nothing here runs for a room in Guest or Muted
(``privacy.policy.voice_id_allowed``): the engine host is not even asked.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
import logging
import time
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict, cast

from homeassistant.components.assist_satellite import (
    AssistSatelliteEntity,
    AssistSatelliteEntityFeature,
)
from homeassistant.components.assist_satellite.const import DATA_COMPONENT
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .engine_host.engines import VOICE_PRINT, VOICE_PRINT_ERROR, ErrorCode
from .privacy.policy import PrivacyMode, RoomPolicy, voice_id_allowed
from .privacy.voiceprint import (
    EnrolmentQuality,
    enrol,
    identify,
    normalised,
)
from .rooms import signal_room_updated
from .spoken import async_spoken_text

if TYPE_CHECKING:
    from .coordinator import PrivateVoiceConfigEntry

_LOGGER = logging.getLogger(__name__)

# An identification belongs to the utterance it came from: the guard reads it
# in the same pipeline run, a few seconds later at most.
IDENTIFICATION_TTL: Final = 60.0
# How long enrolment waits for each phrase (the wake word, then the phrase).
PHRASE_TIMEOUT: Final = 30.0
# Each phrase may be asked again this many times if it was not heard.
_PHRASE_RETRIES: Final = 1
_STORAGE_VERSION: Final = 1


# Prompted phrases: varied sounds, no command Assist would act on.
PHRASES: Final = (
    "Seven bright yellow boats sailed across the quiet lake.",
    "Please remember to water the plants on the balcony.",
    "I would like a cup of tea with a little honey.",
    "The weather report says it will rain tomorrow morning.",
    "Every Thursday we cook dinner together with friends.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identification:
    """Who spoke one utterance, as far as the voice prints tell."""

    # The enrolled person's entity id (person.x); None: a voice not enrolled.
    person: str | None
    # Cosine similarity to the closest enrolled print.
    score: float
    # The person is enrolled and allowed to run sensitive actions.
    may_run_sensitive: bool = False
    # When it was made (time.monotonic()).
    at: float = 0.0


class _Speaker(TypedDict):
    """One enrolled person, as stored."""

    print: list[float]
    phrases: int
    agreement: list[float]
    quality: str
    sensitive: bool
    enrolled: str


class _Speaking(Protocol):
    """One of our satellites: it says a sentence in the hub's own local voice."""

    async def async_say(self, text: str) -> None:
        """Say ``text``; return once it was played."""


class _Prompter(Protocol):
    """How a satellite asks for the phrases and says how enrolment went."""

    @property
    def prompt_key(self) -> str:
        """The prompt's translation key.

        The person says the wake word first, or the satellite listens by
        itself after the prompt.
        """

    async def async_prompt(self, text: str) -> None:
        """Say the prompt; return once the person may have answered."""

    async def async_say(self, text: str) -> None:
        """Say ``text``; return once it was played."""


@dataclass(frozen=True, slots=True)
class _OurSatellite:
    """Our satellite: it says the prompt; the person wakes it and answers."""

    satellite: _Speaking
    prompt_key: str = "spoken_enrolment_prompt"

    async def async_prompt(self, text: str) -> None:
        await self.satellite.async_say(text)

    async def async_say(self, text: str) -> None:
        await self.satellite.async_say(text)


@dataclass(frozen=True, slots=True)
class _AskingSatellite:
    """Another integration's satellite that starts conversations (ESPHome).

    Each prompt is a question (``ask_question``): the satellite says it in its
    pipeline's voice, then listens; the answer's run ends at speech-to-text,
    where our provider hands its print to the enrolment.
    """

    satellite: AssistSatelliteEntity
    prompt_key: str = "spoken_enrolment_question"

    async def async_prompt(self, text: str) -> None:
        try:
            await self.satellite.async_internal_ask_question(
                question=text, preannounce=False
            )
        except HomeAssistantError as err:
            # No answer: the phrase counts as not heard, and is asked again.
            _LOGGER.debug("No answer at %s: %s", self.satellite.entity_id, err)

    async def async_say(self, text: str) -> None:
        await self.satellite.async_internal_announce(message=text, preannounce=False)


def _store(hass: HomeAssistant, entry: ConfigEntry) -> Store[dict[str, _Speaker]]:
    return Store(hass, _STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.voice_prints")


async def async_remove_voice_prints(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete every voice print of ``entry`` (the entry is being removed)."""
    await _store(hass, entry).async_remove()


class VoiceId:
    """Enrolled prints, enrolments in progress, and who spoke where."""

    def __init__(self, hass: HomeAssistant, entry: PrivateVoiceConfigEntry) -> None:
        """Keep the prints of ``entry``'s home."""
        self.hass = hass
        self._entry = entry
        self._store = _store(hass, entry)
        self._speakers: dict[str, _Speaker] = {}
        self._latest: dict[str, Identification] = {}
        # Satellites enrolling someone: their next print goes here, not to
        # identification.
        self._enrolling: dict[str, asyncio.Queue[Mapping[str, Any]]] = {}

    async def async_start(self) -> None:
        """Load the stored prints."""
        self._speakers = await self._store.async_load() or {}

    @property
    def enrolled(self) -> dict[str, _Speaker]:
        """The enrolled people, by person entity id (prints included)."""
        return self._speakers

    def _policy(self, satellite_id: str) -> RoomPolicy:
        room = self._entry.runtime_data.rooms.room_of_entity(satellite_id)
        return room.policy if room is not None else RoomPolicy()

    # Identification ------------------------------------------------------------

    @callback
    def enrolling(self, satellite_id: str) -> bool:
        """Whether ``satellite_id``'s next utterance is an enrolment phrase."""
        return satellite_id in self._enrolling

    @callback
    def wants_print(self, satellite_id: str | None) -> bool:
        """Whether to ask the engine for the print of this satellite's utterance.

        Only a satellite's utterance, in a room that allows voice ID, and only
        when there is someone to compare it with or someone enrolling there.
        """
        if satellite_id is None or not voice_id_allowed(self._policy(satellite_id)):
            return False
        return bool(self._speakers) or satellite_id in self._enrolling

    @callback
    def new_utterance(self, satellite_id: str) -> None:
        """Forget who spoke before at ``satellite_id``: a new utterance begins.

        Whatever this one's print says (or if it has none), the speaker of the
        one before must not be taken for its speaker.
        """
        self._latest.pop(satellite_id, None)

    @callback
    def take_print(self, satellite_id: str, context: Mapping[str, Any] | None) -> None:
        """Use the print the engine computed for ``satellite_id``'s utterance."""
        context = context or {}
        if (queue := self._enrolling.get(satellite_id)) is not None:
            queue.put_nowait(context)
            return
        if not voice_id_allowed(self._policy(satellite_id)):
            return  # the room changed mode while the utterance was transcribed
        vector = context.get(VOICE_PRINT)
        if not isinstance(vector, list):
            _LOGGER.debug(
                "No voice print for %s: %s",
                satellite_id,
                context.get(VOICE_PRINT_ERROR, "none returned"),
            )
            return
        try:
            match = identify(
                vector,
                {
                    person: speaker["print"]
                    for person, speaker in self._speakers.items()
                },
            )
        except ValueError as err:
            _LOGGER.warning("Bad voice print from the engine: %s", err)
            return
        speaker = self._speakers.get(match.person) if match.person else None
        self.note(
            satellite_id,
            Identification(
                person=match.person,
                score=match.score,
                may_run_sensitive=speaker is not None and speaker["sensitive"],
                at=time.monotonic(),
            ),
        )

    @callback
    def note(self, satellite_id: str, identification: Identification) -> None:
        """Remember who just spoke at ``satellite_id``; show it in its room."""
        self._latest[satellite_id] = identification
        rooms = self._entry.runtime_data.rooms
        if (room := rooms.room_of_entity(satellite_id)) is not None:
            room.speaker = identification.person or ""
            async_dispatcher_send(
                self.hass, signal_room_updated(self._entry, room.area_id)
            )

    @callback
    def speaker_of(self, satellite_id: str | None) -> Identification | None:
        """Who spoke the utterance being handled at ``satellite_id``, if known."""
        if satellite_id is None:
            return None
        found = self._latest.get(satellite_id)
        if found is None or time.monotonic() - found.at > IDENTIFICATION_TTL:
            return None
        return found

    # Enrolment -----------------------------------------------------------------

    async def async_enroll(
        self,
        person: str,
        satellite_id: str,
        *,
        phrases: int,
        allow_sensitive: bool,
    ) -> dict[str, Any]:
        """Enrol ``person`` from ``phrases`` prompted phrases at ``satellite_id``.

        The satellite says each prompt; the person says the wake word and the
        phrase; the engine host returns the utterance's print with its
        transcript. Only the averaged print is stored.
        """
        name = self._person_name(person)
        satellite = self._prompter(satellite_id)
        if satellite_id in self._enrolling:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="enrolment_busy",
                translation_placeholders={"satellite": satellite_id},
            )
        queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        self._enrolling[satellite_id] = queue
        try:
            prints = [
                await self._async_phrase(satellite, queue, number, phrases)
                for number in range(1, phrases + 1)
            ]
        finally:
            del self._enrolling[satellite_id]
        enrolment = enrol(prints)
        agreement = [round(value, 3) for value in enrolment.agreement]
        if enrolment.quality is EnrolmentQuality.POOR:
            await satellite.async_say(
                await async_spoken_text(self.hass, "spoken_enrolment_poor")
            )
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="enrolment_poor",
                translation_placeholders={"person": name},
            )
        self._speakers[person] = _Speaker(
            print=[round(value, 6) for value in enrolment.vector],
            phrases=phrases,
            agreement=agreement,
            quality=enrolment.quality,
            sensitive=allow_sensitive,
            enrolled=dt_util.utcnow().isoformat(),
        )
        await self._store.async_save(self._speakers)
        await satellite.async_say(
            await async_spoken_text(
                self.hass,
                f"spoken_enrolled_{enrolment.quality}",
                {"person": name},
            )
        )
        return {
            "person": person,
            "quality": str(enrolment.quality),
            "phrases": phrases,
            "agreement": agreement,
        }

    async def _async_phrase(
        self,
        satellite: _Prompter,
        queue: asyncio.Queue[Mapping[str, Any]],
        number: int,
        total: int,
    ) -> tuple[float, ...]:
        """Prompt for one phrase and return its print."""
        phrase = PHRASES[number - 1]
        key = satellite.prompt_key
        for _ in range(_PHRASE_RETRIES + 1):
            await satellite.async_prompt(
                await async_spoken_text(
                    self.hass,
                    key,
                    {"number": str(number), "total": str(total), "phrase": phrase},
                )
            )
            try:
                async with asyncio.timeout(PHRASE_TIMEOUT):
                    context = await queue.get()
            except TimeoutError:
                context = {}
            if context.get(VOICE_PRINT_ERROR) == ErrorCode.NOT_SUPPORTED:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="voice_prints_unsupported",
                )
            if isinstance(vector := context.get(VOICE_PRINT), list):
                try:
                    return normalised(vector)
                except ValueError:
                    pass
            key = "spoken_enrolment_again"
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="enrolment_not_heard",
            translation_placeholders={"number": str(number)},
        )

    def _person_name(self, person: str) -> str:
        if (
            not person.startswith("person.")
            or (state := self.hass.states.get(person)) is None
        ):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_person",
                translation_placeholders={"person": person},
            )
        return str(state.name)

    def _prompter(self, satellite_id: str) -> _Prompter:
        """Return how ``satellite_id`` prompts, in a room where enrolment may run.

        Ours, or another that can start a conversation (ask a question).
        """
        entity = self.hass.data[DATA_COMPONENT].get_entity(satellite_id)
        prompter: _Prompter
        if entity is not None and entity.platform.platform_name == DOMAIN:
            speaking: _Speaking = cast("_Speaking", entity)
            prompter = _OurSatellite(speaking)
        elif entity is not None and (
            (entity.supported_features or 0)
            & AssistSatelliteEntityFeature.START_CONVERSATION
        ):
            prompter = _AskingSatellite(entity)
        else:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="enrolment_satellite",
                translation_placeholders={"satellite": satellite_id},
            )
        policy = self._policy(satellite_id)
        if not voice_id_allowed(policy) or policy.mode is PrivacyMode.QUIET:
            # Guest and Muted: no enrolment; Quiet: the prompts cannot be said.
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="enrolment_mode",
                translation_placeholders={"mode": policy.mode},
            )
        return prompter

    async def async_forget(self, person: str) -> None:
        """Delete ``person``'s voice print."""
        if self._speakers.pop(person, None) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_enrolled",
                translation_placeholders={"person": person},
            )
        await self._store.async_save(self._speakers)
        for satellite_id, found in list(self._latest.items()):
            if found.person == person:
                del self._latest[satellite_id]
