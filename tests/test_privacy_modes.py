"""Each privacy mode on each audio path: what reaches the engines, is heard, acts.

DESIGN §3 through the real things: Home Assistant with Private Voice, the
session's engine host behind a counting proxy (``engine_proxy``: every audio
byte the engine host receives, and when), real speech from piper. The paths:

- our Wyoming satellite, always streaming (wake word in Home Assistant) and
  with its wake word on the device (the project's simulated ESP32-S3);
- a client of the public Wyoming service, on loopback, which is the address
  of the room's satellite;
- an ESPHome-like satellite of another integration with a mute switch (a fake,
  standing in for an ESP32 on ESPHome: the tests that use it say "fake").

Rooms are in the Living room; the light the command turns on is in the
Kitchen, so that Home Assistant answers in words (a command for the
satellite's own room is answered with a beep instead).
"""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
import logging
import time
from types import MappingProxyType
from typing import Any, Final, Protocol

from homeassistant.components.assist_pipeline import PipelineEventType
from homeassistant.components.assist_pipeline.models import PipelineStage
from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import (
    ATTR_ENTITY_ID,
    CONF_HOST,
    CONF_PORT,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import Event as HassEvent, HomeAssistant, callback
from homeassistant.helpers import area_registry as ar, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.tts import Synthesize

from custom_components.private_voice.chime import chime_pcm
from custom_components.private_voice.const import (
    CONF_AREA_ID,
    DOMAIN,
    SUBENTRY_SATELLITE,
)
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.protocol.satellite import SatelliteLink

from .conftest import KITCHEN_LIGHT
from .cued_satellite import CuedSatellite
from .engine_proxy import DESCRIBE, DETECT, TRANSCRIBE, EngineProxy
from .engines import (
    BYTES_PER_SECOND,
    COMMAND,
    WAKE_PHRASE,
    async_set_up_guarded,
    remote_entry,
)
from .fake_esphome import FakeEsphome, async_set_up_fake_esphome
from .protocol.simulator import Device, Fault, Firmware
from .test_assist_satellite import add_satellite, command_audio, satellite_entity
from .waiting import until
from .wyoming_client import mic_chunks, read_until

# A spoken reply lasts longer than this; the chime is shorter.
SPEECH_SECONDS: Final = 0.5
# The goal: from a mode change to the last audio byte the engines take.
CUT_GOAL_SECONDS: Final = 0.1
# Audio of a command that has reached the engines before its mode changes:
# past the lead-in silence, into the words.
MID_UTTERANCE_BYTES: Final = BYTES_PER_SECOND
# After a speaker has finished (or was stopped), how long anything late still
# has to show up at the engines.
SETTLE_SECONDS: Final = 0.3
REPLY_WITHIN: Final = 60
_LOGGER_NAME: Final = "custom_components.private_voice"
# What the transcript of COMMAND holds, however it is cased and punctuated.
TRANSCRIBED: Final = "on the kitchen light"


class Answer(StrEnum):
    """What the room hears back (DESIGN §3)."""

    SPEECH = "speech"
    CHIME = "chime"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Expected:
    """What a mode means for a voice command (DESIGN §3)."""

    # The microphone audio reaches the engines.
    heard: bool
    answer: Answer
    # The command is acted on (the light is not a sensitive action).
    acts: bool
    # A transcript may appear in a log at all (at debug only).
    transcript_loggable: bool


EXPECTED: Final = {
    PrivacyMode.NORMAL: Expected(
        heard=True, answer=Answer.SPEECH, acts=True, transcript_loggable=True
    ),
    PrivacyMode.GUEST: Expected(
        heard=True, answer=Answer.SPEECH, acts=True, transcript_loggable=False
    ),
    PrivacyMode.QUIET: Expected(
        heard=True, answer=Answer.CHIME, acts=True, transcript_loggable=True
    ),
    PrivacyMode.MUTED: Expected(
        heard=False, answer=Answer.NOTHING, acts=False, transcript_loggable=False
    ),
}


# Fixtures ----------------------------------------------------------------------


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep what the tests write (the TTS cache) out of the shared config."""
    return hass_tmp_config_dir


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    engine_proxy: EngineProxy,
    free_port: int,
    kitchen_light: str,
) -> MockConfigEntry:
    """Private Voice on the engines behind the proxy, guarded.

    Through the guard, as the pipeline the integration makes: Quiet empties
    the answers of other integrations' satellites there.
    """
    return await async_set_up_guarded(
        hass, hass_ws_client, engine_proxy.endpoint, free_port
    )


@pytest.fixture
def room(area_registry: ar.AreaRegistry) -> str:
    """Return the id of the area the satellites are put in."""
    return area_registry.async_create("Living room").id


type StartCued = Callable[..., Awaitable[CuedSatellite]]


@pytest.fixture
async def start_cued(socket_enabled: None) -> AsyncIterator[StartCued]:
    """Start simulated satellites that speak when cued; stopped after the test."""
    started: list[CuedSatellite] = []

    async def _start(
        mic_audio: bytes = b"", device: Device | None = None, *, paced: bool = False
    ) -> CuedSatellite:
        satellite = CuedSatellite(mic_audio, device, paced=paced)
        await satellite.start()
        started.append(satellite)
        return satellite

    yield _start
    for satellite in started:
        await satellite.stop()


@pytest.fixture
async def seen(hass: HomeAssistant) -> dict[str, list[str]]:
    """Every state each entity passes through during the test, in order."""
    history: dict[str, list[str]] = defaultdict(list)

    @callback
    def _record(event: HassEvent[Any]) -> None:
        if (new := event.data["new_state"]) is not None:
            history[event.data["entity_id"]].append(new.state)

    hass.bus.async_listen(EVENT_STATE_CHANGED, _record)
    return history


@dataclass(frozen=True)
class Cut:
    """What the engines got of a stream in flight when its room's mode changed."""

    # The stream's last audio chunk at the engines, in seconds from the change
    # (negative: it came before the change, and nothing after it).
    last_chunk: float
    chunks_after: int
    # When Home Assistant ended the stream, in seconds from the change.
    ended: float

    @property
    def latency(self) -> float:
        """From the change to the last audio byte the engines accepted."""
        return max(0.0, self.last_chunk)


@pytest.fixture(scope="module")
def cuts(pytestconfig: pytest.Config) -> Iterator[dict[str, Cut]]:
    """Collect what each path's cut measured; print it after the tests."""
    figures: dict[str, Cut] = {}
    yield figures
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not figures:
        return
    reporter.write_line("")
    reporter.write_line(
        "mode change mid-utterance: change -> last audio byte accepted by the "
        "engine host (last chunk relative to the change; chunks after it; "
        "stream ended)"
    )
    for case, cut in sorted(figures.items()):
        reporter.write_line(
            f"  {case:32} {cut.latency * 1000:6.1f} ms "
            f"(last chunk {cut.last_chunk * 1000:+7.1f} ms, "
            f"{cut.chunks_after} after; ended {cut.ended * 1000:+7.1f} ms)"
        )


# Helpers -------------------------------------------------------------------------


def room_entity(
    hass: HomeAssistant, entry: MockConfigEntry, domain: str, area_id: str, key: str
) -> str:
    """Return the id of one of a room's entities, by its key."""
    found = er.async_get(hass).async_get_entity_id(
        domain, DOMAIN, f"{entry.entry_id}-room-{area_id}-{key}"
    )
    assert found is not None, (domain, area_id, key)
    return found


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return the state of ``entity_id``, which must exist."""
    found = hass.states.get(entity_id)
    assert found is not None, entity_id
    return found.state


async def select_mode(
    hass: HomeAssistant, entry: MockConfigEntry, area_id: str, mode: PrivacyMode
) -> None:
    """Choose the room's mode as the UI does."""
    select = room_entity(hass, entry, Platform.SELECT, area_id, "privacy_mode")
    await hass.services.async_call(
        Platform.SELECT,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: select, ATTR_OPTION: mode},
        blocking=True,
    )
    assert state(hass, select) == mode


def assert_room_counted(  # noqa: PLR0913 - what to expect, by name
    hass: HomeAssistant,
    entry: MockConfigEntry,
    area_id: str,
    *,
    seen: dict[str, list[str]],
    heard: bool,
    streaming: bool = False,
) -> None:
    """Check the room's sensors: requests and audio counted only if heard.

    Listening was on while the audio flowed, and is off now, unless the
    satellite goes on ``streaming`` (to the wake word engine).
    """
    requests_today = room_entity(
        hass, entry, Platform.SENSOR, area_id, "requests_today"
    )
    audio = room_entity(hass, entry, Platform.SENSOR, area_id, "audio_today")
    offhub = room_entity(hass, entry, Platform.SENSOR, area_id, "offhub_audio")
    listening = room_entity(hass, entry, Platform.BINARY_SENSOR, area_id, "listening")
    assert (int(state(hass, requests_today)) >= 1) is heard
    assert (float(state(hass, audio)) > 0) is heard
    # Nothing leaves the hub: every engine is local.
    assert state(hass, offhub) == "0"
    assert (STATE_ON in seen[listening]) is heard
    if not streaming:
        assert state(hass, listening) == STATE_OFF


def assert_transcript_not_logged(
    caplog: pytest.LogCaptureFixture, *, loggable: bool
) -> None:
    """Check the command's words: never above debug; in Guest and Muted, never.

    In no one's log: Home Assistant's own pipeline and conversation included.
    """
    said = [
        record
        for record in caplog.records
        if TRANSCRIBED in record.getMessage().lower()
    ]
    assert [record for record in said if record.levelno > logging.DEBUG] == []
    if not loggable:
        assert [f"{r.name}: {r.getMessage()}" for r in said] == []


# Our Wyoming satellite ------------------------------------------------------------


async def add_cued_satellite(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    satellite: CuedSatellite,
    area_id: str,
) -> str:
    """Add the satellite in ``area_id``; return its entity id once connected."""
    subentry_id = await add_satellite(hass, entry, satellite, area_id)
    entity_id = satellite_entity(hass, subentry_id)
    await until(lambda: state(hass, entity_id) != STATE_UNAVAILABLE)
    return entity_id


def link_of(entry: MockConfigEntry, satellite: CuedSatellite) -> SatelliteLink:
    """Return the hub's link to ``satellite``."""
    links: dict[str, SatelliteLink] = entry.runtime_data.satellites
    [link] = [link for link in links.values() if link.endpoint == satellite.endpoint]
    return link


FIRMWARES: Final = {
    Firmware.ALWAYS_STREAMING: (WAKE_PHRASE, COMMAND),
    Firmware.ON_DEVICE_WAKE: (COMMAND,),
}


@pytest.mark.parametrize("mode", list(PrivacyMode))
@pytest.mark.parametrize("firmware", list(FIRMWARES))
async def test_wyoming_satellite_in_each_mode(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    entry: MockConfigEntry,
    room: str,
    engine_proxy: EngineProxy,
    start_cued: StartCued,
    seen: dict[str, list[str]],
    caplog: pytest.LogCaptureFixture,
    firmware: Firmware,
    mode: PrivacyMode,
) -> None:
    """Our satellite is spoken to in a room in ``mode``.

    Its firmware goes on streaming when paused: whatever it sends in Muted
    is refused by the hub itself.
    """
    caplog.set_level(logging.DEBUG)
    expected = EXPECTED[mode]
    audio = command_audio(*FIRMWARES[firmware])
    satellite = await start_cued(
        audio, Device(firmware=firmware, fault=Fault.IGNORES_PAUSE)
    )
    entity_id = await add_cued_satellite(hass, entry, satellite, room)
    await select_mode(hass, entry, room, mode)
    if mode is PrivacyMode.MUTED:
        await until(
            lambda: PauseSatellite().event().type in satellite.recording.types()
        )

    satellite.cue()

    link = link_of(entry, satellite)
    if expected.answer is Answer.NOTHING:
        chunks = -(-len(audio) // satellite.chunk_bytes)
        await until(lambda: link.refused_chunks >= chunks, within=REPLY_WITHIN)
    else:
        await until(lambda: satellite.recording.played >= 1, within=REPLY_WITHIN)
    await until(lambda: state(hass, entity_id) == AssistSatelliteState.IDLE)
    await hass.async_block_till_done()

    # What reached the engines.
    assert (engine_proxy.audio_bytes(TRANSCRIBE) > BYTES_PER_SECOND) is expected.heard
    if firmware is Firmware.ALWAYS_STREAMING:
        assert (engine_proxy.audio_bytes(DETECT) > 0) is expected.heard
    if not expected.heard:
        assert engine_proxy.audio_bytes() == 0
        assert engine_proxy.of(TRANSCRIBE) == []
        assert engine_proxy.of(DETECT) == []
    assert bool(engine_proxy.speech()) is (expected.answer is Answer.SPEECH)
    # What the satellite heard.
    replies = satellite.recording.replies
    match expected.answer:
        case Answer.SPEECH:
            [reply] = replies
            fmt = reply.start
            assert len(reply.audio) > SPEECH_SECONDS * fmt.rate * fmt.width
        case Answer.CHIME:
            [reply] = replies
            assert reply.audio == chime_pcm()
        case Answer.NOTHING:
            assert replies == []
            assert satellite.recording.played == 0
    if mode is PrivacyMode.MUTED:
        # Told to stop; it did not, and none of it was even looked at.
        types = satellite.recording.types()
        pause, run = PauseSatellite().event().type, RunSatellite().event().type
        assert run not in types[types.index(pause) :]
    # What acted, and what the entities show.
    assert (state(hass, KITCHEN_LIGHT) == STATE_ON) is expected.acts
    assert (AssistSatelliteState.LISTENING in seen[entity_id]) is expected.heard
    assert_room_counted(
        hass,
        entry,
        room,
        seen=seen,
        heard=expected.heard,
        streaming=firmware is Firmware.ALWAYS_STREAMING,
    )
    assert_transcript_not_logged(caplog, loggable=expected.transcript_loggable)
    # Where it may, our satellite logs what it heard at debug: the check above
    # would see a transcript.
    assert any(
        record.name.startswith(_LOGGER_NAME)
        and TRANSCRIBED in record.getMessage().lower()
        for record in caplog.records
    ) is (expected.transcript_loggable)


# The public Wyoming service ----------------------------------------------------------


async def transcribe_at_service(
    port: int, audio: bytes, *, paced: bool = False
) -> list[Event]:
    """Send ``audio`` to be transcribed; return the answer (transcript or error).

    ``paced``: each chunk once it has been said. The client stops sending
    once it has its answer.
    """
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        answer = asyncio.create_task(
            read_until(client, Transcript(text="").event().type)
        )
        try:
            for chunk in mic_chunks(audio):
                if answer.done():
                    break
                await client.write_event(chunk)
                pause = len(chunk.payload or b"") / BYTES_PER_SECOND if paced else 0
                await asyncio.sleep(pause)
            else:
                await client.write_event(AudioStop().event())
            return await answer
        finally:
            answer.cancel()
            await asyncio.gather(answer, return_exceptions=True)


async def synthesize_at_service(port: int, text: str) -> list[Event]:
    """Ask for ``text`` to be spoken; return the answer (audio or error)."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        return await read_until(client, AudioStop().event().type)


def error_code(events: list[Event]) -> str | None:
    """Return the code of the error that ends ``events``; None if none does."""
    if events and Error.is_type(events[-1].type):
        return Error.from_event(events[-1]).code
    return None


@pytest.mark.parametrize("mode", list(PrivacyMode))
async def test_service_client_in_each_mode(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    entry: MockConfigEntry,
    room: str,
    engine_proxy: EngineProxy,
    start_cued: StartCued,
    seen: dict[str, list[str]],
    caplog: pytest.LogCaptureFixture,
    mode: PrivacyMode,
) -> None:
    """A Wyoming client at the room's satellite's address uses the service.

    It is on loopback, as the room's satellite is: its room is that room.
    """
    caplog.set_level(logging.DEBUG)
    expected = EXPECTED[mode]
    await add_cued_satellite(hass, entry, await start_cued(), room)
    await select_mode(hass, entry, room, mode)
    port = entry.runtime_data.service.port
    audio = command_audio(COMMAND)

    transcribed = await transcribe_at_service(port, audio)
    spoken = await synthesize_at_service(port, "Dinner is ready.")
    await hass.async_block_till_done()

    if expected.heard:
        assert "kitchen" in Transcript.from_event(transcribed[-1]).text.lower()
        # Every chunk passed on as it came.
        assert engine_proxy.audio_bytes(TRANSCRIBE) == len(audio)
    else:
        assert error_code(transcribed) == "muted"
        assert engine_proxy.audio_bytes() == 0
        assert engine_proxy.of(TRANSCRIBE) == []
    if expected.answer is Answer.SPEECH:
        assert AudioStop().event().type in [event.type for event in spoken]
        [speech] = engine_proxy.speech()
        assert speech.texts == ["Dinner is ready."]
    else:
        # No spoken replies in the room (a chime is for a satellite to play).
        assert error_code(spoken) == ("muted" if mode is PrivacyMode.MUTED else "quiet")
        assert engine_proxy.speech() == []
    assert_room_counted(hass, entry, room, seen=seen, heard=expected.heard)
    assert_transcript_not_logged(caplog, loggable=expected.transcript_loggable)


# An ESPHome-like satellite of another integration ------------------------------


FAKE_ESPHOME_CASES: Final = [
    pytest.param(
        mode,
        True,
        PipelineStage.STT,
        id=f"{mode}-on-device-wake",
    )
    for mode in PrivacyMode
] + [
    pytest.param(
        PrivacyMode.MUTED,
        False,
        PipelineStage.STT,
        id="muted-ignores-mute-on-device-wake",
    ),
    pytest.param(
        PrivacyMode.NORMAL, True, PipelineStage.WAKE_WORD, id="normal-wake-in-hub"
    ),
    pytest.param(
        PrivacyMode.MUTED,
        False,
        PipelineStage.WAKE_WORD,
        id="muted-ignores-mute-wake-in-hub",
    ),
]


@pytest.mark.parametrize(("mode", "honours_mute", "start_stage"), FAKE_ESPHOME_CASES)
async def test_fake_esphome_satellite_in_each_mode(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    entry: MockConfigEntry,
    room: str,
    engine_proxy: EngineProxy,
    seen: dict[str, list[str]],
    caplog: pytest.LogCaptureFixture,
    mode: PrivacyMode,
    honours_mute: bool,  # noqa: FBT001 - a parameter of the test
    start_stage: PipelineStage,
) -> None:
    """A fake ESPHome satellite is spoken to in a room in ``mode``.

    In Muted its mute switch is turned on; one that ignores its switch still
    gets nothing through to the engines: our providers refuse the room's audio.
    """
    caplog.set_level(logging.DEBUG)
    fake = await async_set_up_fake_esphome(hass, room, honours_mute=honours_mute)
    expected = EXPECTED[mode]
    await select_mode(hass, entry, room, mode)
    if mode is PrivacyMode.MUTED:
        await until(lambda: state(hass, fake.mute_id) == STATE_ON)
    wakes_in_hub = start_stage is PipelineStage.WAKE_WORD
    spoken = (WAKE_PHRASE, COMMAND) if wakes_in_hub else (COMMAND,)

    # Wake words are listened for as they are said.
    fake.satellite.say(
        command_audio(*spoken), start_stage=start_stage, paced=wakes_in_hub
    )

    await asyncio.wait_for(fake.satellite.pipeline_done.wait(), REPLY_WITHIN)
    if expected.answer is Answer.SPEECH:
        await until(lambda: fake.satellite.heard, within=REPLY_WITHIN)
    await until(lambda: state(hass, fake.satellite_id) == AssistSatelliteState.IDLE)
    await hass.async_block_till_done()

    assert (engine_proxy.audio_bytes(TRANSCRIBE) > BYTES_PER_SECOND) is expected.heard
    if not expected.heard:
        assert engine_proxy.audio_bytes() == 0
    heard = fake.satellite.heard
    match expected.answer:
        case Answer.SPEECH:
            [reply] = heard
            assert len(reply) > SPEECH_SECONDS * BYTES_PER_SECOND
            assert len(engine_proxy.speech()) == 1
        case Answer.CHIME:
            # No speech in a Quiet room: at most a short sound.
            assert engine_proxy.speech() == []
            assert all(
                len(reply) < SPEECH_SECONDS * BYTES_PER_SECOND for reply in heard
            )
        case Answer.NOTHING:
            assert heard == []
            assert engine_proxy.speech() == []
            assert PipelineEventType.TTS_START not in fake.satellite.event_types
    assert (state(hass, fake.mute_id) == STATE_ON) is (mode is PrivacyMode.MUTED)
    assert (state(hass, KITCHEN_LIGHT) == STATE_ON) is expected.acts
    if honours_mute:
        assert (AssistSatelliteState.LISTENING in seen[fake.satellite_id]) is (
            expected.heard
        )
    assert_room_counted(hass, entry, room, seen=seen, heard=expected.heard)
    assert_transcript_not_logged(caplog, loggable=expected.transcript_loggable)


@pytest.mark.parametrize("muted_before", [False, True], ids=["unmuted", "user-muted"])
async def test_muted_room_turns_the_fake_esphome_mute_switch_on_and_restores_it(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    room: str,
    muted_before: bool,  # noqa: FBT001 - a parameter of the test
) -> None:
    """Muted turns the switch on; Normal turns it off, unless it was on before."""
    fake = await async_set_up_fake_esphome(hass, room, muted=muted_before)
    before = STATE_ON if muted_before else STATE_OFF
    assert state(hass, fake.mute_id) == before

    await select_mode(hass, entry, room, PrivacyMode.MUTED)
    await until(lambda: state(hass, fake.mute_id) == STATE_ON)

    # Any mode that takes audio: the switch is as the user left it.
    await select_mode(hass, entry, room, PrivacyMode.QUIET)
    await hass.async_block_till_done()
    assert state(hass, fake.mute_id) == before


# A mode change mid-utterance ---------------------------------------------------


class Path(StrEnum):
    """Where the words come from."""

    ALWAYS_STREAMING = "always-streaming"
    ON_DEVICE_WAKE = "on-device-wake"
    SERVICE_CLIENT = "service-client"
    FAKE_ESPHOME = "fake-esphome"


class Speaker(Protocol):
    """Someone speaking on one path, at the pace of speech."""

    async def start(self) -> None:
        """Begin the utterance."""

    def done(self) -> bool:
        """Whether the utterance is over: all said, or the speaker was stopped."""

    def answered(self) -> bool:
        """Whether anything was said or shown back."""


class SatelliteSpeaker:
    """Speaks to our Wyoming satellite."""

    def __init__(self, satellite: CuedSatellite) -> None:
        """Speak through ``satellite``."""
        self.satellite = satellite

    async def start(self) -> None:
        """Cue the satellite."""
        self.satellite.cue()

    def done(self) -> bool:
        """All said, or told to stop streaming."""
        return self.satellite.said_all.is_set() or (
            PauseSatellite().event().type in self.satellite.recording.types()
        )

    def answered(self) -> bool:
        """Any reply or chime played."""
        return bool(self.satellite.recording.replies)


class ServiceSpeaker:
    """A Wyoming client of the public service, streaming a command to transcribe."""

    def __init__(self, port: int, audio: bytes) -> None:
        """Stream ``audio`` to the service on ``port``."""
        self._port = port
        self._audio = audio
        self.task: asyncio.Task[list[Event]] | None = None

    async def start(self) -> None:
        """Start streaming."""
        self.task = asyncio.create_task(
            transcribe_at_service(self._port, self._audio, paced=True)
        )

    def done(self) -> bool:
        """Whether the service answered (or refused), and the client stopped."""
        return self.task is not None and self.task.done()

    def answered(self) -> bool:
        """Whether a transcript came back."""
        assert self.task is not None
        return any(Transcript.is_type(event.type) for event in self.task.result())


class FakeEsphomeSpeaker:
    """Speaks to the fake ESPHome satellite (its wake word on the device)."""

    def __init__(self, fake: FakeEsphome, audio: bytes) -> None:
        """Speak ``audio`` through ``fake``."""
        self.fake = fake
        self._audio = audio

    async def start(self) -> None:
        """Start the pipeline and the microphone."""
        self.fake.satellite.say(self._audio, paced=True)

    def done(self) -> bool:
        """All said (or muted), and the pipeline over."""
        satellite = self.fake.satellite
        return satellite.said_all.is_set() and satellite.pipeline_done.is_set()

    def answered(self) -> bool:
        """Any text-to-speech begun, or anything played."""
        satellite = self.fake.satellite
        return bool(satellite.heard) or (
            PipelineEventType.TTS_START in satellite.event_types
        )


async def speaker_on(
    path: Path,
    hass: HomeAssistant,
    entry: MockConfigEntry,
    area_id: str,
    start_cued: StartCued,
) -> Speaker:
    """Put a speaker on ``path`` in the room, ready to start."""
    match path:
        case Path.ALWAYS_STREAMING | Path.ON_DEVICE_WAKE:
            firmware = Firmware(path.value)
            satellite = await start_cued(
                command_audio(*FIRMWARES[firmware]),
                Device(firmware=firmware),
                paced=True,
            )
            await add_cued_satellite(hass, entry, satellite, area_id)
            return SatelliteSpeaker(satellite)
        case Path.SERVICE_CLIENT:
            # The client is at the address of the room's (silent) satellite.
            await add_cued_satellite(hass, entry, await start_cued(), area_id)
            port = entry.runtime_data.service.port
            return ServiceSpeaker(port, command_audio(COMMAND))
        case Path.FAKE_ESPHOME:
            fake = await async_set_up_fake_esphome(hass, area_id)
            return FakeEsphomeSpeaker(fake, command_audio(COMMAND))


CUT_CASES: Final = [
    pytest.param(path, target, id=f"{path}-{target}")
    for path in Path
    for target in (PrivacyMode.GUEST, PrivacyMode.MUTED)
]


@pytest.mark.parametrize(("path", "target"), CUT_CASES)
async def test_mode_change_mid_utterance_cuts_the_stream(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    entry: MockConfigEntry,
    room: str,
    engine_proxy: EngineProxy,
    start_cued: StartCued,
    cuts: dict[str, Cut],
    path: Path,
    target: PrivacyMode,
) -> None:
    """The room's mode changes while the command is being said.

    Nothing of the stream in flight reaches the engines after the change
    (but what was already on its way); no new transcription starts; the
    command is not acted on and nothing is said back. Guest takes audio too:
    the stream is cut because the mode changed, not because it is refused.
    """
    speaker = await speaker_on(path, hass, entry, room, start_cued)
    await speaker.start()
    await until(
        lambda: engine_proxy.audio_bytes(TRANSCRIBE) >= MID_UTTERANCE_BYTES,
        within=REPLY_WITHIN,
    )

    # Changed directly (the select is tested above): the moment is exact.
    changed = time.monotonic()
    entry.runtime_data.rooms.async_set_policy(room, mode=target)

    await until(speaker.done, within=REPLY_WITHIN)
    await asyncio.sleep(SETTLE_SECONDS)
    await hass.async_block_till_done()

    [stream] = engine_proxy.in_flight(changed)
    assert stream.ended is not None
    late = [chunk for chunk in stream.chunks if chunk.at > changed]
    cut = Cut(
        last_chunk=stream.chunks[-1].at - changed,
        chunks_after=len(late),
        ended=stream.ended - changed,
    )
    cuts[f"{path} -> {target}"] = cut
    # Only what was already on its way when the mode changed.
    assert cut.latency < CUT_GOAL_SECONDS
    assert [c for c in engine_proxy.of(TRANSCRIBE) if c.opened > changed] == []
    if target is PrivacyMode.MUTED:
        # Nothing at all: no new stream either (not even for a wake word).
        assert engine_proxy.chunks_after(changed) == late
    else:
        # Only a new stream, begun under the new mode, listening for a wake word.
        assert {c.request for c in engine_proxy.connections if c.opened > changed} <= {
            DETECT,
            DESCRIBE,
        }
    assert state(hass, KITCHEN_LIGHT) == STATE_OFF
    assert not speaker.answered()
    assert engine_proxy.speech() == []


# Restarts ----------------------------------------------------------------------


def events_of_last_connection(satellite: CuedSatellite, since: int) -> list[str]:
    """Types of the events of the satellite's newest connection, after ``since``."""
    types = satellite.recording.types()[since:]
    describe = types.index("describe")
    return types[describe:]


@pytest.mark.parametrize("saved", [True, False], ids=["saved", "at-once"])
async def test_muted_room_stays_muted_after_a_reload(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    room: str,
    engine_proxy: EngineProxy,
    start_cued: StartCued,
    saved: bool,  # noqa: FBT001 - a parameter of the test
) -> None:
    """Reloaded, the room is Muted: our satellite paused from its new connection.

    Once the change is saved, or at once. The fake ESPHome satellite's switch
    stays on, and is still turned off once the room takes audio again: the
    hub remembers it turned it on.
    """
    satellite = await start_cued(command_audio(COMMAND), Device())
    await add_cued_satellite(hass, entry, satellite, room)
    fake = await async_set_up_fake_esphome(hass, room)
    await select_mode(hass, entry, room, PrivacyMode.MUTED)
    pause, run = PauseSatellite().event().type, RunSatellite().event().type
    await until(lambda: pause in satellite.recording.types())
    await until(lambda: state(hass, fake.mute_id) == STATE_ON)
    if saved:  # a second after the change
        stored = f"{DOMAIN}.{entry.entry_id}.rooms"
        await until(
            lambda: (
                stored in hass_storage
                and hass_storage[stored]["data"]["rooms"][room]["mode"]
                == PrivacyMode.MUTED
            )
        )
    since = len(satellite.recording.events)
    connections = satellite.recording.connections

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()

    select = room_entity(hass, entry, Platform.SELECT, room, "privacy_mode")
    assert state(hass, select) == PrivacyMode.MUTED
    await until(lambda: "describe" in satellite.recording.types()[since:])
    await until(lambda: pause in events_of_last_connection(satellite, since))
    assert satellite.recording.connections == connections + 1
    assert run not in events_of_last_connection(satellite, since)
    assert state(hass, fake.mute_id) == STATE_ON
    assert engine_proxy.audio_bytes() == 0

    # The room takes audio again: both satellites listen, the command acts.
    satellite.cue()
    await select_mode(hass, entry, room, PrivacyMode.NORMAL)
    await until(lambda: state(hass, fake.mute_id) == STATE_OFF)
    await until(lambda: state(hass, KITCHEN_LIGHT) == STATE_ON, within=REPLY_WITHIN)
    assert run in events_of_last_connection(satellite, since)


async def test_fresh_start_with_a_stored_muted_room_never_runs_the_satellite(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    engine_proxy: EngineProxy,
    free_port: int,
    room: str,
    start_cued: StartCued,
) -> None:
    """Home Assistant starts with the room stored as Muted.

    The satellite, whose speaker talks as soon as it is let, is told
    ``pause-satellite`` on its first connection and never ``run-satellite``.
    """
    satellite = await start_cued(command_audio(COMMAND), Device())
    satellite.cue()
    entry = remote_entry(engine_proxy.endpoint, free_port)
    entry.add_to_hass(hass)
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                {CONF_HOST: "127.0.0.1", CONF_PORT: satellite.port, CONF_AREA_ID: room}
            ),
            subentry_type=SUBENTRY_SATELLITE,
            title="Living room satellite",
            unique_id=f"127.0.0.1:{satellite.port}",
        ),
    )
    hass_storage[f"{DOMAIN}.{entry.entry_id}.rooms"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.rooms",
        "data": {
            "rooms": {room: {"mode": PrivacyMode.MUTED.value}},
            "muted_switches": {},
        },
    }

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: PauseSatellite().event().type in satellite.recording.types())
    await asyncio.sleep(SETTLE_SECONDS)

    select = room_entity(hass, entry, Platform.SELECT, room, "privacy_mode")
    assert state(hass, select) == PrivacyMode.MUTED
    assert satellite.recording.connections == 1
    assert RunSatellite().event().type not in satellite.recording.types()
    assert satellite.recording.streamed == 0
    assert engine_proxy.audio_bytes() == 0
