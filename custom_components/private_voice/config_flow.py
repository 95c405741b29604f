"""Config flow for Private Voice: the language, the port, and where the engines run.

The same steps serve a new entry and a reconfigured one: language and port,
then a menu of engine modes, then the chosen mode's steps. Local engines take
two progress steps: installing their packages, and downloading the chosen
models that are not in the models folder yet.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Final, override

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    AreaSelector,
    BooleanSelector,
    LanguageSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import probatio
from wyoming.info import Artifact, Info

from .const import (
    CONF_AREA_ID,
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
    DEFAULT_BIND_ADDRESS,
    DEFAULT_ENGINE_PORT,
    DEFAULT_PORT,
    DOMAIN,
    LOGGER,
    MODELS_DIR,
    SUBENTRY_SATELLITE,
    EngineMode,
)
from .engine_host.catalogue import CatalogueEntry, ModelKind
from .engine_host.engines import EngineError
from .engine_host.models import ModelStore
from .local_engines import (
    LocalEnginesUnavailable,
    async_ensure_engine_packages,
    unsupported_reason,
)
from .network import async_check_port_free
from .options_flow import PrivateVoiceOptionsFlow
from .protocol.client import Endpoint, PeerError, async_describe
from .satellite_flow import (
    SatelliteSubentryFlow,
    find_satellite,
    satellite_subentry,
    satellite_title,
)
from .satellites import satellite_subentries

TITLE: Final = "Private Voice"
# The engine host child process listens on loopback only.
ENGINE_BIND_ADDRESS: Final = "127.0.0.1"

# The models pymicro-wakeword ships (its models/*.json), named without importing
# it: the integration must load where the engine packages do not (musl).
MICRO_WAKE_WORDS: Final = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
DEFAULT_WAKE_WORDS: Final = ["okay_nabu"]

PORT_SELECTOR: Final = probatio.All(
    NumberSelector(NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX)),
    probatio.Coerce(int),
)
STEP_BASICS_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(CONF_LANGUAGE): LanguageSelector(),
        probatio.Required(CONF_PORT, default=DEFAULT_PORT): PORT_SELECTOR,
    }
)
STEP_REMOTE_SCHEMA: Final = probatio.Schema(
    {probatio.Required(CONF_URI): TextSelector()}
)
# Each service URI, and the programs its describe must offer.
SERVICE_PROGRAMS: Final[dict[str, Callable[[Info], Sequence[Artifact]]]] = {
    CONF_STT_URI: lambda info: info.asr,
    CONF_TTS_URI: lambda info: info.tts,
    CONF_WAKE_URI: lambda info: info.wake,
}
STEP_SATELLITE_AREA_SCHEMA: Final = probatio.Schema(
    {probatio.Optional(CONF_AREA_ID): AreaSelector()}
)
STEP_SERVICES_SCHEMA: Final = probatio.Schema(
    {probatio.Optional(field): TextSelector() for field in SERVICE_PROGRAMS}
)


def _installed(programs: Sequence[Artifact]) -> bool:
    return any(program.installed for program in programs)


def _is_engine_host(info: Info) -> bool:
    """Tell an engine host (or a single engine) from a satellite or an empty peer."""
    return info.satellite is None and (_installed(info.asr) or _installed(info.tts))


@dataclass(frozen=True, slots=True, kw_only=True)
class _ModelChoice:
    """The models of one kind that suit the language, best first."""

    options: list[SelectOptionDict]
    # Models that may be downloaded, by name.
    catalogue: dict[str, CatalogueEntry]
    installed: set[str]

    def default(self, current: str | None) -> str:
        """Keep ``current`` if offered, else take the first installed, or the first."""
        names = [option["value"] for option in self.options]
        if current in names:
            return current
        return next((name for name in names if name in self.installed), names[0])


def _language_parts(language: str) -> tuple[str, str]:
    """Split a language tag into its family and its exact form: en-GB → en, en_GB."""
    family, _, region = language.replace("-", "_").partition("_")
    family = family.lower()
    return family, f"{family}_{region}" if region else family


async def _async_model_choice(
    store: ModelStore, kind: ModelKind, language: str
) -> _ModelChoice:
    """List the models of ``kind`` for ``language``: installed, and in the catalogue.

    A model in the folder without a catalogue entry is offered whatever its
    language, unless it is a piper voice, whose name starts with its language.
    """
    family, exact = _language_parts(language)
    catalogue = {entry.name: entry for entry in await store.catalogue(kind)}
    installed = set(await store.installed_names(kind))
    rows: list[tuple[tuple[bool, float, str], SelectOptionDict]] = []
    for name in catalogue.keys() | installed:
        if (entry := catalogue.get(name)) is not None:
            languages = entry.languages
            details = [entry.description, f"{entry.size_mb} MB", str(entry.speed)]
            size: float = entry.size_mb
        else:
            languages = (name.partition("-")[0],) if kind is ModelKind.PIPER else ()
            details = [name]
            size = float("inf")
        if languages and not any(
            code.split("_")[0].lower() == family for code in languages
        ):
            continue
        if name in installed:
            details.append("installed")
        rows.append(
            (
                (exact not in languages, size, name),
                SelectOptionDict(value=name, label=" · ".join(details)),
            )
        )
    return _ModelChoice(
        options=[option for _, option in sorted(rows, key=lambda row: row[0])],
        catalogue=catalogue,
        installed=installed,
    )


async def _async_describe_field(
    user_input: Mapping[str, Any], field: str, errors: dict[str, str]
) -> tuple[Endpoint, Info] | None:
    """Ask the service at ``user_input[field]`` what it offers.

    None, with the field's error set, if the URI is not tcp://HOST:PORT or
    nothing answers there.
    """
    try:
        endpoint = Endpoint.from_uri(user_input[field])
    except ValueError:
        errors[field] = "invalid_uri"
        return None
    try:
        info = await async_describe(endpoint)
    except PeerError as err:
        LOGGER.debug("No Wyoming service at %s: %s", endpoint.uri, err)
        errors[field] = "cannot_connect"
        return None
    return endpoint, info


class PrivateVoiceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up, or reconfigure, the one Private Voice instance of a home."""

    VERSION = 1

    # Set by the zeroconf step, before its confirmation.
    _discovered: Endpoint
    _discovered_name: str
    _satellite_id: str

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> PrivateVoiceOptionsFlow:
        """Options: who may use the Wyoming service."""
        return PrivateVoiceOptionsFlow()

    @classmethod
    @callback
    @override
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Satellites are subentries."""
        return {SUBENTRY_SATELLITE: SatelliteSubentryFlow}

    def __init__(self) -> None:
        """Start with nothing chosen."""
        # Language and port, then the engine mode's own keys.
        self._data: dict[str, Any] = {}
        self._unavailable_reason = ""
        self._install_task: asyncio.Task[None] | None = None
        # LOCAL: the choices, and the chosen models to download first.
        self._local: dict[str, Any] = {}
        self._missing: list[CatalogueEntry] = []
        self._download_task: asyncio.Task[None] | None = None
        self._download_error = ""
        self._download_percent = -1

    @cached_property
    def _store(self) -> ModelStore:
        """The models folder the engine host child process loads from."""
        return ModelStore(Path(self.hass.config.path(MODELS_DIR)))

    @property
    def _previous(self) -> Mapping[str, Any]:
        """What the entry holds now when reconfiguring; nothing for a new one."""
        if self.source == SOURCE_RECONFIGURE:
            return self._get_reconfigure_entry().data
        return {}

    # Language and port -------------------------------------------------------

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the language and the Wyoming service port."""
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        if form := await self._async_basics(user_input, step_id="user"):
            return form
        return await self.async_step_engine()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the language, the port, or where the engines run."""
        if form := await self._async_basics(user_input, step_id="reconfigure"):
            return form
        return await self.async_step_engine()

    async def _async_basics(
        self,
        user_input: dict[str, Any] | None,
        *,
        step_id: str,
        placeholders: Mapping[str, str] | None = None,
    ) -> ConfigFlowResult | None:
        """Show the language and port form; None once it is filled in well."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if await self._async_port_taken(
                DEFAULT_BIND_ADDRESS, user_input[CONF_PORT], CONF_PORT
            ):
                errors[CONF_PORT] = "cannot_bind"
            else:
                self._data.update(user_input)
                return None
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                STEP_BASICS_SCHEMA,
                user_input
                or {CONF_LANGUAGE: self.hass.config.language, **self._previous},
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_port_taken(self, host: str, port: int, key: str) -> bool:
        """Tell whether another program listens on ``port``.

        The port the entry being reconfigured uses is its own: not checked.
        """
        if port == self._previous.get(key):
            return False
        try:
            await async_check_port_free(host, port)
        except OSError:
            return True
        return False

    # Where the engines run ---------------------------------------------------

    async def async_step_engine(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Offer the three engine modes."""
        return self.async_show_menu(
            step_id="engine", menu_options=["local", "remote", "services"]
        )

    @callback
    def _async_finish(self, engines: Mapping[str, Any]) -> ConfigFlowResult:
        """Create the entry, or update and reload the one being reconfigured."""
        data = {**self._data, **engines}
        if self.source == SOURCE_RECONFIGURE:
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), data=data
            )
        return self.async_create_entry(title=TITLE, data=data)

    # LOCAL: on this Home Assistant -------------------------------------------

    async def async_step_local(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Install the engine packages where they can run, then choose models."""
        if self._install_task is None:
            if reason := unsupported_reason():
                self._unavailable_reason = reason
                return await self.async_step_local_unavailable()
            self._install_task = self.hass.async_create_task(
                self._async_prepare_local(), eager_start=False
            )
        if not self._install_task.done():
            return self.async_show_progress(
                step_id="local",
                progress_action="install_engines",
                progress_task=self._install_task,
            )
        task, self._install_task = self._install_task, None
        try:
            task.result()
        except LocalEnginesUnavailable as err:
            self._unavailable_reason = str(err)
            return self.async_show_progress_done(next_step_id="local_unavailable")
        return self.async_show_progress_done(next_step_id="local_models")

    async def _async_prepare_local(self) -> None:
        """Install the engine packages; fetch the current list of piper voices."""
        await async_ensure_engine_packages(self.hass)
        try:
            await self._store.refresh_catalogue()
        except EngineError as err:
            # Offline: the cached list, or the built-in one, still offers voices.
            LOGGER.debug("Using the known voices: %s", err)

    async def async_step_local_unavailable(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Say why the engines cannot run here, and offer the other modes."""
        return self.async_show_menu(
            step_id="local_unavailable",
            menu_options=["remote", "services"],
            description_placeholders={"reason": self._unavailable_reason},
        )

    async def async_step_local_models(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the speech-to-text model, the voice and the wake words."""
        language = self._data[CONF_LANGUAGE]
        stt, voices = await asyncio.gather(
            _async_model_choice(self._store, ModelKind.WHISPER, language),
            _async_model_choice(self._store, ModelKind.PIPER, language),
        )
        if not stt.options or not voices.options:
            return self.async_abort(
                reason="no_models_for_language",
                description_placeholders={"language": language},
            )
        errors: dict[str, str] = {}
        if user_input is not None:
            if await self._async_port_taken(
                ENGINE_BIND_ADDRESS, user_input[CONF_ENGINE_PORT], CONF_ENGINE_PORT
            ):
                errors[CONF_ENGINE_PORT] = "cannot_bind"
            else:
                self._local = {CONF_ENGINE_MODE: EngineMode.LOCAL, **user_input}
                self._missing = [
                    choice.catalogue[name]
                    for choice, name in (
                        (stt, user_input[CONF_STT_MODEL]),
                        (voices, user_input[CONF_VOICE]),
                    )
                    if name not in choice.installed
                ]
                if self._missing:
                    return await self.async_step_download()
                return self._async_finish(self._local)

        previous = self._previous
        return self.async_show_form(
            step_id="local_models",
            data_schema=probatio.Schema(
                {
                    probatio.Required(
                        CONF_STT_MODEL,
                        default=stt.default(previous.get(CONF_STT_MODEL)),
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=stt.options, mode=SelectSelectorMode.DROPDOWN
                        )
                    ),
                    probatio.Required(
                        CONF_VOICE, default=voices.default(previous.get(CONF_VOICE))
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=voices.options, mode=SelectSelectorMode.DROPDOWN
                        )
                    ),
                    probatio.Required(
                        CONF_WAKE_WORDS,
                        default=previous.get(CONF_WAKE_WORDS, DEFAULT_WAKE_WORDS),
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=list(MICRO_WAKE_WORDS),
                            multiple=True,
                            translation_key="wake_words",
                        )
                    ),
                    probatio.Required(
                        CONF_OPENWAKEWORD,
                        default=previous.get(CONF_OPENWAKEWORD, False),
                    ): BooleanSelector(),
                    probatio.Required(
                        CONF_ENGINE_PORT,
                        default=previous.get(CONF_ENGINE_PORT, DEFAULT_ENGINE_PORT),
                    ): PORT_SELECTOR,
                }
            ),
            errors=errors,
            description_placeholders={"folder": str(self._store.models_dir)},
        )

    async def async_step_download(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Download the chosen models that are not installed yet."""
        if self._download_task is None:
            self._download_task = self.hass.async_create_task(
                self._async_download(), eager_start=False
            )
        if not self._download_task.done():
            return self.async_show_progress(
                step_id="download",
                progress_action="download_models",
                progress_task=self._download_task,
                description_placeholders={
                    "models": "\n".join(
                        f"- {entry.description}, {entry.size_mb} MB"
                        for entry in self._missing
                    )
                },
            )
        task, self._download_task = self._download_task, None
        try:
            task.result()
        except EngineError as err:
            self._download_error = str(err)
            return self.async_show_progress_done(next_step_id="download_failed")
        return self.async_show_progress_done(next_step_id="models_ready")

    async def _async_download(self) -> None:
        """Download the missing models one after the other."""
        self._download_percent = -1
        for index, entry in enumerate(self._missing):
            await self._store.download(
                entry.kind, entry.name, partial(self._report_download, index)
            )

    @callback
    def _report_download(self, index: int, done: int, total: int) -> None:
        """Move the progress bar, once per percent of all the downloads."""
        percent = (100 * index + 100 * done // total) // len(self._missing)
        if percent > self._download_percent:
            self._download_percent = percent
            self.async_update_progress(percent / 100)

    async def async_step_download_failed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say why a download failed; try again when the user submits."""
        if user_input is not None:
            return await self.async_step_download()
        return self.async_show_form(
            step_id="download_failed",
            description_placeholders={"error": self._download_error},
        )

    async def async_step_models_ready(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Finish once every chosen model is installed."""
        return self._async_finish(self._local)

    # REMOTE: an engine host elsewhere ----------------------------------------

    async def async_step_remote(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask where the engine host is, and check that it is one."""
        errors: dict[str, str] = {}
        if user_input is not None and (
            found := await _async_describe_field(user_input, CONF_URI, errors)
        ):
            endpoint, info = found
            if _is_engine_host(info):
                return self._async_finish(
                    {CONF_ENGINE_MODE: EngineMode.REMOTE, CONF_URI: endpoint.uri}
                )
            errors[CONF_URI] = "not_an_engine_host"
        return self.async_show_form(
            step_id="remote",
            data_schema=self.add_suggested_values_to_schema(
                STEP_REMOTE_SCHEMA, user_input or self._previous
            ),
            errors=errors,
        )

    # SERVICES: separate Wyoming services -------------------------------------

    async def async_step_services(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a URI per engine; check each offers what it stands for."""
        errors: dict[str, str] = {}
        if user_input is not None:
            services: dict[str, str] = {}
            for field, programs in SERVICE_PROGRAMS.items():
                if not user_input.get(field):
                    continue
                if not (
                    found := await _async_describe_field(user_input, field, errors)
                ):
                    continue
                endpoint, info = found
                if _installed(programs(info)):
                    services[field] = endpoint.uri
                else:
                    errors[field] = "wrong_service"
            if not services and not errors:
                errors["base"] = "no_services"
            if not errors:
                return self._async_finish(
                    {CONF_ENGINE_MODE: EngineMode.SERVICES, **services}
                )
        return self.async_show_form(
            step_id="services",
            data_schema=self.add_suggested_values_to_schema(
                STEP_SERVICES_SCHEMA, user_input or self._previous
            ),
            errors=errors,
        )

    # Discovery ---------------------------------------------------------------

    @override
    async def async_step_zeroconf(
        self, discovery_info: ZeroconfServiceInfo
    ) -> ConfigFlowResult:
        """Offer what announces itself: a satellite, or an engine host."""
        if discovery_info.port is None:
            return self.async_abort(reason="cannot_connect")
        endpoint = Endpoint(discovery_info.host, discovery_info.port)
        name = discovery_info.name.removesuffix(f".{discovery_info.type}")
        entry = self._entry
        # Known: never connect to it (a satellite serves one client at a time).
        if entry is not None and self._async_known(entry, name, endpoint):
            return self.async_abort(reason="already_configured")
        try:
            info = await async_describe(endpoint)
        except PeerError as err:
            LOGGER.debug("Discovered %s does not answer: %s", endpoint.uri, err)
            return self.async_abort(reason="cannot_connect")
        self._discovered = endpoint
        self._discovered_name = name
        self.context["title_placeholders"] = {"name": name}
        if info.satellite is not None:
            return await self._async_discovered_satellite(info)
        return await self._async_discovered_engine_host(info)

    @property
    def _entry(self) -> ConfigEntry | None:
        """The one Private Voice entry, if it is set up."""
        entries = self._async_current_entries(include_ignore=False)
        return entries[0] if entries else None

    def _async_known(self, entry: ConfigEntry, name: str, endpoint: Endpoint) -> bool:
        """Tell whether the entry has it; follow a satellite to its new address."""
        if entry.data.get(CONF_URI) == endpoint.uri:
            return True
        subentry = next(
            (s for s in satellite_subentries(entry) if s.unique_id == name),
            None,
        ) or find_satellite(entry, endpoint)
        if subentry is None:
            return False
        data = {**subentry.data, CONF_HOST: endpoint.host, CONF_PORT: endpoint.port}
        if data != subentry.data:  # back from DHCP at another address
            self.hass.config_entries.async_update_subentry(entry, subentry, data=data)
        return True

    async def _async_discovered_satellite(self, info: Info) -> ConfigFlowResult:
        if self._entry is None:
            return self.async_abort(reason="satellite_needs_setup")
        self._satellite_id = self._discovered_name
        await self.async_set_unique_id(f"{SUBENTRY_SATELLITE}_{self._satellite_id}")
        self._abort_if_unique_id_configured()
        self._discovered_name = satellite_title(info, self._discovered)
        return await self.async_step_zeroconf_satellite()

    async def _async_discovered_engine_host(self, info: Info) -> ConfigFlowResult:
        if self._entry is not None:
            return self.async_abort(reason="already_configured")
        if not _is_engine_host(info):
            return self.async_abort(reason="not_an_engine_host")
        # Only now: a satellite's flow must not keep an engine host's away.
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_satellite(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add the discovered satellite, in the room the user picks."""
        if user_input is None:
            return self.async_show_form(
                step_id="zeroconf_satellite",
                data_schema=STEP_SATELLITE_AREA_SCHEMA,
                description_placeholders={
                    "name": self._discovered_name,
                    "host": self._discovered.uri,
                },
            )
        if (entry := self._entry) is None:
            return self.async_abort(reason="satellite_needs_setup")
        self.hass.config_entries.async_add_subentry(
            entry,
            satellite_subentry(
                self._discovered,
                self._discovered_name,
                user_input.get(CONF_AREA_ID),
                # The zeroconf instance name: stable while the address changes.
                self._satellite_id,
            ),
        )
        return self.async_abort(
            reason="satellite_added",
            description_placeholders={"name": self._discovered_name},
        )

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Use the discovered engine host, with the language and port chosen here."""
        if form := await self._async_basics(
            user_input,
            step_id="zeroconf_confirm",
            placeholders={"name": self._discovered_name, "host": self._discovered.uri},
        ):
            return form
        return self._async_finish(
            {CONF_ENGINE_MODE: EngineMode.REMOTE, CONF_URI: self._discovered.uri}
        )
