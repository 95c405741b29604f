"""Private Voice end to end in a real Home Assistant, set up as a user would.

``scripts/demo`` runs this in the project's environment. It makes (or reuses)
``demo-config/``: a Home Assistant with template lights "Kitchen lights" in
the Kitchen and "Living room lights" in the Living Room, starts it in the
background and creates its owner. Then, through Home Assistant's HTTP and
websocket APIs, exactly as the UI does: Private Voice with its engines on this
machine and the packaged models (the config flow's defaults), an Assist
pipeline on them, and a simulated ESP32-S3 satellite in the Kitchen (added by
its address, as **Add satellite** does). The satellite hears piper say "Turn
on the kitchen lights." at microphone pace; what it gets back is printed, with
the light's state before and after. Home Assistant keeps running, with its
login printed; the satellite stops with this program.
"""
# ruff: noqa: INP001 - a script (scripts/demo runs it), not a package module

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Mapping
import contextlib
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Final, Self, override

import aiohttp
from wyoming.asr import Transcript
from wyoming.audio import AudioStop
from wyoming.event import Event
from wyoming.tts import Synthesize

from tests.engines import COMMAND, silence, speech
from tests.protocol.simulator import ESP_MIC, Device, SimulatedSatellite

TOP: Final = Path(__file__).resolve().parent.parent
CONFIG_DIR: Final = TOP / "demo-config"
# What this program knows about the Home Assistant it started (mode 0600).
STATE_FILE: Final = "demo.json"
LOG_FILE: Final = "home-assistant.log"
DOMAIN: Final = "private_voice"
USERNAME: Final = "demo"
HA_PORTS: Final = range(8123, 8134)
SERVICE_PORT: Final = 10600
ENGINE_PORT: Final = 10610
SATELLITE_PORT: Final = 10700
PIPELINE_NAME: Final = "Private Voice"
# Private Voice's engine entities: one each, unique id "<entry id>_<domain>".
ENGINE_DOMAINS: Final = frozenset({"stt", "tts", "wake_word"})
KITCHEN: Final = "Kitchen"
# The template lights' unique ids, and the areas they go in (the onboarding
# makes these areas; they are made here if they are gone).
KITCHEN_LIGHT_ID: Final = "demo_kitchen_lights"
LIVING_ROOM_LIGHT_ID: Final = "demo_living_room_lights"
LIGHT_AREAS: Final = {KITCHEN_LIGHT_ID: KITCHEN, LIVING_ROOM_LIGHT_ID: "Living Room"}
# Around the command, as a satellite sends it: the gap after the wake word, and
# the silence its voice activity detection waits for before audio-stop.
LEAD_SILENCE: Final = 0.3
TRAILING_SILENCE: Final = 0.6
# Guards against a hang, not measurements. The first start of Home Assistant
# may install its frontend's package.
START_TIMEOUT: Final = 600.0
SETUP_TIMEOUT: Final = 180.0
REPLY_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 60.0

CONFIGURATION: Final = """\
# Written by scripts/demo on every start; edit scripts/demo.py instead.
# No default_config: nothing here talks to the internet.
homeassistant:
  name: Private Voice demo

http:
  server_port: {port}

logger:
  default: warning
  logs:
    custom_components.private_voice: info

assist_pipeline:
conversation:
intent:

template:
  - light:
      # Optimistic: each follows what it is told.
      - name: Kitchen lights
        unique_id: {kitchen_light}
        turn_on: []
        turn_off: []
      - name: Living room lights
        unique_id: {living_room_light}
        turn_on: []
        turn_off: []
"""


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to look at."""


def say(text: str = "") -> None:
    """Print a line of the demo's output."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:  # noqa: S104 - as servers bind
    """Tell whether nothing listens on ``port``."""
    with socket.socket() as sock:
        # As servers bind: connections closing on the port do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def preferred_or_free(port: int) -> int:
    """``port`` if it is free, else any free port."""
    return port if port_is_free(port) else free_port()


def lan_address() -> str | None:
    """Return the address this machine has on its network, if any (sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") else address


# The Home Assistant process ---------------------------------------------------


@dataclass(kw_only=True)
class DemoState:
    """The demo's Home Assistant: its process, port and owner's login."""

    port: int
    password: str
    pid: int | None = None
    onboarded: bool = False

    @classmethod
    def load(cls, config_dir: Path) -> Self | None:
        """Read the state of an earlier run, if there was one."""
        try:
            data = json.loads((config_dir / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**data)

    def save(self, config_dir: Path) -> None:
        """Write the state; only its owner may read the password."""
        path = config_dir / STATE_FILE
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")


def running_home_assistant(state: DemoState | None, config_dir: Path) -> int | None:
    """Return the PID of the demo's Home Assistant if it still runs."""
    if state is None or state.pid is None:
        return None
    try:
        command = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # The PID may have been reused by another program since.
    if b"homeassistant" in command and str(config_dir).encode() in command:
        return state.pid
    return None


def stop_home_assistant(config_dir: Path) -> bool:
    """Stop the demo's Home Assistant, if it runs; True if it did."""
    state = DemoState.load(config_dir)
    pid = running_home_assistant(state, config_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while running_home_assistant(state, config_dir) is not None:
        if time.monotonic() > deadline:
            msg = (
                f"Home Assistant (PID {pid}) is still stopping after {STOP_TIMEOUT:g} s"
            )
            raise DemoError(msg)
        time.sleep(0.2)
    return True


def write_configuration(config_dir: Path, port: int) -> None:
    """Write configuration.yaml; on a new folder, skip the onboarding's extras.

    The onboarding's location step sets up Google Translate, Met.no and Radio
    Browser, which talk to the internet; a private demo has none of them. So
    that step and the analytics one (off) are recorded as done before the
    first start, and the owner is then created as the UI does.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION.format(
            port=port,
            kitchen_light=KITCHEN_LIGHT_ID,
            living_room_light=LIVING_ROOM_LIGHT_ID,
        ),
        encoding="utf-8",
    )
    storage = config_dir / ".storage"
    onboarding = storage / "onboarding"
    if not onboarding.exists():
        storage.mkdir(exist_ok=True)
        onboarding.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config", "analytics", "integration"]},
                }
            ),
            encoding="utf-8",
        )


def start_home_assistant(config_dir: Path) -> subprocess.Popen[bytes]:
    """Start Home Assistant in the background, in a session of its own.

    It outlives this program; its log is ``config_dir/home-assistant.log``.
    Private Voice comes from the checkout (PYTHONPATH), as in scripts/develop.
    """
    python_path = [str(TOP)]
    if inherited := os.environ.get("PYTHONPATH"):
        python_path.append(inherited)
    return subprocess.Popen(  # noqa: S603 - this Python, fixed arguments
        [sys.executable, "-m", "homeassistant", "--config", str(config_dir)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(python_path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# Home Assistant's APIs ----------------------------------------------------------


class HomeAssistantApi:
    """Home Assistant's HTTP and websocket APIs, as the frontend uses them."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        """Talk to the Home Assistant on ``port`` of this machine."""
        self.session = session
        self.url = f"http://127.0.0.1:{port}"
        # The frontend's own address is its client id.
        self.client_id = f"{self.url}/"
        self._token = ""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 1

    async def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        """Call the REST API; return the JSON answer."""
        async with self.session.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        ) as response:
            if response.status >= 400:  # noqa: PLR2004 - HTTP's error classes
                text = await response.text()
                msg = f"{method} {path}: HTTP {response.status}: {text}"
                raise DemoError(msg)
            return await response.json()

    async def status(self, path: str) -> int:
        """Return the HTTP status of a GET without credentials; 0 if none answers."""
        try:
            async with self.session.get(f"{self.url}{path}") as response:
                return response.status
        except aiohttp.ClientError:
            return 0

    async def token_from_code(self, code: str) -> None:
        """Trade an authorization code for an access token, as the frontend does."""
        async with self.session.post(
            f"{self.url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        ) as response:
            if response.status != 200:  # noqa: PLR2004 - HTTP OK
                msg = f"no token: HTTP {response.status}: {await response.text()}"
                raise DemoError(msg)
            self._token = (await response.json())["access_token"]

    async def create_owner(self, name: str, password: str) -> None:
        """Create the owner, as the onboarding's first step does; sign in as them."""
        result = await self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": self.client_id,
                "name": name,
                "username": USERNAME,
                "password": password,
                "language": "en",
            },
        )
        await self.token_from_code(result["auth_code"])

    async def sign_in(self, password: str) -> None:
        """Sign in with the owner's username and password, as the login page does."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.client_id}?auth_callback=1",
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": USERNAME, "password": password},
        )
        if result.get("type") != "create_entry":
            msg = f"could not sign in as {USERNAME}: {result.get('errors')}"
            raise DemoError(msg)
        await self.token_from_code(result["result"])

    async def command(self, message: Mapping[str, Any]) -> Any:
        """Send one websocket command; return its result."""
        if self._ws is None:
            self._ws = await self.session.ws_connect(f"{self.url}/api/websocket")
            await self._ws.receive_json()  # auth_required
            await self._ws.send_json({"type": "auth", "access_token": self._token})
            if (answer := await self._ws.receive_json())["type"] != "auth_ok":
                msg = f"websocket authentication failed: {answer}"
                raise DemoError(msg)
        message_id, self._next_id = self._next_id, self._next_id + 1
        await self._ws.send_json({"id": message_id, **message})
        while (answer := await self._ws.receive_json())["id"] != message_id:
            pass
        if not answer["success"]:
            msg = f"{message['type']}: {answer['error']}"
            raise DemoError(msg)
        return answer["result"]

    async def close(self) -> None:
        """Close the websocket."""
        if self._ws is not None:
            await self._ws.close()

    async def state(self, entity_id: str) -> str:
        """Return an entity's state."""
        return str((await self.request("GET", f"/api/states/{entity_id}"))["state"])


async def until[T](
    check: Callable[[], Awaitable[T | None]],
    what: str,
    within: float = SETUP_TIMEOUT,
    every: float = 0.25,
) -> T:
    """Poll ``check`` until it returns something other than None or False."""
    deadline = time.monotonic() + within
    while (found := await check()) is None or found is False:
        if time.monotonic() > deadline:
            msg = f"timed out after {within:g} s waiting for {what}"
            raise DemoError(msg)
        await asyncio.sleep(every)
    return found


# Setting the home up ------------------------------------------------------------


async def wait_until_running(api: HomeAssistantApi) -> None:
    """Wait until Home Assistant has started everything it was configured with."""

    async def running() -> bool:
        return bool((await api.request("GET", "/api/config"))["state"] == "RUNNING")

    await until(running, "Home Assistant to finish starting")


async def place_lights(api: HomeAssistantApi) -> tuple[str, str]:
    """Put the lights in their areas; return the kitchen light and area ids."""
    areas = {
        area["name"]: area["area_id"]
        for area in await api.command({"type": "config/area_registry/list"})
    }
    entities = await api.command({"type": "config/entity_registry/list"})
    placed: dict[str, str] = {}
    for unique_id, area in LIGHT_AREAS.items():
        if area not in areas:
            created = await api.command(
                {"type": "config/area_registry/create", "name": area}
            )
            areas[area] = created["area_id"]
        [entity_id] = [
            entity["entity_id"]
            for entity in entities
            if entity["platform"] == "template" and entity["unique_id"] == unique_id
        ]
        await api.command(
            {
                "type": "config/entity_registry/update",
                "entity_id": entity_id,
                "area_id": areas[area],
            }
        )
        placed[unique_id] = entity_id
    return placed[KITCHEN_LIGHT_ID], areas[KITCHEN]


async def private_voice_entry(api: HomeAssistantApi) -> dict[str, Any] | None:
    """Return the Private Voice config entry, if there is one."""
    entries = await api.request(
        "GET", f"/api/config/config_entries/entry?domain={DOMAIN}"
    )
    return entries[0] if entries else None


async def add_private_voice(api: HomeAssistantApi) -> str:
    """Go through Private Voice's config flow as a user accepting the defaults.

    Language and port, **On this Home Assistant**, the engine packages'
    progress step, then the model form with its defaults: the packaged
    models, so nothing is downloaded. Returns the entry's id.
    """
    flows = "/api/config/config_entries/flow"
    result = await api.request("POST", flows, {"handler": DOMAIN})
    flow = f"{flows}/{result['flow_id']}"
    result = await api.request(
        "POST", flow, {"language": "en", "port": preferred_or_free(SERVICE_PORT)}
    )
    if result.get("step_id") != "engine":
        msg = f"Private Voice's first step did not lead to the engine menu: {result}"
        raise DemoError(msg)
    result = await api.request("POST", flow, {"next_step_id": "local"})

    async def progressed() -> dict[str, Any] | None:
        answer: dict[str, Any] = await api.request("GET", flow)
        return None if answer["type"] == "progress" else answer

    if result["type"] == "progress":
        result = await until(progressed, "the engine packages")
    if result.get("step_id") != "local_models":
        msg = f"Private Voice cannot run its engines here: {result}"
        raise DemoError(msg)
    choices = {field["name"]: field.get("default") for field in result["data_schema"]}
    choices["engine_port"] = preferred_or_free(choices["engine_port"] or ENGINE_PORT)
    say(
        f"  models: {choices['stt_model']} (speech-to-text), "
        f"{choices['voice']} (voice), {', '.join(choices['wake_words'])} (wake word)"
    )
    result = await api.request("POST", flow, choices)
    if result["type"] == "progress":  # a model is not installed: downloads
        result = await until(progressed, "the models' download")
    if result["type"] != "create_entry":
        msg = f"Private Voice was not added: {result}"
        raise DemoError(msg)
    return str(result["result"]["entry_id"])


async def wait_for_engines(api: HomeAssistantApi, entry_id: str) -> dict[str, str]:
    """Wait until the entry is loaded and its engines answer; return their entities."""

    async def loaded() -> bool:
        entry = await private_voice_entry(api)
        if entry is not None and entry["state"] in {"setup_error", "migration_error"}:
            msg = f"Private Voice failed to set up: {entry.get('reason')}"
            raise DemoError(msg)
        return entry is not None and entry["state"] == "loaded"

    await until(loaded, "Private Voice to load")

    async def engines() -> dict[str, str] | None:
        found = {
            domain: entity["entity_id"]
            for entity in await api.command({"type": "config/entity_registry/list"})
            if (domain := entity["entity_id"].partition(".")[0]) in ENGINE_DOMAINS
            and entity["unique_id"] == f"{entry_id}_{domain}"
        }
        if found.keys() != ENGINE_DOMAINS:
            return None
        for entity_id in found.values():
            if await api.state(entity_id) == "unavailable":
                return None
        return found

    return await until(engines, "the speech engines to answer")


async def prefer_pipeline(api: HomeAssistantApi, engines: Mapping[str, str]) -> None:
    """Prefer the Assist pipeline Private Voice made (its engines and its guard).

    If the user deleted it, one on the engines with the built-in agent is made.
    """
    listed = await api.command({"type": "assist_pipeline/pipeline/list"})
    pipeline_id = next(
        (p["id"] for p in listed["pipelines"] if p["name"] == PIPELINE_NAME), None
    )
    if pipeline_id is None:
        created = await api.command(
            {
                "type": "assist_pipeline/pipeline/create",
                "name": PIPELINE_NAME,
                "language": "en",
                "conversation_engine": "conversation.home_assistant",
                "conversation_language": "en",
                "stt_engine": engines["stt"],
                "stt_language": "en",
                "tts_engine": engines["tts"],
                "tts_language": "en-US",
                "tts_voice": "en_US-joe-medium",
                "wake_word_entity": engines["wake_word"],
                "wake_word_id": "okay_nabu",
            }
        )
        pipeline_id = created["id"]
    if listed["preferred_pipeline"] != pipeline_id:
        await api.command(
            {
                "type": "assist_pipeline/pipeline/set_preferred",
                "pipeline_id": pipeline_id,
            }
        )


# The satellite -------------------------------------------------------------------


class DemoSatellite(SimulatedSatellite):
    """The tests' simulated ESP32-S3 satellite, speaking once, timed.

    It speaks when ``go`` is set rather than as soon as the hub connects, at
    microphone pace (a chunk leaves once it has been "recorded"; the simulator
    itself sends as fast as it can), and only once. The time each kind of
    event first arrives is kept, from ``time.monotonic()``.
    """

    def __init__(self, mic_audio: bytes) -> None:
        """Say ``mic_audio`` once, after on-device wake word detection."""
        super().__init__(mic_audio, Device(snd_format=ESP_MIC))
        # Where satellites listen by convention, unless taken.
        self.port = SATELLITE_PORT if port_is_free(SATELLITE_PORT, "127.0.0.1") else 0
        self.go = asyncio.Event()
        self.speech_ended: float | None = None
        self.first: dict[str, float] = {}
        self._next_chunk = 0.0

    @override
    async def _stream_mic(self, writer: asyncio.StreamWriter) -> None:
        await self.go.wait()
        await super()._stream_mic(writer)

    @override
    async def _say(self, writer: asyncio.StreamWriter) -> None:
        self._next_chunk = time.monotonic()
        await super()._say(writer)
        self.mic_audio = b""  # said once: not again if the hub reconnects

    @override
    async def _chunk(
        self, writer: asyncio.StreamWriter, audio: bytes, *, rate: int | None = None
    ) -> None:
        self._next_chunk += len(audio) / self.device.mic_format.bytes_per_second
        await asyncio.sleep(max(0.0, self._next_chunk - time.monotonic()))
        await super()._chunk(writer, audio, rate=rate)

    @override
    async def _send(self, writer: asyncio.StreamWriter, event: Event) -> None:
        await super()._send(writer, event)
        if AudioStop.is_type(event.type) and self.speech_ended is None:
            self.speech_ended = time.monotonic()

    @override
    async def _handle(self, event: Event, writer: asyncio.StreamWriter) -> None:
        self.first.setdefault(event.type, time.monotonic())
        await super()._handle(event, writer)

    def since_speech(self, event_type: str) -> float | None:
        """Milliseconds from the end of speech to the first event of a type."""
        if self.speech_ended is None or event_type not in self.first:
            return None
        return (self.first[event_type] - self.speech_ended) * 1000


async def replace_satellites(
    api: HomeAssistantApi, entry_id: str, satellite: DemoSatellite, area_id: str
) -> str:
    """Remove the satellites of earlier runs; add this one as the UI does.

    Returns its assist_satellite entity.
    """
    for subentry in await api.command(
        {"type": "config_entries/subentries/list", "entry_id": entry_id}
    ):
        if subentry["subentry_type"] == "satellite":
            await api.command(
                {
                    "type": "config_entries/subentries/delete",
                    "entry_id": entry_id,
                    "subentry_id": subentry["subentry_id"],
                }
            )
    await satellite.start()
    flows = "/api/config/config_entries/subentries/flow"
    result = await api.request("POST", flows, {"handler": [entry_id, "satellite"]})
    result = await api.request(
        "POST",
        f"{flows}/{result['flow_id']}",
        {"host": "127.0.0.1", "port": satellite.port, "area_id": area_id},
    )
    if result["type"] != "create_entry":
        msg = f"the satellite was not added: {result}"
        raise DemoError(msg)

    [subentry_id] = [
        subentry["subentry_id"]
        for subentry in await api.command(
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )
        if subentry["unique_id"] == f"127.0.0.1:{satellite.port}"
    ]

    async def entity() -> str | None:
        return next(
            (
                e["entity_id"]
                for e in await api.command({"type": "config/entity_registry/list"})
                if e["config_subentry_id"] == subentry_id
                and e["entity_id"].startswith("assist_satellite.")
            ),
            None,
        )

    return await until(entity, "the satellite's entity")


# The demo ----------------------------------------------------------------------


async def ensure_home_assistant(
    api_for: Callable[[int], HomeAssistantApi], config_dir: Path, port: int | None
) -> tuple[HomeAssistantApi, DemoState, bool]:
    """Start (or find running) the demo's Home Assistant; sign in as its owner.

    Returns the API, the state, and whether Home Assistant was started now.
    """
    state = DemoState.load(config_dir)
    started = False
    if (pid := running_home_assistant(state, config_dir)) is not None and state:
        if port not in {None, state.port}:
            msg = (
                f"the demo's Home Assistant already runs on port {state.port} "
                f"(PID {pid}): scripts/demo --stop first to move it"
            )
            raise DemoError(msg)
        say(f"Home Assistant is already running (PID {pid}); using it.")
        api: HomeAssistantApi = api_for(state.port)
    else:
        earlier = state.port if state and port_is_free(state.port) else None
        chosen = port or earlier or first_free_ha_port()
        if not port_is_free(chosen):
            msg = f"port {chosen} is in use: choose another with --port"
            raise DemoError(msg)
        if state is None:
            state = DemoState(port=chosen, password=secrets.token_urlsafe(12))
        state.port = chosen
        write_configuration(config_dir, chosen)
        folder = config_dir.relative_to(TOP)
        say(f"Starting Home Assistant in {folder}/ on port {chosen}")
        since = time.monotonic()
        process = start_home_assistant(config_dir)
        started = True
        state.pid = process.pid
        state.save(config_dir)
        api = api_for(chosen)

        async def answers() -> bool:
            if process.poll() is not None:
                msg = (
                    f"Home Assistant exited with {process.returncode}; "
                    f"see {config_dir / LOG_FILE}"
                )
                raise DemoError(msg)
            # The server starts once the frontend is set up, and onboarding
            # (200 while it is registered, 404 once done) before it.
            return await api.status("/api/onboarding") in {200, 404}

        await until(answers, "Home Assistant's web server", within=START_TIMEOUT)
        say(f"  web server up after {time.monotonic() - since:.1f} s")
    if not state.onboarded:
        await api.create_owner("Demo", state.password)
        state.onboarded = True
        state.save(config_dir)
    else:
        await api.sign_in(state.password)
    await wait_until_running(api)
    return api, state, started


def first_free_ha_port() -> int:
    """Home Assistant's usual port, or the next free one."""
    for port in HA_PORTS:
        if port_is_free(port):
            if port != HA_PORTS.start:
                say(f"Port {HA_PORTS.start} is in use; Home Assistant gets {port}.")
            return port
    msg = f"ports {HA_PORTS.start}-{HA_PORTS.stop - 1} are all in use: use --port"
    raise DemoError(msg)


def command_audio() -> bytes:
    """Piper saying the command, with a satellite's silences around it."""
    return silence(LEAD_SILENCE) + speech(COMMAND) + silence(TRAILING_SILENCE)


async def run_demo(config_dir: Path, port: int | None) -> bool:
    """Set everything up, say the command, print what happened."""
    began = time.monotonic()
    audio = command_audio()  # piper loads while nothing else runs yet
    async with aiohttp.ClientSession() as session:
        api, state, started = await ensure_home_assistant(
            lambda p: HomeAssistantApi(session, p), config_dir, port
        )
        try:
            return await _converse(api, state, audio, began, cold=started)
        finally:
            await api.close()


async def _converse(
    api: HomeAssistantApi, state: DemoState, audio: bytes, began: float, *, cold: bool
) -> bool:
    """Set Private Voice and the satellite up; say the command; report.

    ``cold``: the engines have not answered a command since they started.
    """
    kitchen_light, kitchen = await place_lights(api)
    if (entry := await private_voice_entry(api)) is None:
        say("Adding Private Voice (engines on this machine)")
        entry_id = await add_private_voice(api)
        cold = True
    else:
        entry_id = entry["entry_id"]
        say("Private Voice is set up already; using it.")
    engines = await wait_for_engines(api, entry_id)
    await prefer_pipeline(api, engines)
    say(f"  engines ready: {', '.join(sorted(engines.values()))}")

    satellite = DemoSatellite(audio)
    try:
        satellite_entity = await replace_satellites(api, entry_id, satellite, kitchen)
        say(
            f"Simulated ESP32-S3 satellite on 127.0.0.1:{satellite.port} added "
            f"in the Kitchen: {satellite_entity}"
        )
        await until(
            lambda: _state_is(api, satellite_entity, "idle"), "the satellite to connect"
        )
        await api.request(
            "POST", "/api/services/light/turn_off", {"entity_id": kitchen_light}
        )
        before = await api.state(kitchen_light)
        say(f"Setup took {time.monotonic() - began:.1f} s.")
        say()
        seconds = len(audio) / ESP_MIC.bytes_per_second
        say(f'The satellite hears: "{COMMAND}" ({seconds:.1f} s, at microphone pace)')
        satellite.go.set()

        async def replied() -> bool:
            return satellite.recording.played >= 1

        await until(replied, "the spoken reply", within=REPLY_TIMEOUT, every=0.05)
        after = await api.state(kitchen_light)
    finally:
        await satellite.stop()
    return _report(satellite, kitchen_light, (before, after), state, cold=cold)


async def _state_is(api: HomeAssistantApi, entity_id: str, wanted: str) -> bool:
    return await api.state(entity_id) == wanted


def _report(
    satellite: DemoSatellite,
    light: str,
    states: tuple[str, str],
    state: DemoState,
    *,
    cold: bool,
) -> bool:
    """Print what the satellite got back; True if the light went on."""
    before, after = states
    events = satellite.recording.events
    transcripts = [
        Transcript.from_event(e).text for e in events if e.type == "transcript"
    ]
    replies = [Synthesize.from_event(e).text for e in events if e.type == "synthesize"]
    latency = satellite.since_speech("audio-chunk")
    reply = satellite.recording.replies[0] if satellite.recording.replies else None
    say(f'  transcript  "{transcripts[0] if transcripts else "(none)"}"')
    say(f"  light       {light}: {before} → {after}")
    if reply is not None:
        seconds = len(reply.audio) / ESP_MIC.bytes_per_second
        played = f"{seconds:.1f} s of audio at {reply.start.rate} Hz, played"
        say(f'  reply       "{replies[0] if replies else "(none)"}" ({played})')
    if latency is not None:
        ms = f"{latency:.0f} ms"
        say(f"  latency     {ms}: end of speech (audio-stop) → first reply audio")
        transcript_ms = satellite.since_speech("transcript")
        reply_text_ms = satellite.since_speech("synthesize")
        if transcript_ms is not None and reply_text_ms is not None:
            say(
                f"              transcript at +{transcript_ms:.0f} ms, "
                f"reply text at +{reply_text_ms:.0f} ms"
            )
        if cold:
            say("              (the engines' first command since they started: slower)")
    succeeded = after == "on" and before != "on" and bool(transcripts)
    if not succeeded:
        say("The kitchen light did not turn on.")
    say()
    _print_login(state)
    return succeeded


def _print_login(state: DemoState) -> None:
    say(f"Home Assistant keeps running (PID {state.pid}):")
    say(f"  open      http://127.0.0.1:{state.port}")
    if (address := lan_address()) is not None:
        say(f"            http://{address}:{state.port} (from another machine)")
    say(f"  username  {USERNAME}")
    say(f"  password  {state.password}")
    say(f"  log       {(CONFIG_DIR / LOG_FILE).relative_to(TOP)}")
    say("  stop it   scripts/demo --stop")
    say(
        "The simulated satellite stopped with the demo: Home Assistant shows it "
        "unavailable. Run scripts/demo again to say the command again."
    )


def main() -> int:
    """Run the demo, or stop its Home Assistant."""
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Private Voice end to end: a Home Assistant with a kitchen "
        "light and a simulated satellite that asks to turn it on.",
    )
    parser.add_argument(
        "--port", type=int, help="Home Assistant's port (default: 8123 or next free)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help=f"start from an empty {CONFIG_DIR.name}/ (stops a running demo first)",
    )
    parser.add_argument(
        "--stop", action="store_true", help="stop the demo's Home Assistant"
    )
    args = parser.parse_args()
    try:
        if args.stop:
            say(
                "Stopped the demo's Home Assistant."
                if stop_home_assistant(CONFIG_DIR)
                else "The demo's Home Assistant is not running."
            )
            return 0
        if args.fresh:
            stop_home_assistant(CONFIG_DIR)
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(CONFIG_DIR)
        return 0 if asyncio.run(run_demo(CONFIG_DIR, args.port)) else 1
    except DemoError as err:
        say(f"demo failed: {err}")
        say(f"Home Assistant's log: {(CONFIG_DIR / LOG_FILE).relative_to(TOP)}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
