"""Constants for the Private Voice integration."""

from datetime import timedelta
from enum import StrEnum
import logging
from typing import Final

DOMAIN: Final = "private_voice"
LOGGER = logging.getLogger(__package__)

CONF_LANGUAGE: Final = "language"

# The public, policy-enforcing Wyoming service. 10600 clashes with nothing in
# the Wyoming convention (10200 piper, 10300 whisper, 10400 wake, 10700 satellites).
DEFAULT_PORT: Final = 10600
DEFAULT_BIND_ADDRESS: Final = "0.0.0.0"  # noqa: S104 - satellites reach it over the LAN
# Options: addresses besides loopback that may use the public service.
CONF_ALLOWED_ADDRESSES: Final = "allowed_addresses"

# Where the engines run.
CONF_ENGINE_MODE: Final = "engine_mode"


class EngineMode(StrEnum):
    """Where the speech engines run."""

    # The engine host as a child process of Home Assistant, on loopback.
    LOCAL = "local"
    # An engine host elsewhere (add-on, container, another machine).
    REMOTE = "remote"
    # Separate Wyoming services per engine (e.g. wyoming-faster-whisper).
    SERVICES = "services"


# LOCAL: the models the child process offers, and its loopback port.
CONF_STT_MODEL: Final = "stt_model"
CONF_VOICE: Final = "voice"
CONF_WAKE_WORDS: Final = "wake_words"
CONF_OPENWAKEWORD: Final = "openwakeword"
CONF_ENGINE_PORT: Final = "engine_port"
DEFAULT_ENGINE_PORT: Final = 10610
# Below Home Assistant's configuration folder.
MODELS_DIR: Final = "private_voice/models"

# REMOTE: the engine host's tcp://HOST:PORT.
CONF_URI: Final = "uri"

# SERVICES: one tcp://HOST:PORT per engine; any may be left out.
CONF_STT_URI: Final = "stt_uri"
CONF_TTS_URI: Final = "tts_uri"
CONF_WAKE_URI: Final = "wake_uri"

# How often the engines are asked what they offer (and so, whether they answer).
ENGINE_REFRESH_INTERVAL: Final = timedelta(seconds=30)

# Options: the address the public Wyoming service binds to.
CONF_BIND_ADDRESS: Final = "bind_address"

# Satellites: config subentries of this type, one per satellite.
SUBENTRY_SATELLITE: Final = "satellite"
# A satellite's Wyoming server (the hub connects to it) and the area it is in.
CONF_AREA_ID: Final = "area_id"
# Wyoming satellites listen on this port by convention.
DEFAULT_SATELLITE_PORT: Final = 10700

# Options: the conversation agent the guard hands commands to, and the kinds of
# sensitive actions it keeps for recognised people (privacy/sensitive.py keys).
CONF_GUARD_AGENT: Final = "guard_agent"
DEFAULT_GUARD_AGENT: Final = "conversation.home_assistant"
CONF_SENSITIVE_ACTIONS: Final = "sensitive_actions"
