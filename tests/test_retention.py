"""Retention (DESIGN §3): what a room's voice leaves behind, which must be nothing.

Home Assistant runs the engine host as its own child process (engine mode
local, as an installed Private Voice does), so the host's output is Home
Assistant's log; the satellite is the project's simulator of ESP32-S3 firmware,
a real Wyoming server on 127.0.0.1; speech is piper's.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address
import logging
import os
from pathlib import Path
import re
import stat
import tempfile

from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.config_entries import SOURCE_ZEROCONF
from homeassistant.const import CONF_PORT, STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)
from wyoming.asr import Transcript

from custom_components.private_voice.const import (
    CONF_AREA_ID,
    CONF_ENGINE_MODE,
    CONF_ENGINE_PORT,
    CONF_LANGUAGE,
    CONF_STT_MODEL,
    CONF_VOICE,
    DOMAIN,
    LOGGER,
    EngineMode,
)
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.protocol.satellite import SatelliteLink

from .conftest import KITCHEN_LIGHT, StartSatellite
from .engines import COMMAND, WAKE_PHRASE, async_create_pipeline
from .protocol.simulator import Device, Firmware, SimulatedSatellite
from .test_assist_satellite import add_satellite, command_audio, satellite_entity
from .waiting import until

# A run is wake word (or not), speech-to-text, intent and a spoken reply.
RUN = 60
# Slices of the sent audio looked for in every file: 32 ms of it every 128 ms,
# so that any file holding more than 160 ms of it in a row is found.
PROBE_BYTES = 1024
PROBE_STEP = 4096
# Where Home Assistant's text-to-speech keeps its file cache, in the config.
TTS_CACHE = "tts"
# wyoming-satellite names its zeroconf service after the MAC address.
MAC_NAME = "0a1b2c3d4e5f"
_MAC = re.compile(
    r"(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}|(?<![0-9a-z])[0-9a-f]{12}(?![0-9a-z])",
    re.IGNORECASE,
)


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Give each test a configuration folder of its own, which it inspects."""
    return hass_tmp_config_dir


@pytest.fixture
def local_entry(free_port: int, unused_tcp_port: int) -> MockConfigEntry:
    """Return an entry whose engine host is Home Assistant's child, not yet added."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Private Voice",
        unique_id=DOMAIN,
        data={
            CONF_LANGUAGE: "en",
            CONF_PORT: unused_tcp_port,
            CONF_ENGINE_MODE: EngineMode.LOCAL,
            CONF_ENGINE_PORT: free_port,
            CONF_STT_MODEL: "tiny.en",
            CONF_VOICE: "en_US-joe-medium",
        },
    )


async def _async_start(
    hass: HomeAssistant, ws_client: WebSocketGenerator, entry: MockConfigEntry
) -> None:
    """Set the entry up (its engine host starts) with its pipeline preferred."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await async_create_pipeline(hass, await ws_client(hass), entry, preferred=True)


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    local_entry: MockConfigEntry,
) -> MockConfigEntry:
    """Return the local entry, set up, its pipeline the preferred one."""
    await _async_start(hass, hass_ws_client, local_entry)
    return local_entry


def _area(hass: HomeAssistant, name: str = "Kitchen") -> str:
    """Return the id of the area ``name``, made if need be."""
    return ar.async_get(hass).async_get_or_create(name).id


def _transcripts(satellite: SimulatedSatellite) -> list[str]:
    """Return what the satellite was told it said, run by run."""
    return [
        Transcript.from_event(event).text
        for event in satellite.recording.of_type("transcript")
    ]


async def _until_idle(hass: HomeAssistant, entity_id: str) -> None:
    await until(
        lambda: hass.states.get(entity_id).state == AssistSatelliteState.IDLE,
        within=RUN,
    )


# Files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime_ns: int


def _snapshot(roots: Iterable[Path], skip: set[Path]) -> dict[Path, _Seen]:
    """Every regular file below ``roots``, but below ``skip``; links not followed."""
    found: dict[Path, _Seen] = {}
    pending = [root for root in roots if root not in skip]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # gone, or not a folder to read
        for item in entries:
            path = Path(item.path)
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue  # gone since it was listed
            if stat.S_ISDIR(info.st_mode) and path not in skip:
                pending.append(path)
            elif stat.S_ISREG(info.st_mode):
                found[path] = _Seen(info.st_size, info.st_mtime_ns)
    return found


def _container(data: bytes) -> str | None:
    """Name the audio format ``data`` is in, if it is in one."""
    if b"WAVEfmt " in data:  # RIFF/WAVE, wherever it is
        return "wav"
    if data.startswith(b"fLaC"):
        return "flac"
    if data.startswith(b"OggS"):
        return "ogg"
    if data.startswith(b"ID3") or (
        len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0
    ):
        return "mp3"
    return None


def _this_run_only(audio: bytes) -> bytes:
    """Add a faint noise (±2 of 32768) of this run's own: nobody else sends it.

    Other tests and benches on this machine say the same sentences with the
    same voice, and may write them where this test looks.
    """
    samples = np.frombuffer(audio, dtype=np.int16).astype(np.int32)
    noise = np.random.default_rng().integers(-2, 3, samples.size)
    return np.clip(samples + noise, -32768, 32767).astype(np.int16).tobytes()


def _probes(audio: bytes) -> list[bytes]:
    """Return a slice of ``audio`` every ``PROBE_STEP`` bytes.

    Any run of ``audio`` longer than ``PROBE_STEP + PROBE_BYTES`` holds one.
    """
    return [
        audio[start : start + PROBE_BYTES]
        for start in range(0, len(audio) - PROBE_BYTES + 1, PROBE_STEP)
    ]


def _wav_pcm(data: bytes) -> bytes:
    """Return the samples of a WAV file, also of one written as a stream.

    A streamed WAV's header cannot know its length: all after ``data`` is audio.
    """
    offset = 12  # RIFF, its size, WAVE
    while offset + 8 <= len(data):
        chunk = data[offset : offset + 4]
        if chunk == b"data":
            return data[offset + 8 :]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        offset += 8 + size + size % 2  # chunks are padded to an even length
    return b""


def _cwd(pid: int) -> Path:
    """Return the working folder of process ``pid``."""
    return Path(f"/proc/{pid}/cwd").readlink()


def _read(paths: Iterable[Path]) -> dict[Path, bytes]:
    """Return the files' contents; one gone again (another program's) is left out."""
    found = {}
    for path in paths:
        try:
            found[path] = path.read_bytes()
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class _Folders:
    """Where a run might write: the process's own folders, and the shared one."""

    config: Path
    cwd: Path
    tmp: Path
    # The machine's temporary folder, but other test sessions' folders in it.
    shared: Path
    skip: frozenset[Path]

    @property
    def own(self) -> list[Path]:
        """The folders only this test's processes write in."""
        return [self.config, self.cwd, self.tmp]

    def changed(self, before: dict[Path, _Seen]) -> dict[Path, bytes]:
        """Return the files new or changed since ``before``, with their contents."""
        after = self.snapshot()
        return _read(path for path, seen in after.items() if before.get(path) != seen)

    def snapshot(self) -> dict[Path, _Seen]:
        """Return every file in all the folders, with its size and time."""
        return _snapshot([*self.own, self.shared], set(self.skip))


@pytest.fixture
def folders(
    hass_config_dir: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> _Folders:
    """Give Home Assistant and its children a working and a temporary folder.

    Their own: other programs on this machine write in the shared ones
    meanwhile (speech among it). Asked for before ``entry``, so that the
    engine host starts in them.
    """
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    shared = Path(tempfile.gettempdir())
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    ours = tmp_path_factory.getbasetemp()
    skip = {folder for folder in ours.parent.iterdir() if folder != ours}
    return _Folders(Path(hass_config_dir), cwd, tmp, shared, frozenset(skip))


@pytest.mark.parametrize(
    "room",
    [
        # Home Assistant answers a command on the room's own devices with a beep.
        "Kitchen",
        # Elsewhere, with speech from the pipeline's text-to-speech.
        "Living room",
    ],
    ids=["beep", "spoken"],
)
@pytest.mark.usefixtures("kitchen_light")
async def test_pipeline_run_leaves_no_audio_on_disk(
    hass: HomeAssistant,
    folders: _Folders,
    entry: MockConfigEntry,
    start_satellite: StartSatellite,
    room: str,
) -> None:
    """Wake word, speech-to-text, intent, reply: no file holds the room's audio.

    Asserted, for every file new or changed during the run below the
    configuration folder, the working and the temporary folder of Home
    Assistant and of the engine host: it does not hold the audio the satellite
    sent (no run of more than 160 ms of it, byte for byte), and it is in no
    audio format (no RIFF/WAVE, FLAC, Ogg or MP3), not even in Home
    Assistant's text-to-speech file cache (``<config>/tts``), which the
    satellite's replies are kept out of.
    The machine's temporary folder (``/tmp``), where other programs write
    meanwhile, is searched for the room's audio only.

    Not asserted: audio kept in another encoding (resampled, float), below
    other test sessions' folders, or anywhere else.
    """
    process = entry.runtime_data.process
    assert process is not None
    assert process.pid is not None
    assert _cwd(process.pid) == folders.cwd
    before = folders.snapshot()

    mic_audio = _this_run_only(command_audio(WAKE_PHRASE, COMMAND))
    # No speaker format: the reply is piper's own, as the TTS cache keeps it.
    satellite = await start_satellite(
        mic_audio, Device(firmware=Firmware.ALWAYS_STREAMING)
    )
    await add_satellite(hass, entry, satellite, _area(hass, room))
    await until(lambda: satellite.recording.played >= 1, within=RUN)
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_ON
    assert satellite.recording.of_type("detection")
    reply = satellite.recording.replies[0].audio
    # Stop everything (the satellite first: it would start the next run), and
    # wait for what Home Assistant writes in the background.
    await satellite.stop()
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    written = folders.changed(before)

    probes = _probes(mic_audio)
    assert [
        path for path, data in written.items() if any(p in data for p in probes)
    ] == []
    audio = {
        path: data
        for path, data in written.items()
        if any(path.is_relative_to(own) for own in folders.own)
        and _container(data) is not None
    }
    # Not even the spoken reply: Home Assistant's TTS file cache is kept off.
    assert audio == {}
    assert reply


# Logs -----------------------------------------------------------------------------


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _saying(records: Iterable[logging.LogRecord], text: str) -> list[logging.LogRecord]:
    """Return the records whose message holds ``text`` (case and punctuation aside)."""
    words = _words(text)
    return [record for record in records if words in _words(record.getMessage())]


async def _async_stop(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload the entry: its engine host stops, and all it wrote is logged."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _engine_host(records: Iterable[logging.LogRecord]) -> list[logging.LogRecord]:
    """Return the engine host's lines, which Home Assistant logs for it."""
    prefix = f"{LOGGER.name}.engine_host"
    return [record for record in records if record.name.startswith(prefix)]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Log everything at debug; asked for before ``entry``, so is the engine host.

    The command is synthesized first: piper, in this process, logs what it says.
    """
    command_audio(COMMAND)
    caplog.set_level(logging.DEBUG)
    return caplog


@dataclass(frozen=True)
class _Speaker:
    """A satellite in the Kitchen, silent until ``say``."""

    hass: HomeAssistant
    entry: MockConfigEntry
    satellite: SimulatedSatellite
    subentry_id: str
    area_id: str

    @property
    def entity_id(self) -> str:
        return satellite_entity(self.hass, self.subentry_id)

    @property
    def link(self) -> SatelliteLink:
        return self.entry.runtime_data.satellites[self.subentry_id]

    async def say(self, mode: PrivacyMode) -> None:
        """Say the command once the room is in ``mode`` (it speaks on resuming)."""
        rooms = self.entry.runtime_data.rooms
        rooms.async_set_policy(self.area_id, mode=PrivacyMode.MUTED)
        await until(lambda: self.link.paused)
        self.satellite.mic_audio = command_audio(COMMAND)
        rooms.async_set_policy(self.area_id, mode=mode)

    async def said(self) -> None:
        """Wait until the reply has played and the satellite is idle again."""
        await until(lambda: self.satellite.recording.played >= 1, within=RUN)
        await _until_idle(self.hass, self.entity_id)


@pytest.fixture
async def speaker(
    hass: HomeAssistant, entry: MockConfigEntry, start_satellite: StartSatellite
) -> _Speaker:
    """Return a satellite in the Kitchen, connected and idle, nobody speaking."""
    kitchen = _area(hass)
    satellite = await start_satellite(b"", Device())
    subentry_id = await add_satellite(hass, entry, satellite, kitchen)
    await _until_idle(hass, satellite_entity(hass, subentry_id))
    return _Speaker(hass, entry, satellite, subentry_id, kitchen)


@pytest.mark.usefixtures("kitchen_light")
async def test_transcript_logged_at_debug_only_in_a_normal_room(
    hass: HomeAssistant, debug_logs: pytest.LogCaptureFixture, speaker: _Speaker
) -> None:
    """Ours and Home Assistant's records say it at debug; the engine host never."""
    await speaker.say(PrivacyMode.NORMAL)
    await speaker.said()
    await _async_stop(hass, speaker.entry)

    [heard] = _transcripts(speaker.satellite)
    records = _saying(debug_logs.records, heard)
    assert any(
        record.name == LOGGER.name and "heard" in record.getMessage()
        for record in records
    )
    assert {record.levelno for record in records} == {logging.DEBUG}
    # The host cannot know a request's room: it never logs what it heard.
    engine_host = _engine_host(debug_logs.records)
    assert any(record.levelno == logging.DEBUG for record in engine_host)
    assert _saying(engine_host, heard) == []


@pytest.mark.usefixtures("kitchen_light")
async def test_transcript_from_a_guest_room_is_not_logged_by_private_voice(
    hass: HomeAssistant, debug_logs: pytest.LogCaptureFixture, speaker: _Speaker
) -> None:
    """Understood and acted on, and in no record of ours or the engine host's."""
    await speaker.say(PrivacyMode.GUEST)
    await speaker.said()
    await _async_stop(hass, speaker.entry)

    [heard] = _transcripts(speaker.satellite)
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_ON
    ours = [r for r in debug_logs.records if r.name.startswith(LOGGER.name)]
    assert _engine_host(ours)
    assert _saying(ours, heard) == []


@pytest.mark.usefixtures("kitchen_light")
async def test_transcript_from_a_guest_room_is_in_no_record(
    hass: HomeAssistant, debug_logs: pytest.LogCaptureFixture, speaker: _Speaker
) -> None:
    """DESIGN §3: never logged at all from a Guest room, by anyone in the process."""
    await speaker.say(PrivacyMode.GUEST)
    await speaker.said()
    await _async_stop(hass, speaker.entry)

    [heard] = _transcripts(speaker.satellite)
    assert _saying(debug_logs.records, heard) == []


@pytest.mark.usefixtures("kitchen_light")
async def test_command_in_a_room_muted_while_it_listens_is_in_no_record(
    hass: HomeAssistant, debug_logs: pytest.LogCaptureFixture, speaker: _Speaker
) -> None:
    """Someone mutes the room as they speak: nothing of what they said is logged."""
    rooms = speaker.entry.runtime_data.rooms
    listened: list[str] = []

    @callback
    def _mute_as_it_listens(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.state == AssistSatelliteState.LISTENING:
            listened.append(new.state)
            rooms.async_set_policy(speaker.area_id, mode=PrivacyMode.MUTED)

    unsubscribe = async_track_state_change_event(
        hass, speaker.entity_id, _mute_as_it_listens
    )
    try:
        await speaker.say(PrivacyMode.NORMAL)
        await until(lambda: listened and speaker.link.paused, within=RUN)
        await _until_idle(hass, speaker.entity_id)
    finally:
        unsubscribe()
    await _async_stop(hass, speaker.entry)

    assert speaker.satellite.recording.streamed > 0
    assert _transcripts(speaker.satellite) == []
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_OFF
    assert _engine_host(debug_logs.records)
    # Neither all of it nor its beginning, anywhere.
    assert _saying(debug_logs.records, COMMAND) == []
    assert _saying(debug_logs.records, "turn on the") == []


# Diagnostics ----------------------------------------------------------------------


@pytest.mark.usefixtures("kitchen_light")
async def test_diagnostics_after_a_run_hold_no_transcript_and_no_mac(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    local_entry: MockConfigEntry,
    start_satellite: StartSatellite,
) -> None:
    """A satellite found by its MAC name, a command said in its room: neither shows.

    wyoming-satellite announces itself under its MAC address, which so
    becomes part of the entry; the room's counters show the request.
    """
    # Before the web server starts, which the pipeline's websocket client does.
    assert await async_setup_component(hass, "diagnostics", {})
    await _async_start(hass, hass_ws_client, local_entry)
    kitchen = _area(hass)
    satellite = await start_satellite(command_audio(COMMAND), Device())
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=ZeroconfServiceInfo(
            ip_address=ip_address("127.0.0.1"),
            ip_addresses=[ip_address("127.0.0.1")],
            hostname="kitchen-pi.local.",
            name=f"{MAC_NAME}._wyoming._tcp.local.",
            port=satellite.port,
            type="_wyoming._tcp.local.",
            properties={},
        ),
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AREA_ID: kitchen}
    )
    assert result["type"] is FlowResultType.ABORT
    [subentry] = local_entry.subentries.values()
    assert subentry.unique_id == MAC_NAME
    await until(lambda: satellite.recording.played >= 1, within=RUN)
    [heard] = _transcripts(satellite)
    entity = satellite_entity(hass, subentry.subentry_id)
    await _until_idle(hass, entity)
    assert hass.states.get(entity).state != STATE_UNAVAILABLE

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, local_entry)

    room = diagnostics["rooms"][kitchen]
    assert room["counters"]["requests"] == 1
    assert room["counters"]["audio_seconds"] > 0
    text = repr(diagnostics)
    assert _words(heard) not in _words(text)
    assert _MAC.findall(text) == []
